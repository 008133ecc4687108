"""The HTML report of a recipe and the live dashboard that serves it.

``nntransfer report RECIPE --out report.html`` writes one self-contained page
(its script, style, chart library and data inline; nothing is fetched, so it
works offline and can be mailed); ``nntransfer ui RECIPE`` serves the same
page on 127.0.0.1 and the page reloads its data from the database while
workers train.  :mod:`.payload` gathers what the page shows, :mod:`.page`
renders it, :mod:`.server` serves it.
"""

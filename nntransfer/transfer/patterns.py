"""Name patterns for selecting parameters and modules.

Transfer steps are configured from JSON-able recipes, so a pattern is a plain
string.  One rule set is shared by partial loading, freezing and fine-tuning so
a pattern means the same thing everywhere:

* ``"re:<regex>"`` is a regular expression that must match the whole name
  (``re.fullmatch``), e.g. ``"re:features\\.[0-3]\\..*"``.
* Any other string is a glob (``fnmatch``, case-sensitive), e.g.
  ``"classifier.*"``.  A glob also matches every name *inside* the module it
  names, so ``"classifier"`` selects ``classifier.weight`` and
  ``classifier.bias`` without matching ``classifier2.weight``.
* A compiled ``re.Pattern`` is used as is (whole-name match).
"""

import re
from fnmatch import fnmatchcase
from typing import Iterable, Sequence, Union

from nntransfer.errors import ConfigError

Pattern = Union[str, "re.Pattern[str]"]
Patterns = Union[Pattern, Sequence[Pattern], None]

REGEX_PREFIX = "re:"


def as_pattern_list(patterns: Patterns, what: str = "patterns") -> list:
    """Normalise ``None``, one pattern or a sequence of patterns to a list.

    A lone string is one pattern, not a sequence of one-letter patterns.
    Regexes are compiled here so a typo fails before any work is done.
    """
    if patterns is None:
        return []
    if isinstance(patterns, (str, re.Pattern)):
        patterns = [patterns]
    elif not isinstance(patterns, (list, tuple)):
        raise ConfigError(
            f"{what}: expected a pattern string or a list of them, got {type(patterns).__name__}"
        )
    result = []
    for pattern in patterns:
        if isinstance(pattern, re.Pattern):
            result.append(pattern)
        elif isinstance(pattern, str):
            if pattern.startswith(REGEX_PREFIX):
                try:
                    result.append(re.compile(pattern[len(REGEX_PREFIX):]))
                except re.error as exc:
                    raise ConfigError(
                        f"{what}: {pattern!r} is not a valid regular expression ({exc}); "
                        "fix the regex or drop the 're:' prefix to use a glob"
                    ) from exc
            else:
                result.append(pattern)
        else:
            raise ConfigError(
                f"{what}: expected strings (globs or 're:<regex>'), got {pattern!r} "
                f"of type {type(pattern).__name__}"
            )
    return result


def matches(name: str, pattern: Pattern) -> bool:
    """Whether ``name`` is selected by one normalised pattern (see module doc)."""
    if isinstance(pattern, re.Pattern):
        return pattern.fullmatch(name) is not None
    return fnmatchcase(name, pattern) or fnmatchcase(name, pattern + ".*")


def matches_any(name: str, patterns: Iterable[Pattern]) -> bool:
    return any(matches(name, pattern) for pattern in patterns)


def select(names: Iterable[str], include: Patterns = None, exclude: Patterns = None) -> list:
    """Names kept by ``include`` (all when empty) and not dropped by ``exclude``."""
    include_list = as_pattern_list(include, "include")
    exclude_list = as_pattern_list(exclude, "exclude")
    return [
        name
        for name in names
        if (not include_list or matches_any(name, include_list))
        and not matches_any(name, exclude_list)
    ]

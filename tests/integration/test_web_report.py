"""The HTML report and the live dashboard in a real headless browser (Debian's chromium), and what the report reads.

The page must load without console errors, its results table must hold the
recipe's steps and its charts must draw; the dashboard must show training
that happens after the page was opened.  The browser tests are skipped where
chromium is not installed (CI installs it, see .ci/run).  ``nntransfer
report`` reads the recipe from the database, as ``status`` does: it must give
the page the imported recipe gives, without importing the recipe or torch.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

import pytest

from headless import CHROMIUM, Browser

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_thread")]
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")

RECIPE = '''
from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig, TransferExperiment

digits = DatasetConfig.for_fn("nntransfer.datasets.digits.digits_dataset_fn", split_seed=0, comment="digits")
mlp = ModelConfig.for_fn("nntransfer.models.mlp.mlp_model_fn", hidden_sizes=[8], comment="MLP 8")
train = TrainerConfig.for_fn("nntransfer.trainer.standard.standard_trainer", epochs=2, comment="2 epochs")
again = TrainerConfig.for_fn("nntransfer.trainer.standard.standard_trainer", epochs=3, lr=3e-4, comment="3 slow epochs")
experiments = {
    "pretrained": TransferExperiment([Experiment(digits, mlp, train, seed=[1, 2]), Experiment(digits, mlp, again, seed=[1, 2])]),
    "alone": Experiment(digits, mlp, again, seed=[1, 2]),
}
'''
STEPS = 6  # 2 chains' steps x 2 seeds


@pytest.fixture
def recipe_file(db, tmp_path):
    path = tmp_path / "web_recipe.py"
    path.write_text(RECIPE)
    return path


@pytest.fixture
def browser():
    browser = Browser()
    yield browser
    browser.close()


@needs_chromium
def test_report_file_loads_offline_with_the_recipes_rows_and_charts(recipe_file, tmp_path, browser):
    from nntransfer import runner
    from nntransfer.cli import main

    runner.run(runner.load_recipe(str(recipe_file)))
    out = tmp_path / "report.html"
    assert main(["report", str(recipe_file), "--out", str(out)]) == 0
    html = out.read_text()
    assert not re.search(r"""<(script|link)[^>]+(src|href)=["']?https?:""", html), "the report loads something from the network"

    browser.open(out.as_uri())
    assert browser.wait_for("document.querySelectorAll('#results tbody tr').length") == STEPS
    assert browser.wait_for("document.querySelectorAll('#curves .scatterlayer .trace').length") >= 2
    assert browser.wait_for("document.querySelectorAll('#finals .scatterlayer .trace').length") >= 2
    chains = browser.evaluate("[...document.querySelectorAll('#lineage h3')].map(h => h.textContent)")
    assert chains == ["alone (seed 1)", "pretrained (seed 1)"]  # the database keeps no order of chains: by name
    # the table filters and sorts
    browser.evaluate("const f = document.getElementById('filter'); f.value = 'pretrained'; f.dispatchEvent(new Event('input'))")
    assert browser.evaluate("document.querySelectorAll('#results tbody tr').length") == 4
    browser.evaluate("document.querySelector('#results th[data-index=\"2\"]').click()")  # seed
    seeds = browser.evaluate("[...document.querySelectorAll('#results tbody tr')].map(r => r.children[2].textContent)")
    assert seeds == ["1", "1", "2", "2"]
    assert browser.errors == []


@needs_chromium
@pytest.mark.skipif(bool(os.environ.get("NNTRANSFER_TEST_SERVER")),
                    reason="the same page on every backend: run once, on the embedded database, to keep the suite short")
def test_dashboard_shows_steps_trained_after_the_page_opened(recipe_file, browser):
    from nntransfer import runner, tables

    recipe = runner.load_recipe(str(recipe_file))
    runner.insert(recipe)
    ui = subprocess.Popen(
        [sys.executable, "-m", "nntransfer.cli", "ui", str(recipe_file), "--port", "0", "--refresh", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )
    try:
        printed = []
        url = None
        while url is None and len(printed) < 10:  # DataJoint's connection line may come first
            printed.append(ui.stdout.readline())
            url = re.search(r"dashboard of .*: (http://127\.0\.0\.1:\d+/)", printed[-1])
            assert printed[-1], f"the dashboard ended: {printed}; {ui.stderr.read()}"
        browser.open(url.group(1))
        done = "Number(document.querySelector('#status tbody tr:last-child td:nth-child(2)').textContent)"
        assert browser.wait_for(f"{done} === 0 && 'yes'") == "yes"
        assert browser.evaluate("document.querySelectorAll('#results tbody tr').length") == STEPS

        runner.run(recipe)  # what a worker does while the page is open
        assert browser.wait_for(f"{done} === {STEPS} && 'yes'", timeout=60) == "yes"
        assert browser.wait_for("document.querySelectorAll('#curves .scatterlayer .trace').length") >= 2
        assert browser.errors == []
        assert len(tables.TransferredTrainedModel() & recipe.steps()) == STEPS
    finally:
        ui.send_signal(signal.SIGINT)
        assert ui.wait(timeout=30) == 0


LONG_RECIPE = '''
from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig

digits = DatasetConfig.for_fn("nntransfer.datasets.digits.digits_dataset_fn", split_seed=0, comment="digits")
mlp = ModelConfig.for_fn("nntransfer.models.mlp.mlp_model_fn", hidden_sizes=[8], comment="MLP 8")
long = TrainerConfig.for_fn("nntransfer.trainer.standard.standard_trainer", epochs=100000, comment="until stopped")
experiments = {"long": Experiment(digits, mlp, long, seed=1)}
'''


@needs_chromium
@pytest.mark.skipif(bool(os.environ.get("NNTRANSFER_TEST_SERVER")),
                    reason="the same page on every backend: run once, on the embedded database, to keep the suite short")
def test_dashboard_shows_a_running_steps_worker_epoch_and_metrics(db, tmp_path, browser):
    from nntransfer.web.server import Dashboard
    from nntransfer import runner, tables

    path = tmp_path / "long_recipe.py"
    path.write_text(LONG_RECIPE)
    recipe = runner.load_recipe(str(path))
    runner.insert(recipe)
    worker = subprocess.Popen([sys.executable, "-m", "nntransfer.cli", "worker", str(path), "--poll", "0.2",
                               "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ))
    server = Dashboard(recipe, tables.TransferredTrainedModel(), port=0, refresh=0.5)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        browser.open(server.url)
        running = "(document.querySelector('#live li') || {}).textContent"
        assert f"(pid {worker.pid})" in browser.wait_for(running, timeout=120)  # reserved, before its first epoch ends
        line = browser.wait_for(f"({running} || '').includes('epoch') && {running}", timeout=120)
        assert re.search(rf"running: long step 0 seed 1 on .+ \(pid {worker.pid}\), epoch \d+ of 100000; .*"
                         r"validation\.accuracy 0\.\d+", line), line
        assert browser.errors == []
    finally:
        server.shutdown()
        server.server_close()
        worker.send_signal(signal.SIGINT)  # the worker checkpoints and gives its job back
        worker.wait(timeout=120)


SHARED_RECIPE = '''
from nntransfer.configs import DatasetConfig, Experiment, ModelConfig, TrainerConfig, TransferExperiment

digits = DatasetConfig.for_fn("nntransfer.datasets.digits.digits_dataset_fn", split_seed=0, comment="digits")
mlp = ModelConfig.for_fn("nntransfer.models.mlp.mlp_model_fn", hidden_sizes=[8], comment="MLP 8")
first = TrainerConfig.for_fn("nntransfer.trainer.standard.standard_trainer", epochs=1, comment="1 epoch")
fast = TrainerConfig.for_fn("nntransfer.trainer.standard.standard_trainer", epochs=1, lr=3e-3)
slow = TrainerConfig.for_fn("nntransfer.trainer.standard.standard_trainer", epochs=2, lr=3e-4, comment="2 slow epochs")
experiments = {  # in name order, seeds ascending: the order the database gives back
    "fast": TransferExperiment([Experiment(digits, mlp, first, seed=[1, 2]), Experiment(digits, mlp, fast, seed=[1, 2])]),
    "slow": TransferExperiment([Experiment(digits, mlp, first, seed=[1, 2]), Experiment(digits, mlp, slow, seed=[1, 2])]),
}
'''


@pytest.fixture
def shared_recipe(db, tmp_path):
    """Two chains sharing step 0, two seeds, inserted; trained: step 0 of seed 1."""
    from nntransfer import runner

    path = tmp_path / "shared_recipe.py"
    path.write_text(SHARED_RECIPE)
    recipe = runner.load_recipe(str(path))
    runner.insert(recipe)
    db.TransferredTrainedModel().populate([recipe.chains["fast"].steps(1)[0]], plan=False)
    return path, recipe


def test_the_stored_recipe_gives_the_payload_of_the_imported_recipe(shared_recipe, db):
    from nntransfer.analysis.stored_recipe import stored_recipe
    from nntransfer.web.payload import recipe_payload

    _, recipe = shared_recipe
    table = db.TransferredTrainedModel()
    table.populate([recipe.chains["fast"].steps(1)[1]], plan=False)  # a transfer step done too
    stored = stored_recipe(table, recipe.name)
    assert list(stored.chains) == ["fast", "slow"] and stored.steps() == recipe.steps()
    imported, read = recipe_payload(recipe, table), recipe_payload(stored, table)
    imported.pop("generated"), read.pop("generated")
    assert read["status"]["total"] == {"done": 2, "running": 0, "pending": 2, "blocked": 2, "error": 0, "pruned": 0}
    # the one value the database cannot give back as the config class holds it: a tuple is stored as a JSON list
    for payload, shown in ((imported, "('validation', 'test')"), (read, "['validation', 'test']")):
        for step in (step for chain in payload["lineage"] for step in chain["steps"]):
            assert step["config"].pop("trainer.final_splits") == shown
    assert read == imported


def test_chains_planned_by_another_recipe_are_named_after_this_one(db, tmp_path):
    from nntransfer import runner
    from nntransfer.analysis.stored_recipe import stored_recipe

    chains = ('experiments = {{"{0}": Experiment(digits, mlp, first, seed=1), '
              '"{1}": Experiment(digits, mlp, slow, seed=1)}}\n')
    module = SHARED_RECIPE.split("experiments =")[0]
    for name, first, second in (("planned_first", "p", "q"), ("planned_again", "one", "two")):
        (tmp_path / f"{name}.py").write_text(module + chains.format(first, second))
        runner.insert(runner.load_recipe(str(tmp_path / f"{name}.py")))
    table = db.TransferredTrainedModel()
    planned_first = stored_recipe(table, "planned_first").chains
    assert {name: chain.experiments[0].configs[2].comment for name, chain in planned_first.items()} \
        == {"p": "1 epoch", "q": "2 slow epochs"}
    again = stored_recipe(table, "planned_again").chains  # its steps were planned by planned_first's chains
    assert sorted(again) == ["planned_again", "planned_again (2)"]
    assert sorted(chain.experiments[0].configs[2].comment for chain in again.values()) == ["1 epoch", "2 slow epochs"]


def test_report_imports_neither_the_recipe_nor_torch(shared_recipe, tmp_path):
    # no transfer step is done: the text of a load report is written by nntransfer.transfer.loading, which imports torch
    path, _ = shared_recipe
    path.unlink()  # the report reads the database only, so the recipe file may be gone
    out = tmp_path / "report.html"
    script = ("import sys; from nntransfer.cli import main; "
              f"code = main(['report', {str(path)!r}, '--out', {str(out)!r}]); print(code, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=dict(os.environ),
                          timeout=120)
    assert done.stdout.splitlines()[-1] == "0 False", done.stdout + done.stderr
    html = out.read_text()
    assert "<title>nntransfer: shared_recipe</title>" in html and "2 slow epochs" in html


def test_report_of_a_recipe_never_inserted_is_a_usage_error(db, tmp_path, capsys):
    from nntransfer.cli import main

    path = tmp_path / "never_inserted.py"
    path.write_text(SHARED_RECIPE)  # a recipe that exists, but the database holds none of its steps
    out = tmp_path / "report.html"
    assert main(["report", str(path), "--out", str(out)]) == 2
    assert "recipe 'never_inserted' has no steps in this schema" in capsys.readouterr().err
    assert not out.exists()

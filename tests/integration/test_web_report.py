"""The HTML report and the live dashboard in a real headless browser (Debian's chromium).

The page must load without console errors, its results table must hold the
recipe's steps and its charts must draw; the dashboard must show training
that happens after the page was opened.  Skipped where chromium is not
installed (CI installs it, see .ci/run).
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

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("single_thread"),
              pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")]

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
    assert chains == ["pretrained (seed 1)", "alone (seed 1)"]
    # the table filters and sorts
    browser.evaluate("const f = document.getElementById('filter'); f.value = 'pretrained'; f.dispatchEvent(new Event('input'))")
    assert browser.evaluate("document.querySelectorAll('#results tbody tr').length") == 4
    browser.evaluate("document.querySelector('#results th[data-index=\"2\"]').click()")  # seed
    seeds = browser.evaluate("[...document.querySelectorAll('#results tbody tr')].map(r => r.children[2].textContent)")
    assert seeds == ["1", "1", "2", "2"]
    assert browser.errors == []


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

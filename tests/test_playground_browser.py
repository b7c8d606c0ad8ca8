"""The Playground end to end: the real server, the real page, headless Chromium.

The server is started as the user starts it (``python -m dlvr_jax playground
--no-browser --port 0``, its printed URL parsed); the page is driven only
through its ``data-testid`` automation contract (docs/playground.md), in
Debian's headless Chromium through ``/usr/bin/chromedriver``
(``apt-get install chromium chromium-driver``; never a downloaded browser).
Without Chromium, chromedriver or selenium the tests skip, saying why;
``DLVR_JAX_REQUIRE_BROWSER=1`` (set in CI) turns those skips into failures.

With ``DLVR_JAX_PLAYGROUND_SCREENSHOTS=<folder>`` the tests save the
screenshots the docs page shows there (``tox -e docs`` points it at
``docs/_static/playground``).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import chromium
from dlvr_jax import checkpoint

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
REQUIRE_VARIABLE = "DLVR_JAX_REQUIRE_BROWSER"
SCREENSHOTS_VARIABLE = "DLVR_JAX_PLAYGROUND_SCREENSHOTS"
TIMEOUT = 30  # seconds for anything the page waits on (the issue: loss < 0.1 within 30 s)
URL_PATTERN = re.compile(r"http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_\-]+")


def _skip(reason: str) -> None:
    """Skips, or fails where the environment says the browser checks must run (CI)."""
    if os.environ.get(REQUIRE_VARIABLE, "") not in ("", "0"):
        pytest.fail(f"{REQUIRE_VARIABLE} is set but {reason}")
    pytest.skip(reason)


def _require_browser() -> None:
    why = chromium.missing()
    if why:
        _skip(why)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """``dlvr-jax playground --no-browser --port 0`` in a subprocess; yields its URL."""
    _require_browser()  # skip before starting anything
    for module in ("starlette", "uvicorn", "websockets"):
        try:
            __import__(module)
        except ImportError:
            _skip(f"{module} is not installed (pip install '.[playground]')")
    # No persistent compilation cache: the run is hermetic (nothing read from or
    # written to the user's cache) and its time is a cold start's.
    environment = dict(
        os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT), DLVR_JAX_NO_CACHE="1"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "dlvr_jax", "playground", "--no-browser", "--port", "0"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    url: list[str] = []
    found = threading.Event()

    def read() -> None:  # keeps draining the pipe so the server never blocks on it
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            match = URL_PATTERN.search(line)
            if match and not url:
                url.append(match.group(0))
                found.set()

    threading.Thread(target=read, daemon=True).start()
    if not found.wait(60):
        process.kill()
        pytest.fail("the server printed no URL within 60 s:\n" + "".join(lines))
    try:
        yield url[0]
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            code = process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        assert code == 0, "Ctrl-C should stop the server cleanly:\n" + "".join(lines[-30:])


@pytest.fixture(scope="module")
def downloads() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="dlvr_jax_playground_downloads_"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(downloads: Path) -> Iterator[Any]:
    _require_browser()

    def configure(options: Any) -> None:
        options.add_experimental_option(
            "prefs",
            {"download.default_directory": str(downloads), "download.prompt_for_download": False},
        )
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})

    with chromium.driver(configure=configure) as driver:
        driver.set_page_load_timeout(TIMEOUT)
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        yield driver


# ----------------------------------------------------------------------------
# Helpers: the page through its data-testid contract.


def _wait(driver: Any, script: str, what: str, timeout: float = TIMEOUT) -> Any:
    """Polls the JavaScript expression ``script`` until it is truthy; fails with ``what``."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
            lambda d: d.execute_script(f"return {script};")
        )
    except TimeoutException:
        logs = "\n".join(str(e) for e in driver.get_log("browser")[-20:])
        text = driver.execute_script("return document.body.innerText.slice(0, 600);")
        pytest.fail(
            f"timed out after {timeout} s waiting for {what}\npage: {text}\nconsole:\n{logs}"
        )


def _el(driver: Any, testid: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')


def _text(driver: Any, testid: str) -> str:
    return str(_el(driver, testid).text).strip()


def _number(driver: Any, testid: str) -> float:
    text = _text(driver, testid)
    try:
        return float(text)
    except ValueError:
        pytest.fail(f"readout {testid!r} shows {text!r}, not a plain number")


def _select(driver: Any, testid: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(_el(driver, testid)).select_by_value(value)


def _type(element: Any, text: str) -> None:
    """Replaces an input's text as a user does: select all, then type."""
    from selenium.webdriver.common.keys import Keys

    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(text)


def _stats(driver: Any) -> dict[str, Any]:
    return dict(driver.execute_script("return Object.assign({}, window.playgroundStats);"))


def _open(driver: Any, url: str, fragment: str = "") -> None:
    """Loads the page (a fresh session) and waits for its epoch-0 snapshot to be drawn."""
    driver.get("about:blank")
    driver.get(url + (f"#{fragment}" if fragment else ""))
    _wait(driver, "window.playgroundStats && window.playgroundStats.connected", "the WebSocket")
    _wait(driver, "window.playgroundStats.snapshots >= 1", "the first snapshot to be drawn")


def _distinct_colours(driver: Any, testid: str) -> int:
    """How many distinct pixel colours a canvas shows (1: blank)."""
    return int(
        driver.execute_script(
            """
            const c = document.querySelector(`[data-testid="${arguments[0]}"]`);
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            const seen = new Set();
            for (let i = 0; i < d.length; i += 4 * 7) {
              seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2] | (d[i + 3] << 24));
            }
            return seen.size;
            """,
            testid,
        )
    )


def _screenshot(driver: Any, name: str) -> None:
    """Saves the page for the docs as a 256-colour PNG (they are committed: ~80 kB, not ~230)."""
    folder = os.environ.get(SCREENSHOTS_VARIABLE)
    if folder:
        import io

        from PIL import Image  # Pillow comes with matplotlib

        Path(folder).mkdir(parents=True, exist_ok=True)
        image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
        quantized = image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        quantized.save(Path(folder) / f"{name}.png", "PNG", optimize=True)


def _play_until(driver: Any, condition: str, what: str, timeout: float = TIMEOUT) -> None:
    if not _stats(driver)["playing"]:
        _el(driver, "play").click()
    _wait(driver, condition, what, timeout)
    _el(driver, "play").click()  # pause
    _wait(driver, "!window.playgroundStats.playing", "the pause")


# ----------------------------------------------------------------------------
# The tests.


def test_play_trains_circle_live(server: str, browser: Any) -> None:
    _open(browser, server)
    assert _text(browser, "status").startswith("connected")
    assert _select_value(browser, "dataset") == "circle"
    assert _text(browser, "epoch") == "0"
    assert _text(browser, "error") == ""
    start_loss = _number(browser, "test-loss")
    _el(browser, "play").click()
    _wait(browser, "window.playgroundStats.lastEpoch > 0", "the epoch counter to move")
    assert _stats(browser)["firstSnapshotMs"] is not None
    # The bar: the test loss on circle below 0.1 within 30 s of Play.
    _wait(
        browser,
        "Number(document.querySelector('[data-testid=\"test-loss\"]').textContent) < 0.1",
        "the test loss on circle to fall below 0.1",
    )
    _el(browser, "play").click()
    _wait(browser, "!window.playgroundStats.playing", "the pause")
    epoch = _number(browser, "epoch")
    assert epoch > 0
    assert epoch == int(epoch)
    # The bar was met above; the steps between that frame and the pause may
    # nudge the loss back over it by a rounding digit (CI saw 0.099 -> 0.100),
    # so after the pause it need only stay far below where it started.
    assert _number(browser, "test-loss") < min(0.12, start_loss / 4)
    assert 0 < _number(browser, "train-loss") < start_loss
    assert _number(browser, "test-accuracy") > 0.9
    # Pictures: the output map, every neuron's map, the loss chart, the gradient map.
    assert _distinct_colours(browser, "output-heatmap") > 20
    for unit in range(4):
        assert _distinct_colours(browser, f"neuron-0-{unit}") > 5
    assert _distinct_colours(browser, "loss-chart") > 2
    assert _distinct_colours(browser, "gradient-heatmap") > 5
    cells = browser.execute_script(
        "return [...document.querySelectorAll('[data-testid=\"confusion\"] td')]"
        ".map(td => Number(td.textContent));"
    )
    assert len(cells) == 4
    assert sum(cells) == 250
    # Show test data and discretize redraw the output map.
    before = _distinct_colours(browser, "output-heatmap")
    _el(browser, "discretize").click()
    assert _distinct_colours(browser, "output-heatmap") < before
    _el(browser, "show-test").click()
    assert "showTest=true" in browser.execute_script("return location.hash;")
    _screenshot(browser, "playground")
    # Hovering a neuron shows its map in the output panel, enlarged.
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).move_to_element(_el(browser, "neuron-0-1")).perform()
    _wait(browser, "document.getElementById('hover-label').textContent === 'neuron 0-1'", "hover")
    _screenshot(browser, "hover")
    # Step trains one epoch; reset goes back to epoch 0.
    _el(browser, "step").click()
    _wait(browser, f"window.playgroundStats.lastEpoch === {int(epoch) + 1}", "one step")
    _el(browser, "reset").click()
    _wait(browser, "window.playgroundStats.lastEpoch === 0", "the reset")
    assert _text(browser, "epoch") == "0"


def _select_value(driver: Any, testid: str) -> str:
    return str(_el(driver, testid).get_attribute("value"))


def test_controls_change_the_running_network(server: str, browser: Any) -> None:
    _open(browser, server)
    _select(browser, "activation", "relu")
    _wait(browser, "location.hash.includes('activation=relu')", "the activation to apply")
    _select(browser, "learning-rate", "0.1")
    _wait(browser, "location.hash.includes('learningRate=0.1&')", "the learning rate to apply")
    assert not browser.find_elements("css selector", '[data-testid="neuron-2-0"]')
    _el(browser, "add-layer").click()
    _wait(browser, "document.querySelector('[data-testid=\"neuron-2-0\"]')", "a new layer")
    _el(browser, "remove-layer").click()  # back to a shape compiled already
    _wait(browser, "!document.querySelector('[data-testid=\"neuron-2-0\"]')", "one layer fewer")
    _el(browser, "add-layer").click()
    _wait(browser, "document.querySelector('[data-testid=\"neuron-2-0\"]')", "the layer again")
    width = _el(browser, "layer-0-width")
    _type(width, "6\n")
    _wait(browser, "document.querySelector('[data-testid=\"neuron-0-5\"]')", "a wider layer")
    _el(browser, "feature-x1^2").click()
    _wait(browser, "location.hash.includes('features=x1%2Cx2%2Cx1%5E2&')", "a third feature")
    # Regularization keeps training (no reset); optimizer, dropout, residual and
    # the dataset are set through the URL fragment in the next test (one compile).
    _select(browser, "regularization", "l2")
    _wait(browser, "location.hash.includes('regularization=l2&')", "L2")
    _select(browser, "regularization-rate", "0.001")
    _wait(browser, "location.hash.includes('regularizationRate=0.001&')", "the L2 rate")
    _wait(browser, "window.playgroundStats.lastEpoch === 0", "the epoch-0 snapshot")
    _wait(browser, "document.querySelector('[data-testid=\"neuron-2-1\"]')", "the network")
    _play_until(browser, "window.playgroundStats.lastEpoch > 100", "training with the new setup")
    assert _number(browser, "test-loss") >= 0
    assert _distinct_colours(browser, "output-heatmap") > 20
    # ReLU units may die (a flat map); the live ones show one.
    neurons = browser.execute_script(
        "return [...document.querySelectorAll('[data-testid^=\"neuron-\"]')]"
        ".map(c => c.dataset.testid);"
    )
    assert len(neurons) == 6 + 2 + 2  # [4, 2] + a layer of 2, the first widened to 6
    assert sum(_distinct_colours(browser, testid) > 1 for testid in neurons) >= 2
    # Regression: the problem type switches to a regression dataset and its loss.
    _select(browser, "problem", "regression")
    _wait(browser, "location.hash.includes('problem=regression')", "regression")
    assert _select_value(browser, "dataset") in ("plane", "multi_gaussian")
    assert _select_value(browser, "loss") == "mse"
    assert _text(browser, "error") == ""


def _slide(driver: Any, testid: str, value: int) -> None:
    """Moves a range input as a user's drag ends: the value, then a change event."""
    driver.execute_script(
        "const e = arguments[0]; e.value = arguments[1];"
        "e.dispatchEvent(new Event('input')); e.dispatchEvent(new Event('change'));",
        _el(driver, testid),
        str(value),
    )


def test_data_controls(server: str, browser: Any) -> None:
    _open(browser, server)
    _slide(browser, "train-ratio", 70)
    _wait(browser, "location.hash.includes('trainRatio=70&')", "the train ratio")
    _wait(
        browser,
        "[...document.querySelectorAll('[data-testid=\"confusion\"] td')]"
        ".reduce((s, td) => s + Number(td.textContent), 0) === 150",
        "a test set of 30% of 500 points",
    )
    _slide(browser, "noise", 25)
    _wait(browser, "location.hash.includes('noise=25&')", "the noise")
    _slide(browser, "batch-size", 20)
    _wait(browser, "location.hash.includes('batchSize=20&')", "the batch size")
    seed = int(re.search(r"seed=(\d+)", browser.execute_script("return location.hash;")).group(1))
    _el(browser, "regenerate").click()
    _wait(browser, f"location.hash.includes('seed={seed + 1}&')", "new data (the next seed)")
    _el(browser, "dataset").find_element("css selector", "option[value='xor']").click()
    _wait(browser, "location.hash.includes('dataset=xor&')", "the xor data")
    _wait(browser, "window.playgroundStats.lastEpoch === 0", "the snapshot of the new data")
    assert _distinct_colours(browser, "output-heatmap") > 20
    assert _text(browser, "error") == ""


def test_the_url_fragment_reproduces_a_configuration(server: str, browser: Any) -> None:
    fragment = (
        "dataset=spiral&noise=10&hidden=8,8,4&activation=relu&learningRate=0.01&optimizer=adam"
        "&dropout=0.1&residual=true&features=x1,x2,sin(x1),sin(x2)&showTest=true"
    )
    _open(browser, server, fragment)
    _wait(browser, "location.hash.includes('hidden=8%2C8%2C4')", "the fragment's configuration")
    _wait(browser, "document.querySelector('[data-testid=\"neuron-2-3\"]')", "three layers")
    for testid, value in [
        ("dataset", "spiral"), ("activation", "relu"), ("noise", "10"), ("learning-rate", "0.01"),
        ("optimizer", "adam"), ("dropout", "0.1"),
    ]:  # fmt: skip
        assert _select_value(browser, testid) == value
    assert _el(browser, "residual").is_selected()
    assert _el(browser, "show-test").is_selected()
    assert _el(browser, "feature-sin(x1)").is_selected()
    assert not _el(browser, "feature-x1^2").is_selected()
    _play_until(browser, "window.playgroundStats.lastEpoch > 200", "training on the spiral")
    assert _distinct_colours(browser, "output-heatmap") > 20
    _screenshot(browser, "spiral")
    written = browser.execute_script("return location.hash;")
    # The rewritten fragment (now the full configuration) gives the same page again.
    browser.refresh()
    _wait(browser, "window.playgroundStats.snapshots >= 1", "the reload")
    _wait(browser, f"location.hash === {written!r}", "the same configuration after reload")
    assert _select_value(browser, "activation") == "relu"
    assert _select_value(browser, "optimizer") == "adam"
    assert browser.find_elements("css selector", '[data-testid="neuron-2-3"]')
    assert _stats(browser)["lastEpoch"] == 0  # a link gives the configuration, not the run


def test_divergence_is_explained(server: str, browser: Any) -> None:
    # A deep linear network at learning rate 10 overflows within an epoch or two.
    _open(browser, server, "activation=linear&hidden=8,8,8&learningRate=10&loss=mse")
    _wait(browser, "location.hash.includes('learningRate=10&')", "the configuration")
    _el(browser, "play").click()
    _wait(browser, "document.querySelector('[data-testid=\"error\"]').textContent !== ''", "why")
    message = _text(browser, "error")
    assert "epoch" in message, message
    assert "learning rate" in message, message
    _wait(browser, "!window.playgroundStats.playing", "training to stop")
    assert _text(browser, "status").startswith("connected")
    # The last good state is kept and shown: finite readouts.
    assert np.isfinite(_number(browser, "train-loss"))


def test_upload_a_csv_and_a_bad_one(server: str, browser: Any, tmp_path: Path) -> None:
    _open(browser, server)
    # Three classes: the sectors of the plane around the origin.
    rng = np.random.default_rng(0)
    x = rng.uniform(-5, 5, size=(150, 2))
    y = np.floor((np.arctan2(x[:, 1], x[:, 0]) + np.pi) / (2 * np.pi / 3)).astype(int) % 3
    good = tmp_path / "sectors.csv"
    good.write_text(
        "a,b,label\n" + "".join(f"{p:.4f},{q:.4f},{c}\n" for (p, q), c in zip(x, y, strict=True))
    )
    _el(browser, "upload").send_keys(str(good))
    _wait(browser, "location.hash.includes('dataset=upload')", "the upload to be used")
    _wait(browser, "window.playgroundStats.lastEpoch === 0", "the upload's first snapshot")
    assert "3 classes" in _text(browser, "status")
    _play_until(browser, "window.playgroundStats.lastEpoch > 50", "training on the upload")
    assert _text(browser, "error") == ""
    assert _distinct_colours(browser, "output-heatmap") > 20
    cells = browser.execute_script(
        "return document.querySelectorAll('[data-testid=\"confusion\"] td').length;"
    )
    assert cells == 9  # a 3 x 3 confusion matrix
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,0\n3,4,1\n5,oops,0\n")
    _el(browser, "upload").send_keys(str(bad))
    _wait(browser, "document.querySelector('[data-testid=\"error\"]').textContent !== ''", "error")
    message = _text(browser, "error")
    assert "row" in message.lower(), message
    assert "4" in message, message
    _screenshot(browser, "upload_error")
    # The session goes on: one step still trains.
    epoch = _stats(browser)["lastEpoch"]
    _el(browser, "step").click()
    _wait(browser, f"window.playgroundStats.lastEpoch === {epoch + 1}", "a step after the error")


def test_export_script_reproduces_the_run(
    server: str, browser: Any, downloads: Path, tmp_path: Path
) -> None:
    _open(browser, server, "hidden=4,2&seed=3&batchSize=10")
    for _ in range(3):
        epoch = _stats(browser)["lastEpoch"]
        _el(browser, "step").click()
        _wait(browser, f"window.playgroundStats.lastEpoch === {epoch + 1}", "a step")
    _play_until(browser, "window.playgroundStats.lastEpoch > 40", "some training")
    _el(browser, "export-script").click()
    _wait(browser, "window.playgroundExport !== null", "the export")
    exported = browser.execute_script("return window.playgroundExport;")
    assert exported["epoch"] == _stats(browser)["lastEpoch"]
    script = tmp_path / exported["scriptName"]
    script.write_text(exported["script"])
    downloaded = downloads / exported["scriptName"]
    deadline = time.monotonic() + 10
    while not downloaded.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert downloaded.read_text() == exported["script"]
    _el(browser, "export-checkpoint").click()
    checkpoint_file = downloads / exported["checkpointName"]
    deadline = time.monotonic() + 10
    while not checkpoint_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert checkpoint_file.read_bytes() == base64.b64decode(exported["checkpoint"])
    page_checkpoint = tmp_path / "page.ckpt"
    page_checkpoint.write_bytes(base64.b64decode(exported["checkpoint"]))
    run = subprocess.run(
        [sys.executable, script.name, "script.ckpt"],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    saved = tmp_path / "script.ckpt"
    assert saved.exists(), (run.stdout, sorted(p.name for p in tmp_path.iterdir()))
    mine, theirs = _saved_state(saved), _saved_state(page_checkpoint)
    assert int(mine["epoch"]) == int(theirs["epoch"]) == exported["epoch"]
    _assert_same_bits(mine["params"], theirs["params"])
    _assert_same_bits(mine["opt_state"], theirs["opt_state"])


def _saved_state(path: Path) -> dict[str, Any]:
    """The state a checkpoint file holds, as saved (msgpack through flax, as checkpoint.save)."""
    from flax import serialization

    payload = serialization.msgpack_restore(path.read_bytes())
    assert payload["format"] == checkpoint.FORMAT
    return dict(payload["state"])


def _assert_same_bits(a: Any, b: Any) -> None:
    import jax

    left, left_tree = jax.tree_util.tree_flatten(a)
    right, right_tree = jax.tree_util.tree_flatten(b)
    assert left_tree == right_tree
    assert left
    for p, q in zip(left, right, strict=True):
        p, q = np.asarray(p), np.asarray(q)
        assert p.dtype == q.dtype
        assert p.shape == q.shape
        assert p.tobytes() == q.tobytes()


def test_sweep_shows_its_sensitivity_heatmap(server: str, browser: Any) -> None:
    _open(browser, server)
    epochs = _el(browser, "sweep-epochs")
    _type(epochs, "20")
    seeds = _el(browser, "sweep-seeds")
    _type(seeds, "2")
    _el(browser, "sweep").click()
    _wait(browser, "window.playgroundSweep !== null", "the sweep", timeout=60)
    result = browser.execute_script("return window.playgroundSweep;")
    assert result["seeds"] == 2
    assert result["epochs"] == 20
    assert len(result["testLoss"]) == len(result["learningRates"])
    assert _distinct_colours(browser, "sweep-heatmap") > 5
    _screenshot(browser, "sweep")


def test_the_speed_control_and_the_compiling_indicator(server: str, browser: Any) -> None:
    # A shape no other test compiles: Play waits for its program and the page says so.
    _open(browser, server, "hidden=11,7&speed=60")
    assert _select_value(browser, "speed") == "60"
    texts = []
    _el(browser, "play").click()
    end = time.monotonic() + TIMEOUT
    while _stats(browser)["lastEpoch"] == 0 and time.monotonic() < end:
        texts.append(_text(browser, "status"))
        if "compiling the network" in texts[-1] and sum("compiling" in t for t in texts) == 1:
            _screenshot(browser, "compiling")  # for the docs: the page while it compiles
        time.sleep(0.05)
    assert _stats(browser)["compiles"] >= 1  # the status said compiling
    assert any("compiling the network…" in text for text in texts), texts[-3:]
    assert _stats(browser)["playing"]  # training started by itself
    # One epoch per frame: about 60 epochs/s, a snapshot drawn for nearly each.
    time.sleep(0.5)
    before = _stats(browser)
    time.sleep(2.0)
    after = _stats(browser)
    epochs = after["lastEpoch"] - before["lastEpoch"]
    assert 10 <= epochs <= 2.0 * 60 + 10
    assert after["snapshots"] - before["snapshots"] >= epochs / 3
    # As fast as it goes: the value lives in the URL and training runs far faster.
    _select(browser, "speed", "0")
    _wait(browser, "location.hash.includes('speed=0')", "the speed in the URL")
    time.sleep(0.5)
    before = _stats(browser)
    time.sleep(2.0)
    assert _stats(browser)["lastEpoch"] > before["lastEpoch"]  # unpaced (its rate: workload G)
    _el(browser, "play").click()
    _wait(browser, "!window.playgroundStats.playing", "the pause")


def test_one_epoch_per_frame_forms_circle_s_boundary_over_seconds(
    server: str, browser: Any
) -> None:
    _open(browser, server, "speed=60")
    _el(browser, "play").click()
    shots = {}
    for name, epoch in (("lesson_1", 20), ("lesson_2", 80), ("lesson_3", 240)):
        _wait(browser, f"window.playgroundStats.lastEpoch >= {epoch}", f"epoch {epoch}")
        shots[name] = time.monotonic()
        _screenshot(browser, name)
    _el(browser, "play").click()
    _wait(browser, "!window.playgroundStats.playing", "the pause")
    # The boundary forms over seconds, not within the first one: 240 epochs at 60 a second.
    assert shots["lesson_3"] - shots["lesson_1"] >= 2.5

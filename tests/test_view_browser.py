"""``netemu view``'s page in a real browser: headless Chromium opens the HTML file from disk.

Chromium is driven through the DevTools protocol over ``--remote-debugging-pipe`` (JSON messages
separated by NUL bytes on file descriptors 3 and 4), so the test needs no package beyond the
standard library and Pillow. Where Chromium is not installed (CI installs Debian's ``chromium``
package when it can, see ``.ci/run``), the test is skipped and says why.
"""

from __future__ import annotations

import base64
import io
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from netemu.recording import load

ROOT = Path(__file__).resolve().parent.parent
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium() -> str | None:
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """A headless Chromium and one page, spoken to over the DevTools pipe."""

    def __init__(self, exe: str, profile: Path) -> None:
        to_r, self.to_w = os.pipe()  # we write, Chromium reads on its fd 3
        self.from_r, from_w = os.pipe()  # Chromium writes on its fd 4, we read

        def fds():  # in the child: the pipe ends at 3 and 4 (dup first: either may already be 3 or 4)
            a, b = os.dup(to_r), os.dup(from_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
             f"--user-data-dir={profile}", "--window-size=1500,1000", "about:blank"],
            preexec_fn=fds, close_fds=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_r)
        os.close(from_w)
        self.next_id = 0
        self.inbox: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable", session=True)

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self.from_r, 1 << 16)
            if not chunk:
                self.inbox.put(None)
                return
            buf += chunk
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                self.inbox.put(json.loads(msg))

    def call(self, method: str, session: bool = False, timeout: float = 60.0, **params) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + timeout
        while True:
            reply = self.inbox.get(timeout=max(0.01, end - time.monotonic()))
            if reply is None:
                raise RuntimeError("Chromium closed the DevTools pipe")
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def js(self, expression: str):
        r = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(f"{expression} stayed false for {timeout} s")

    def click(self, x: float, y: float) -> None:
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", session=True, type=kind, x=x, y=y, button="left",
                      clickCount=1)

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries seen so far."""
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                out.append(str(p.get("exceptionDetails", {}).get("exception", {}).get("description")))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(p["entry"].get("text", ""))
        return out

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_w)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    exe = chromium()
    if exe is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium); the browser test of "
                    "netemu view cannot run")
    b = Browser(exe, tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A short radio_swarm run (60 rounds: 61 frames) and its page."""
    from click.testing import CliRunner

    from netemu.cli import main

    tmp = tmp_path_factory.mktemp("view-browser")
    out = tmp / "run"
    runner = CliRunner()
    r = runner.invoke(main, ["run", str(ROOT / "scenarios" / "radio_swarm.toml"), "--out", str(out),
                             "--set", "run.rounds=60", "--set", "output.plot=false", "--no-progress"])
    assert r.exit_code == 0, r.output
    html = tmp / "view.html"
    r = runner.invoke(main, ["view", str(out), "--out", str(html)])
    assert r.exit_code == 0, r.output
    return out, html


GD = "document.getElementById('netemu-view')"


def test_page_in_chromium(browser, page):
    out, html = page
    rec = load(out)
    labels = rec.labels[:2]  # the page's default: the run's first two protocols
    frames = len(rec.protocols[labels[0]]["k"])
    assert frames == 61
    browser.call("Page.navigate", session=True, url=html.resolve().as_uri())
    # plotly adds the frames once the first plot is drawn
    browser.wait_for(f"{GD} && {GD}._transitionData && {GD}._transitionData._frames.length > 0")
    assert browser.js(f"{GD}._transitionData._frames.length") == frames
    # every node of both panels is drawn as one SVG point
    points = browser.js(f"{GD}.querySelectorAll('.scatterlayer path.point').length")
    assert points == len(labels) * rec.meta["nodes"]
    assert browser.js(f"{GD}._fullLayout.sliders[0].active") == 0
    assert browser.js(f"{GD}._fullLayout.sliders[0].steps.length") == frames

    # press Play with the mouse: the slider advances
    box = browser.js("(() => { const b = [...document.querySelectorAll('.updatemenu-button')]"
                     ".find(e => e.textContent.trim() === 'Play'); const r = b.getBoundingClientRect();"
                     " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
    browser.click(*box)
    active = browser.wait_for(f"{GD}._fullLayout.sliders[0].active >= 3 && {GD}._fullLayout.sliders[0].active",
                              timeout=30)
    assert active >= 3
    # the cursor under the animation moved with it (the last trace: a vertical line at the frame's round)
    cursor = browser.js(f"{GD}.data[{GD}.data.length - 1].x[0]")
    assert cursor > 0

    shot = browser.call("Page.captureScreenshot", session=True, format="png")["data"]
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(shot))).convert("RGB"))
    assert img.shape[0] > 400 and img.shape[1] > 600
    flat = img.reshape(-1, 3)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    background = counts.max() / len(flat)
    assert background < 0.97, f"the screenshot is {background:.1%} one colour"
    assert len(colours) > 100, f"the screenshot has only {len(colours)} colours"
    assert browser.errors() == []


FL_RUN = {"seed": 3, "name": "fl",
          "network": {"nodes": 21, "topology": "random", "p": 0.0,
                      "uplink": {"server": 0, "latency": 0.01, "bandwidth": 1e5, "loss": 0.05}},
          "run": {"rounds": 24, "period": 0.25}, "task": {"kind": "logistic", "samples": 50, "features": 10},
          "output": {"plot": False},
          "compute": {"step_time": {"dist": "lognormal", "median": 0.02, "sigma": 0.5},
                      "stragglers": {"fraction": 0.1, "slowdown": 10, "persistent": True},
                      "availability": {"kind": "periods", "on": 1.0, "off": 0.5}},
          "protocols": [{"name": "fedasync", "lr": 0.05}, {"name": "fedavg", "lr": 0.05}]}

# a drawn point's state, from its SVG path: a square (H) is the server, an arc (A) a circle, open
# (fill none: idle) or filled (training), anything else the x of an offline client
CLASSIFY = ("[...document.getElementById('netemu-view').querySelectorAll('.scatterlayer path.point')]"
            ".map(e => { const d = e.getAttribute('d'); if (d.includes('H')) return 3;"
            " if (d.includes('A')) return e.style.fill === 'none' ? 0 : 1; return 2; })")


def test_fl_page_markers_in_chromium(browser, tmp_path):
    """An FL page (wait-for-all FedAvg beside FedAsync, clients going offline): at several frames
    every drawn node's marker shape is its recorded state."""
    from netemu.runner import run_scenario
    from netemu.scenario.load import from_dict
    from netemu.view import write_html

    out = tmp_path / "fl"
    run_scenario(from_dict(FL_RUN), out, progress=False)
    rec = load(out)
    html = tmp_path / "fl.html"
    write_html(rec, rec.labels, html)
    browser.events.clear()
    browser.call("Page.navigate", session=True, url=html.resolve().as_uri())
    browser.wait_for(f"{GD} && {GD}._transitionData && {GD}._transitionData._frames.length > 0")
    total = len(rec.protocols[rec.labels[0]]["k"])
    seen = set()
    for f in (0, total // 3, total // 2, total - 1):
        browser.js(f"Plotly.animate({GD}, ['{f}'], {{mode: 'immediate', frame: {{duration: 0, redraw: false}},"
                   " transition: {duration: 0}})")
        want = np.concatenate([rec.protocols[lb]["state"][min(f, len(rec.protocols[lb]["state"]) - 1)]
                               for lb in rec.labels]).tolist()
        browser.wait_for(f"JSON.stringify({CLASSIFY}) === '{json.dumps(want, separators=(',', ':'))}'", timeout=10)
        seen |= set(want)
    assert seen == {0, 1, 2, 3}
    assert browser.errors() == []

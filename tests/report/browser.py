"""Open an HTML file in headless Chromium and say what went wrong, with a screenshot.

Chromium is driven over the DevTools protocol through ``--remote-debugging-pipe``
(requests on fd 3, replies on fd 4, each a JSON message ended by a NUL byte), so only the
standard library is needed. It reports console errors and uncaught exceptions, resources
that failed to load, every request that left the file (anything but ``file:`` and
``data:`` URLs), and every ``<img>`` that did not decode (``naturalWidth == 0``). It can
also evaluate JavaScript expressions in the loaded page, after the screenshot.

    python -m tests.report.browser report.html shot.png   # prints the check as JSON
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome", "headless_shell")

_IMAGES = """JSON.stringify([...document.images].map(i => ({
    src: i.currentSrc.slice(0, 80), complete: i.complete, width: i.naturalWidth})))"""


def find_chromium() -> str | None:
    """The path of a Chromium-like browser on PATH, or None."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageCheck:
    """What a page load left behind: console ``errors`` (console.error, uncaught
    exceptions, failed loads), ``broken_images`` (src of each ``<img>`` with
    ``naturalWidth == 0``), ``external`` requests, the number of ``images``, and the
    ``values`` of the expressions asked for (one that throws adds an error)."""

    errors: list[str] = field(default_factory=list)
    broken_images: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    images: int = 0
    values: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.errors or self.broken_images or self.external)


class _Pipe:
    """A DevTools session over the two pipes; events are kept while waiting for replies."""

    def __init__(self, write_fd: int, read_fd: int, deadline: float):
        self.w, self.r, self.deadline = write_fd, read_fd, deadline
        self.buf, self.next_id, self.events = b"", 0, []

    def _recv(self) -> dict:
        while b"\0" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.r], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._recv()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> None:
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._recv())


def _problems(events: list[dict]) -> tuple[list[str], list[str]]:
    errors, external = [], []
    for e in events:
        p = e.get("params", {})
        if e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            errors.append(" ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
        elif e.get("method") == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            errors.append(d.get("exception", {}).get("description") or d.get("text", "exception"))
        elif e.get("method") == "Log.entryAdded" and p["entry"].get("level") == "error":
            errors.append(f"{p['entry'].get('text')} {p['entry'].get('url', '')}".strip())
        elif e.get("method") == "Network.requestWillBeSent":
            url = p["request"]["url"]
            if not url.startswith(("file:", "data:", "about:")):
                external.append(url)
    return errors, external


def _reap(pid: int, timeout: float) -> None:
    """Wait for the browser to exit (it does once its pipe closes); kill it if it hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def check_page(
    html_path: str | Path,
    screenshot: str | Path | None = None,
    width: int = 1400,
    timeout: float = 60.0,
    browser: str | None = None,
    expressions: Sequence[str] = (),
) -> PageCheck:
    """Load ``html_path`` in headless Chromium, check it, save a full-page PNG
    ``screenshot`` ``width`` CSS pixels wide, then evaluate each of ``expressions`` in
    the page (their JSON-able results in ``values``, in order)."""
    if not Path(html_path).is_file():
        raise FileNotFoundError(f"{html_path} is not a file")
    browser = browser or find_chromium()
    if browser is None:
        raise FileNotFoundError("no Chromium on PATH")
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()
    # The protocol wants the pipes on the child's fds 3 and 4. posix_spawn puts them
    # there (a preexec_fn would not be safe with the threads torch starts); copies at 10
    # and above are not clobbered by the first dup2, and close on exec.
    a = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 10)
    b = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    with tempfile.TemporaryDirectory() as profile:
        args = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "about:blank",
        ]
        pid = os.posix_spawn(
            browser,
            args,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_DUP2, a, 3),
                (os.POSIX_SPAWN_DUP2, b, 4),
            ],
        )
        os.close(a)
        os.close(b)
        pipe = _Pipe(to_chrome_w, from_chrome_r, time.monotonic() + timeout)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            s = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
                "sessionId"
            ]
            for domain in ("Page", "Runtime", "Log", "Network"):
                pipe.call(f"{domain}.enable", session=s)
            pipe.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
                session=s,
            )
            url = Path(html_path).resolve().as_uri()
            nav = pipe.call("Page.navigate", {"url": url}, session=s)
            if nav.get("errorText"):
                raise OSError(f"Chromium could not open {url}: {nav['errorText']}")
            pipe.wait_for("Page.loadEventFired")
            value = pipe.call(
                "Runtime.evaluate", {"expression": _IMAGES, "returnByValue": True}, session=s
            )["result"]["value"]
            images = json.loads(value)
            if screenshot is not None:
                height = pipe.call("Page.getLayoutMetrics", session=s)["cssContentSize"]["height"]
                pipe.call(
                    "Emulation.setDeviceMetricsOverride",
                    {
                        "width": width,
                        "height": int(height) + 1,
                        "deviceScaleFactor": 1,
                        "mobile": False,
                    },
                    session=s,
                )
                shot = pipe.call("Page.captureScreenshot", {"format": "png"}, session=s)
                Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
                Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
            values, thrown = [], []
            for expression in expressions:
                reply = pipe.call(
                    "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=s
                )
                values.append(reply["result"].get("value"))
                if "exceptionDetails" in reply:
                    d = reply["exceptionDetails"]
                    thrown.append(d.get("exception", {}).get("description") or d.get("text"))
            errors, external = _problems(pipe.events)
            errors += thrown
            with contextlib.suppress(EOFError, RuntimeError):
                pipe.call("Browser.close")
        finally:
            os.close(to_chrome_w)
            os.close(from_chrome_r)
            _reap(pid, 10.0)
    broken = [i["src"] for i in images if not i["complete"] or i["width"] == 0]
    return PageCheck(errors, broken, external, len(images), values)


if __name__ == "__main__":
    result = check_page(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    sys.stdout.write(json.dumps({**asdict(result), "ok": result.ok}, indent=1) + "\n")
    sys.exit(0 if result.ok else 1)

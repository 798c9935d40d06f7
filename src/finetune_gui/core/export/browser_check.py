"""Opening an exported web page in real headless Chromium and classifying images through it.

Chromium is driven over the DevTools protocol with the standard library only: one HTTP request
to find the page, then a WebSocket (RFC 6455, written out below: a few dozen lines) for the
commands. Measured here: about 2 s to start Chromium and load a page with a small model.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from finetune_gui.core.errors import ExportError

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Flags for a headless browser that may run as root, opens nothing on the network by itself
# and fakes a camera, so the page's webcam mode can be checked without one.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--remote-debugging-port=0", "--window-size=1200,900",
)
START_TIMEOUT = 30.0
IMAGES_PER_CALL = 16


def find_chromium() -> Path | None:
    """The Chromium to check pages with: $FINETUNE_GUI_CHROMIUM, or one on the PATH."""
    override = os.environ.get("FINETUNE_GUI_CHROMIUM")
    if override:
        return Path(override) if Path(override).is_file() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def require_chromium() -> Path:
    found = find_chromium()
    if found is None:
        raise ExportError(
            "The web format is checked in a real browser before it is saved, and no Chromium "
            "was found. Install it (Debian/Ubuntu: sudo apt-get install chromium) or point "
            "FINETUNE_GUI_CHROMIUM at a Chromium or Chrome program."
        )
    return found


class _WebSocket:
    """The client side of RFC 6455, text frames only: enough for the DevTools protocol."""

    def __init__(self, url: str, timeout: float) -> None:
        match = re.match(r"ws://([^/:]+):(\d+)(/.*)", url)
        if not match:
            raise ExportError(f"Chromium gave an unexpected DevTools address: {url}")
        host, port, path = match.group(1), int(match.group(2)), match.group(3)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ExportError("Chromium closed the DevTools connection while opening it.")
            response += chunk
        if b" 101 " not in response.split(b"\r\n", 1)[0]:
            raise ExportError("Chromium refused the DevTools connection.")
        self.buffer = response.split(b"\r\n\r\n", 1)[1]

    def send(self, text: str) -> None:
        payload = text.encode()
        header = bytes([0x81])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        masked = (np.frombuffer(payload, np.uint8) ^ np.resize(np.frombuffer(mask, np.uint8), n))
        self.sock.sendall(header + mask + masked.tobytes())

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ExportError("Chromium closed the DevTools connection.")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def receive(self) -> str:
        message = b""
        while True:
            first, second = self._read(2)
            n = second & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ExportError("Chromium closed the DevTools connection.")
            if opcode in (0x0, 0x1, 0x2):
                message += payload
                if first & 0x80:
                    return message.decode()

    def close(self) -> None:
        self.sock.close()


class Browser:
    """A headless Chromium with one page open; use as a context manager."""

    def __init__(self, page: Path, timeout: float = 120.0) -> None:
        self.page = Path(page).resolve()
        self.timeout = timeout
        self.profile = Path(tempfile.mkdtemp(prefix="finetune-gui-chromium-"))
        self.process: subprocess.Popen | None = None
        self.socket: _WebSocket | None = None
        self.next_id = 0

    def __enter__(self) -> Browser:
        command = [
            str(require_chromium()), *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
            self.page.as_uri(),
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        port = self._devtools_port()
        self.socket = _WebSocket(self._page_socket(port), self.timeout)
        return self

    def __exit__(self, *exc) -> None:
        if self.socket is not None:
            self.socket.close()
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            if self.process.stderr is not None:
                self.process.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _devtools_port(self) -> int:
        # Chromium writes the port it chose to DevToolsActivePort in the profile folder.
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                problem = (self.process.stderr.read() or "").strip().splitlines()[-3:]
                raise ExportError(
                    "Chromium stopped before it could open the page: " + " ".join(problem)
                )
            if marker.is_file():
                text = marker.read_text().split("\n")
                if text and text[0].strip().isdigit():
                    return int(text[0])
            time.sleep(0.05)
        raise ExportError(f"Chromium did not start within {START_TIMEOUT:.0f} s.")

    def _page_socket(self, port: int) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                connection.request("GET", "/json/list")
                targets = json.loads(connection.getresponse().read())
            finally:
                connection.close()
            pages = [t for t in targets if t.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.05)
        raise ExportError("Chromium opened no page to check.")

    def command(self, method: str, **params) -> dict:
        """Send one DevTools command and return its result (events on the way are skipped)."""
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.socket.receive())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise ExportError(f"Chromium could not {method}: {reply['error']}")
                return reply["result"]

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.command(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True,
            timeout=int(self.timeout * 1000),
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise ExportError(f"The web page failed in Chromium: {text}")
        return result["result"].get("value")

    def wait_ready(self) -> None:
        """Wait until the page has loaded its model, or say why it could not."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            state = self.evaluate(
                "window.finetuneGui ? window.finetuneGui.ready.then(() => 'ready', "
                "e => 'failed: ' + e.message) : 'loading'"
            )
            if state == "ready":
                return
            if state and state.startswith("failed"):
                raise ExportError(f"The web page could not load its model in Chromium ({state}).")
            time.sleep(0.1)
        raise ExportError(f"The web page did not load its model within {self.timeout:.0f} s.")

    def classify_files(self, paths: Sequence[Path], classes: Sequence[str]) -> np.ndarray:
        """Probabilities (N, classes) from the page's own classify() for each file's bytes."""
        rows: list[list[float]] = []
        for start in range(0, len(paths), IMAGES_PER_CALL):
            chunk = [
                base64.b64encode(Path(p).read_bytes()).decode()
                for p in paths[start : start + IMAGES_PER_CALL]
            ]
            rows += self.evaluate(
                "(async (files, classes) => { const out = [];"
                " for (const text of files) {"
                "  const bytes = Uint8Array.from(atob(text), c => c.charCodeAt(0));"
                "  const result = await window.finetuneGui.classify(new Blob([bytes]));"
                "  out.push(classes.map(c => result.probabilities[c])); }"
                f" return out; }})({json.dumps(chunk)}, {json.dumps(list(classes))})"
            )
        return np.asarray(rows, dtype=np.float32).reshape(len(paths), len(classes))

    def screenshot(self, target: Path) -> Path:
        data = self.command("Page.captureScreenshot", format="png")["data"]
        Path(target).write_bytes(base64.b64decode(data))
        return Path(target)


def classify_in_browser(
    page: Path, paths: Sequence[Path], classes: Sequence[str]
) -> np.ndarray:
    """Open `page` in headless Chromium and return its probabilities for each image file."""
    with Browser(page) as browser:
        browser.wait_ready()
        return browser.classify_files(paths, classes)

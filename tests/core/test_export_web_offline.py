"""The web page works without the internet and never tries to reach it.

The exported page is opened in headless Chromium with the network blocked (every host name
resolves to nothing, every connection goes to a closed proxy), and every request the browser
makes is recorded through the DevTools Network domain, from before the page starts loading until
it has classified pictures. The README promises a page that works offline: it must load its
model, answer, and send nothing anywhere (no font, no script, no report leaves file://).
Skipped with the reason when Chromium or the pinned ONNX Runtime Web files are missing, as the
other web tests are.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.conftest import ENSEMBLE_SIZES
from tests.web_tools import missing_web_tools

from finetune_gui.core.export import browser_check
from finetune_gui.core.export.browser_check import Browser

pytestmark = pytest.mark.slow

needs_browser = pytest.mark.skipif(
    missing_web_tools() is not None, reason=f"web export cannot be checked: {missing_web_tools()}"
)
# Nothing leaves the machine: no name resolves, and any connection would go to a closed port.
OFFLINE_FLAGS = ("--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9")
# Addresses that stay inside the page or on this disk.
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")


class RecordingBrowser(Browser):
    """A Browser that keeps every DevTools event it reads (the base class skips them)."""

    def __init__(self, page: Path) -> None:
        super().__init__(page)
        self.events: list[dict] = []

    def command(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.socket.receive())
            if "method" in reply:
                self.events.append(reply)
            elif reply.get("id") == self.next_id:
                if "error" in reply:
                    raise AssertionError(f"Chromium could not {method}: {reply['error']}")
                return reply["result"]

    def requested(self) -> list[str]:
        """Every address the browser asked for: documents, scripts, fetches, WebSockets."""
        urls = []
        for event in self.events:
            if event["method"] == "Network.requestWillBeSent":
                urls.append(event["params"]["request"]["url"])
            elif event["method"] == "Network.webSocketCreated":
                urls.append(event["params"]["url"])
        return urls


@pytest.fixture(scope="module")
def page(tmp_path_factory, ensemble_members) -> tuple[Path, Path]:
    """The web page of the session's small 32 px run (copied: exporting logs into the run),
    written without the export's own browser check, which this test makes offline."""
    if missing_web_tools():
        pytest.skip(missing_web_tools())
    from finetune_gui.core.export.job import export_model

    run = tmp_path_factory.mktemp("offline-run") / "run"
    shutil.copytree(ensemble_members[ENSEMBLE_SIZES.index(32)], run)
    result = export_model(run, "web", tmp_path_factory.mktemp("offline-web") / "shipped",
                          in_browser=False)
    return result.model_path, run


@needs_browser
def test_the_page_works_offline_and_requests_nothing_outside_file(page, tmp_path, monkeypatch):
    from finetune_gui.core.run.folder import RunFolder

    model_page, run_dir = page
    monkeypatch.setattr(browser_check, "CHROMIUM_FLAGS",
                        (*browser_check.CHROMIUM_FLAGS, *OFFLINE_FLAGS))
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><title>blank</title>", "utf-8")
    split = json.loads((run_dir / "split.json").read_text("utf-8"))
    pictures = [Path(split["root"]) / item[0] for item in split["test"][:4]]
    run = RunFolder.open(run_dir)

    with RecordingBrowser(blank) as browser:
        # Recording starts before the page does: its first request is on the record.
        browser.command("Network.enable")
        browser.command("Page.enable")
        browser.command("Page.navigate", url=model_page.resolve().as_uri())
        try:
            browser.wait_ready()
            answers = browser.classify_files(pictures, run.classes)
        finally:
            # Let anything the page sent late (a timer, a report) reach the record.
            browser.evaluate("new Promise(done => setTimeout(done, 1000))")
            requested = browser.requested()

    outside = [url for url in requested if not url.startswith(LOCAL_SCHEMES)]
    assert outside == [], f"the page tried to reach the network: {outside}"
    assert model_page.resolve().as_uri() in requested  # the record is not empty by mistake
    # ... and it works offline: every picture got an answer.
    assert answers.shape == (len(pictures), len(run.classes))
    assert abs(float(answers.sum(axis=1).mean()) - 1.0) < 1e-4

"""Debian's Chromium, headless, driven over the Chrome DevTools Protocol with websocket-client:
open a page, wait for its load event and for a condition in the page, evaluate JavaScript,
take a screenshot; every console error, uncaught exception and network request is recorded.

Chromium prints `DevTools listening on ws://…` on stderr once its endpoint is up: that line is
what the driver waits for (no sleeps), then it attaches to the page target.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Any

import websocket

BINARIES = ("chromium", "chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root, where the sandbox refuses to start
    "--disable-gpu",
    "--remote-debugging-port=0",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def chromium_binary() -> str | None:
    return os.environ.get("KUBETUNE_CHROMIUM") or next(
        (found for name in BINARIES if (found := shutil.which(name))), None
    )


class Page:
    def __init__(self, profile: Path, width: int = 1280, height: int = 1200) -> None:
        binary = chromium_binary()
        if binary is None:
            raise RuntimeError("no chromium: run hack/chromium.sh (apt-get install chromium)")
        self.process = subprocess.Popen(
            [
                binary,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "about:blank",  # not the new-tab page, which loads scripts of its own
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        browser_url = ""
        for line in self.process.stderr:  # blocks until Chromium says where it listens
            if line.startswith("DevTools listening on "):
                browser_url = line.split(" on ", 1)[1].strip()
                break
        if not browser_url:
            raise RuntimeError(f"chromium exited with {self.process.wait()} before listening")
        threading.Thread(target=self.process.stderr.read, daemon=True).start()  # drain
        http = browser_url.replace("ws://", "http://").split("/devtools/")[0]
        with urllib.request.urlopen(f"{http}/json/list") as answer:
            targets = json.load(answer)
        target = next(t for t in targets if t["type"] == "page")
        self.socket = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=120)
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a method; events that arrive meanwhile are recorded."""
        call = next(self.ids)
        self.socket.send(json.dumps({"id": call, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == call:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            self.events.append(message)

    def wait_for_event(self, method: str) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            message: dict[str, Any] = json.loads(self.socket.recv())
            self.events.append(message)
            if message.get("method") == method:
                return message

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (a promise is awaited)."""
        result = self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        shot = self.send("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries, as text."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(json.dumps(params.get("args")))
            elif method == "Runtime.exceptionThrown":
                found.append(json.dumps(params.get("exceptionDetails")))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(params["entry"].get("text", ""))
        return found

    def requests(self) -> list[str]:
        """Every URL the page asked for."""
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(30)

"""Headless Debian ``chromium`` driven over the DevTools protocol (websocket-client): log in to
Label Studio with a session cookie, open a page, read its DOM text, take a PNG screenshot."""
from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import requests


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def ls_session_cookie(ls_url: str, email: str, password: str) -> str:
    """Log in through Label Studio's own form (CSRF included); returns the ``sessionid``."""
    s = requests.Session()
    page = s.get(f"{ls_url}/user/login/", timeout=30)
    m = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    token = m.group(1) if m else s.cookies.get("csrftoken")
    r = s.post(f"{ls_url}/user/login/", data={"email": email, "password": password, "csrfmiddlewaretoken": token},
               headers={"Referer": f"{ls_url}/user/login/"}, timeout=30, allow_redirects=False)
    sid = s.cookies.get("sessionid")
    if r.status_code not in (302, 303) or not sid:
        raise AssertionError(f"Label Studio login failed: HTTP {r.status_code}")
    return sid


class Chromium:
    def __init__(self, exe: str, profile: Path, port: int, size: tuple[int, int] = (1440, 900)):
        self.proc = subprocess.Popen(
            [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             f"--user-data-dir={profile}", f"--remote-debugging-port={port}", "--remote-allow-origins=*",
             f"--window-size={size[0]},{size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=open(profile.parent / "chromium.log", "wb"), start_new_session=True)
        self.port = port
        self._ids = itertools.count(1)
        self.ws = None

    def connect(self, timeout: float = 60) -> "Chromium":
        import websocket

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc.poll() is None, "chromium exited"
            try:
                pages = [t for t in requests.get(f"http://127.0.0.1:{self.port}/json/list", timeout=2).json()
                         if t["type"] == "page"]
                if pages:
                    self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=60,
                                                          suppress_origin=True)
                    return self
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.3)
        raise TimeoutError("chromium's DevTools endpoint did not come up")

    def call(self, method: str, **params):
        mid = next(self._ids)
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def set_cookie(self, url: str, name: str, value: str) -> None:
        self.call("Network.enable")
        self.call("Network.setCookie", name=name, value=value, url=url, path="/")

    def navigate(self, url: str) -> None:
        self.call("Page.enable")
        self.call("Page.navigate", url=url)

    def text(self) -> str:
        r = self.call("Runtime.evaluate", expression="document.body ? document.body.innerText : ''",
                      returnByValue=True)
        return r.get("result", {}).get("value") or ""

    def html(self) -> str:
        r = self.call("Runtime.evaluate", expression="document.documentElement.outerHTML", returnByValue=True)
        return r.get("result", {}).get("value") or ""

    def wait_text(self, predicate, timeout: float) -> str:
        end = time.monotonic() + timeout
        text = ""
        while time.monotonic() < end:
            text = self.text()
            if predicate(text):
                return text
            time.sleep(0.5)
        raise AssertionError(f"page never showed what was expected; it shows:\n{text[:2000]}")

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            if self.ws:
                self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

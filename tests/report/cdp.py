"""A minimal headless-Chromium driver over the DevTools protocol, standard library only.

Chromium's ``--remote-debugging-pipe`` speaks the DevTools protocol over two file descriptors
(it reads commands on fd 3 and writes replies and events on fd 4, messages separated by NUL
bytes), as Puppeteer and Playwright use it. No websocket client and no extra package are needed,
and no port is opened.

`load(url)` opens the page in a fresh tab and records what a person would see in the DevTools
console: uncaught exceptions, ``console.error``/``console.assert`` calls and browser log entries
of level error (failed loads, Content-Security-Policy violations), plus every network request.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import subprocess
import threading
import time

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def _high_fd(fd: int) -> int:
    """The same pipe end at a number ≥ 10, so that moving it to 3 or 4 in the child cannot clash
    (bash, unlike dash, accepts such numbers in redirections)."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return new


class Chromium:
    def __init__(self, exe: str, profile_dir: str, timeout: float = 30.0):
        self.timeout = timeout
        cmd_r, cmd_w = map(_high_fd, os.pipe())  # we write commands, Chromium reads them on fd 3
        ev_r, ev_w = map(_high_fd, os.pipe())  # Chromium writes on fd 4, we read
        args = [exe, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile_dir}", "about:blank"]
        self._log_path = os.path.join(profile_dir, "chromium-stderr.log")  # a file: a full pipe would block it
        with open(self._log_path, "wb") as log:
            self.proc = subprocess.Popen(["bash", "-c", f'exec "$0" "$@" 3<&{cmd_r} 4>&{ev_w}', *args],
                                         pass_fds=(cmd_r, ev_w), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=log)
        os.close(cmd_r)
        os.close(ev_w)
        self._out = os.fdopen(cmd_w, "wb", buffering=0)
        self._in = os.fdopen(ev_r, "rb", buffering=0)
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self._events: "queue.Queue[dict]" = queue.Queue()
        self._lock = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        while chunk := self._in.read(65536):
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                msg = json.loads(raw)
                if "id" in msg:
                    with self._lock:
                        self._replies[msg["id"]] = msg
                        self._lock.notify_all()
                else:
                    self._events.put(msg)
        with self._lock:
            self._lock.notify_all()

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        msg_id = self._next_id
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._out.write(json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        with self._lock:
            while msg_id not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or (not self._reader.is_alive() and msg_id not in self._replies):
                    raise TimeoutError(f"no reply to {method} from Chromium ({self.stderr_tail()})")
                self._lock.wait(min(left, 0.5))
            reply = self._replies.pop(msg_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def load(self, url: str, settle_s: float = 0.3) -> dict:
        """Open ``url`` in a new tab; returns {"session", "console" (errors), "requests" (URLs)}."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.send(f"{domain}.enable", session=session)
        self.send("Page.navigate", {"url": url}, session=session)
        errors, requests, loaded_at = [], [], None
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if loaded_at is not None and time.monotonic() - loaded_at > settle_s:
                break
            try:
                ev = self._events.get(timeout=0.1)
            except queue.Empty:
                continue
            if ev.get("sessionId") != session:
                continue
            method, p = ev.get("method"), ev.get("params", {})
            if method == "Page.loadEventFired":
                loaded_at = time.monotonic()
            elif method == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                errors.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errors.append(f"console.{p['type']}: " + " ".join(str(a.get("value", a.get("description")))
                                                                   for a in p.get("args", [])))
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                errors.append(f"log ({p['entry'].get('source')}): {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif method == "Network.requestWillBeSent":
                requests.append(p.get("request", {}).get("url", ""))
        if loaded_at is None:
            raise TimeoutError(f"{url} did not finish loading in {self.timeout} s")
        return {"session": session, "console": errors, "requests": requests}

    def evaluate(self, session: str, expression: str):
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session)
        if "exceptionDetails" in res:
            raise RuntimeError(f"evaluate failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def stderr_tail(self) -> str:
        try:
            with open(self._log_path, "rb") as f:
                return f.read().decode(errors="replace")[-500:]
        except OSError:
            return ""

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.send("Browser.close")
        except (OSError, TimeoutError, RuntimeError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)  # sees EOF once Chromium is gone
        for f in (self._out, self._in):
            try:
                f.close()
            except OSError:
                pass

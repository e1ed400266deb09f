"""One reusable fake OpenAI-compatible server (http.server in a thread) with switchable faults.

    with FakeServer(post="500") as srv:     # every POST answers HTTP 500
        srv.url                             # http://127.0.0.1:<port>/v1
        srv.posts                           # [(monotonic time, body), ...] as the server saw them

Behaviours of POST /v1/chat/completions (``post``; ``script`` is consumed first, one per request):
``ok`` (a chat answer, or top log-probs for "4", "3", " 5" when ``logprobs`` is asked), ``500``,
``429`` (with ``retry_after`` as the Retry-After header when set), ``401``, ``invalid_json``,
``no_choices``, ``trickle`` (a valid answer sent one byte every ``trickle_s`` seconds).
GET /v1/models: ``models`` lists the served names (None: HTTP 501, a server that lists none);
``get`` = ``401`` or ``404`` answers that status instead.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeServer:
    def __init__(self, post: str = "ok", script: list[str] | None = None, models: list[str] | None = ("m",),
                 get: str = "ok", retry_after: str | None = None, trickle_s: float = 0.2):
        self.post, self.script, self.get = post, list(script or []), get
        self.models = list(models) if models is not None else None
        self.retry_after, self.trickle_s = retry_after, trickle_s
        self.posts: list[tuple[float, dict]] = []
        self.gets: list[dict] = []  # the headers of each GET
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> "FakeServer":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, data: bytes = b"", headers: dict | None = None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                fake.gets.append(dict(self.headers))
                if self.path.rstrip("/") != "/v1/models" or fake.get == "404":
                    return self._send(404, b'{"detail": "Not Found"}')
                if fake.get == "401":
                    return self._send(401, b'{"error": "invalid api key"}')
                if fake.models is None:
                    return self._send(501)
                body = {"object": "list", "data": [{"id": m, "object": "model"} for m in fake.models]}
                self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake._lock:
                    fake.posts.append((time.monotonic(), body))
                    mode = fake.script.pop(0) if fake.script else fake.post
                if mode in ("500", "401"):
                    return self._send(int(mode), b'{"error": "fault"}')
                if mode == "429":
                    return self._send(429, b'{"error": "slow down"}',
                                      {"Retry-After": fake.retry_after} if fake.retry_after else {})
                if mode == "invalid_json":
                    return self._send(200, b'{"choices": [{"message": ', {"Content-Type": "application/json"})
                if mode == "no_choices":
                    return self._send(200, b'{"object": "chat.completion", "usage": {}}',
                                      {"Content-Type": "application/json"})
                data = json.dumps(self._answer(body)).encode()
                if mode != "trickle":
                    return self._send(200, data, {"Content-Type": "application/json"})
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    for i in range(len(data)):
                        self.wfile.write(data[i:i + 1])
                        self.wfile.flush()
                        time.sleep(fake.trickle_s)
                except OSError:  # the client gave up: that is the point
                    pass

            @staticmethod
            def _answer(body: dict) -> dict:
                if body.get("logprobs"):
                    top = [{"token": "4", "logprob": -0.2}, {"token": "3", "logprob": -1.9},
                           {"token": " 5", "logprob": -3.0}]
                    return {"choices": [{"message": {"content": "4"},
                                         "logprobs": {"content": [{"token": "4", "top_logprobs": top}]}}]}
                return {"choices": [{"message": {"content": "Antwort: " + body["messages"][-1]["content"][:20]},
                                     "finish_reason": "stop"}], "usage": {"completion_tokens": 3}}

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True  # a trickling handler must not hold the test at shutdown
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

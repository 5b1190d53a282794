"""A token introspection endpoint (RFC 7662) for a test Dovecot to check XOAUTH2 logins.

It stands in for Google's or Microsoft's authorization server: the test says which
access tokens are valid, and for whom, and can read back which tokens were presented.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs


class IntrospectionServer:
    """``POST /introspect`` with ``token=…`` answers ``{"active": true, "username": …}``
    for a token in ``valid``, and ``{"active": false}`` for any other."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self.valid: dict[str, str] = {}  # access token -> user name
        self.presented: list[str] = []  # every token asked about, in order
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer((self.host, 0), self._handler())
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self._http.server_address[1]}/introspect"

    def grant(self, token: str, user: str) -> None:
        with self._lock:
            self.valid[token] = user

    def revoke(self, token: str) -> None:
        with self._lock:
            self.valid.pop(token, None)

    def _answer(self, token: str) -> dict[str, object]:
        with self._lock:
            self.presented.append(token)
            user = self.valid.get(token)
        return {"active": True, "username": user} if user else {"active": False}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                body = json.dumps(server._answer(form.get("token", [""])[0])).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: pytest shows the server's stderr otherwise

        return Handler

    def __enter__(self) -> IntrospectionServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

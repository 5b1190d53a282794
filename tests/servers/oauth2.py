"""Local OAuth 2.0 servers for tests: an introspection endpoint (RFC 7662) a test Dovecot
asks to check XOAUTH2 logins, and a whole authorization server that issues the tokens.

They stand in for Google's or Microsoft's: the test says which access tokens are valid,
and for whom, and can read back which tokens were presented and what was asked.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
from base64 import b64decode
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

from authlib.oauth2.rfc7636 import create_s256_code_challenge


class IntrospectionServer:
    """``POST /introspect`` with ``token=…`` answers ``{"active": true, "username": …}``
    for a token in ``valid``, and ``{"active": false}`` for any other."""

    host = "127.0.0.1"

    def __init__(self) -> None:
        self.valid: dict[str, str] = {}  # access token -> user name
        self.presented: list[str] = []  # every token asked about, in order
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer((self.host, 0), self._handler())
        self._http.daemon_threads = True  # Dovecot keeps its connections: do not wait on them
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self._http.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/introspect"

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

    def _get(self, path: str, query: dict[str, str]) -> Reply:
        return Reply(404, "text/plain", b"not found")

    def _post(self, path: str, form: dict[str, str], authorization: str) -> Reply:
        return Reply.json(self._answer(form.get("token", "")))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                self._send(server._get(parts.path, _single(parse_qs(parts.query))))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = _single(parse_qs(self.rfile.read(length).decode()))
                authorization = self.headers.get("Authorization", "")
                self._send(server._post(urlsplit(self.path).path, form, authorization))

            def _send(self, reply: Reply) -> None:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("Cache-Control", "no-store")
                if reply.location:
                    self.send_header("Location", reply.location)
                self.end_headers()
                self.wfile.write(reply.body)

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


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes
    location: str = ""

    @classmethod
    def json(cls, payload: dict[str, object], status: int = 200) -> Reply:
        return cls(status, "application/json", json.dumps(payload).encode())

    @classmethod
    def error(cls, error: str, description: str, status: int = 400) -> Reply:
        return cls.json({"error": error, "error_description": description}, status)

    @classmethod
    def page(cls, text: str, status: int = 200) -> Reply:
        return cls(status, "text/html; charset=utf-8", text.encode())

    @classmethod
    def redirect(cls, url: str) -> Reply:
        return cls(302, "text/plain", b"", location=url)


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    user: str
    scope: str
    used: bool = False
    refresh_token: str = ""  # issued for it: revoked if the code is presented again


@dataclass
class _Refresh:
    client_id: str
    user: str
    scope: str
    revoked: bool = False


class AuthorizationServer(IntrospectionServer):
    """An OAuth 2.0 authorization server as Microsoft's and Google's behave for a desk.

    ``GET /authorize`` shows a consent page for ``user`` (Accept or Cancel: a person, or
    Playwright, decides); ``POST /token`` takes ``authorization_code`` (the client's
    secret, the exact ``redirect_uri``, a code used once, and the PKCE S256
    ``code_verifier``, RFC 7636) and ``refresh_token`` (rotated when ``rotate`` is set,
    as Microsoft does; a revoked or unknown one is ``invalid_grant``, as when a person
    withdraws consent). The access tokens it issues are what ``/introspect`` vouches for
    until they expire, so they log into a Dovecot that asks it.
    """

    def __init__(self, *, client_id: str, client_secret: str, user: str) -> None:
        super().__init__()
        self.client_id, self.client_secret, self.user = client_id, client_secret, user
        self.redirect_uris: set[str] = set()
        self.access_seconds = 3600
        self.refresh_expires_in: int | None = None  # said with each token when set
        self.rotate = True
        self.token_requests: list[dict[str, str]] = []  # every /token form, in order
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._expiry: dict[str, float] = {}  # access token -> time.time() it ends

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    def revoke_consent(self) -> None:
        """The person withdraws the app's access: every token it holds stops working."""
        with self._lock:
            for grant in self._refresh.values():
                grant.revoked = True
            self.valid.clear()

    def expire_access_tokens(self) -> None:
        with self._lock:
            self.valid.clear()

    def refresh_tokens(self) -> list[str]:
        """Every refresh token handed out, revoked or not."""
        with self._lock:
            return list(self._refresh)

    def refresh_grants(self) -> int:
        return sum(1 for r in self.token_requests if r.get("grant_type") == "refresh_token")

    # -- the endpoints ---------------------------------------------------------------

    def _get(self, path: str, query: dict[str, str]) -> Reply:
        if path != "/authorize":
            return super()._get(path, query)
        problem = self._bad_authorize_request(query)
        if problem:  # RFC 6749 4.1.2.1: never redirect to an unchecked address
            return Reply.page(f"<h1>Sorry</h1><p>{html.escape(problem)}</p>", 400)
        return Reply.page(self._consent_page(query))

    def _post(self, path: str, form: dict[str, str], authorization: str) -> Reply:
        if path == "/authorize":
            return self._decide(form)
        if path == "/token":
            with self._lock:
                self.token_requests.append(dict(form))
            return self._token(form, authorization)
        return Reply.json(self._answer(form.get("token", "")))

    def _answer(self, token: str) -> dict[str, object]:
        with self._lock:
            if self._expiry.get(token, float("inf")) <= time.time():
                self.valid.pop(token, None)
        return super()._answer(token)

    def _bad_authorize_request(self, query: dict[str, str]) -> str:
        if query.get("client_id") != self.client_id:
            return "unknown client_id"
        if query.get("redirect_uri") not in self.redirect_uris:
            return f"redirect_uri {query.get('redirect_uri')!r} is not registered"
        if query.get("response_type") != "code":
            return "response_type must be code"
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return "PKCE with S256 is required"
        return ""

    def _consent_page(self, query: dict[str, str]) -> str:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in query.items()
        )
        return (
            "<!DOCTYPE html><html lang='en'><head><title>Sign in</title></head><body>"
            f"<h1>Let CaseConsultant read and send mail as {html.escape(self.user)}?</h1>"
            f"<p>It asks for: {html.escape(query.get('scope', ''))}</p>"
            f'<form method="post" action="/authorize">{hidden}'
            '<button name="decision" value="accept">Accept</button> '
            '<button name="decision" value="cancel">Cancel</button></form></body></html>'
        )

    def _decide(self, form: dict[str, str]) -> Reply:
        problem = self._bad_authorize_request(form)
        if problem:
            return Reply.page(f"<h1>Sorry</h1><p>{html.escape(problem)}</p>", 400)
        answer: dict[str, str] = {}
        if form.get("decision") == "accept":
            code = secrets.token_urlsafe(24)
            with self._lock:
                self._codes[code] = _Code(
                    client_id=form["client_id"],
                    redirect_uri=form["redirect_uri"],
                    challenge=form["code_challenge"],
                    user=self.user,
                    scope=form.get("scope", ""),
                )
            answer["code"] = code
        else:
            answer["error"] = "access_denied"
            answer["error_description"] = "The user declined to consent."
        if "state" in form:
            answer["state"] = form["state"]
        return Reply.redirect(f"{form['redirect_uri']}?{urlencode(answer)}")

    def _token(self, form: dict[str, str], authorization: str) -> Reply:
        client_id, secret = _client_credentials(form, authorization)
        if client_id != self.client_id or secret != self.client_secret:
            return Reply.error("invalid_client", "client authentication failed", 401)
        grant_type = form.get("grant_type")
        with self._lock:
            if grant_type == "authorization_code":
                return self._exchange_code(form)
            if grant_type == "refresh_token":
                return self._use_refresh_token(form)
        return Reply.error("unsupported_grant_type", f"{grant_type!r}")

    def _exchange_code(self, form: dict[str, str]) -> Reply:
        grant = self._codes.get(form.get("code", ""))
        if grant is None:
            return Reply.error("invalid_grant", "unknown authorization code")
        if grant.used:  # RFC 6749 4.1.2: refuse, and revoke what the code gave
            if grant.refresh_token in self._refresh:
                self._refresh[grant.refresh_token].revoked = True
            return Reply.error("invalid_grant", "the authorization code was already used")
        grant.used = True
        if form.get("redirect_uri") != grant.redirect_uri:
            return Reply.error("invalid_grant", "redirect_uri does not match")
        verifier = form.get("code_verifier", "")
        if not verifier or create_s256_code_challenge(verifier) != grant.challenge:
            return Reply.error("invalid_grant", "PKCE verification failed")
        grant.refresh_token = self._new_refresh_token(grant.user, grant.scope)
        return self._tokens(grant.user, grant.scope, grant.refresh_token)

    def _use_refresh_token(self, form: dict[str, str]) -> Reply:
        given = form.get("refresh_token", "")
        held = self._refresh.get(given)
        if held is None or held.revoked or held.client_id != self.client_id:
            return Reply.error("invalid_grant", "AADSTS70000: the grant has been revoked")
        refresh_token = given
        if self.rotate:
            held.revoked = True
            refresh_token = self._new_refresh_token(held.user, held.scope)
        return self._tokens(held.user, held.scope, refresh_token)

    def _new_refresh_token(self, user: str, scope: str) -> str:
        token = f"rt-{secrets.token_urlsafe(24)}"
        self._refresh[token] = _Refresh(client_id=self.client_id, user=user, scope=scope)
        return token

    def _tokens(self, user: str, scope: str, refresh_token: str) -> Reply:
        access = f"at-{secrets.token_urlsafe(24)}"
        self.valid[access] = user
        self._expiry[access] = time.time() + self.access_seconds
        answer: dict[str, object] = {
            "token_type": "Bearer",
            "access_token": access,
            "expires_in": self.access_seconds,
            "refresh_token": refresh_token,
            "scope": scope,
        }
        if self.refresh_expires_in is not None:
            answer["refresh_token_expires_in"] = self.refresh_expires_in
        return Reply.json(answer)


def _client_credentials(form: dict[str, str], authorization: str) -> tuple[str, str]:
    """HTTP Basic (RFC 6749 2.3.1) or ``client_id``/``client_secret`` in the form."""
    if authorization.startswith("Basic "):
        user, _, password = b64decode(authorization[6:]).decode().partition(":")
        return unquote_plus(user), unquote_plus(password)
    return form.get("client_id", ""), form.get("client_secret", "")


def _single(query: dict[str, list[str]]) -> dict[str, str]:
    return {key: values[0] for key, values in query.items()}

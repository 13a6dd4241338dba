"""Safety of ``advisor serve``: where it may listen, and a check in front of every request.

* :func:`check_bind`: a loopback address needs nothing; any other address
  needs a token, or the server refuses to start (one line, exit 2).
* :class:`Guard` (plain ASGI, no web library imported here):

  - the ``Host`` header must name loopback (``localhost``, ``127.0.0.1``,
    ``[::1]``), the bound host or an ``--allow-host`` name, so a page whose
    DNS name is rebound to 127.0.0.1 is refused;
  - a request that changes something and carries an ``Origin`` must come
    from the app's own origin (another site's page, even one on another
    local port, cannot post to the app);
  - with a token, every request presents it as ``Authorization: Bearer``
    or the ``advisor_token`` cookie, which ``/?token=...`` sets once;
  - bodies larger than the limit are refused by their ``Content-Length``;
  - every response carries a Content-Security-Policy that allows only the
    app's own scripts, styles and connections, and no framing.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from advisor.errors import DocumentError, InputError

__all__ = ["CSP", "Guard", "UploadTooLarge", "check_bind", "host_name", "is_loopback"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
COOKIE = "advisor_token"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class UploadTooLarge(DocumentError):
    """An upload over the size limit (HTTP 413)."""


def host_name(value: str) -> str:
    """The host of a ``Host`` header or netloc, lower-case, without port or IPv6 brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else ""
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def is_loopback(host: str) -> bool:
    name = host_name(host) if host.startswith("[") else host.strip().lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token (before anything loads)."""
    if not host.strip():
        raise InputError("--host is empty; use 127.0.0.1 (this machine only) or an address with --token")
    if not is_loopback(host) and not (token and token.strip()):
        raise InputError(
            f"refusing to listen on {host} without a token: anyone who can reach it could read and change "
            "your documents; pass --token or set ADVISOR_TOKEN (or use --host 127.0.0.1)"
        )
    if token is not None and len(token.strip()) < 8:
        raise InputError("the token is too short; use at least 8 characters (e.g. from: openssl rand -hex 16)")


class Guard:
    """ASGI middleware: Host, Origin and token checks, body size limit, security headers."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        bound_host: str = "127.0.0.1",
        token: str | None = None,
        allow_hosts: Iterable[str] = (),
        max_body: int = 10 * 2**20,
    ) -> None:
        self.app = app
        self.token = token.strip() if token else None
        self.max_body = max_body
        hosts = set(LOOPBACK_NAMES) | {host_name(h) if h.startswith("[") else h.lower() for h in allow_hosts}
        bound = bound_host.strip().lower().strip("[]")
        if bound not in ("0.0.0.0", "::", ""):
            hosts.add(bound)
        self.hosts = frozenset(hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        login = scope.get("path") == "/" and "token" in parse_qs(scope.get("query_string", b"").decode())
        refusal = self._refusal(scope, headers, check_token=not login)
        if refusal is not None:
            await _respond(send, *refusal)
            return
        if self.token and login:
            await self._login(scope, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_security_headers()]
            await send(message)

        if "content-length" not in headers and scope.get("method") not in _SAFE_METHODS:
            # a body without Content-Length (chunked) is read here, counted, and handed on whole
            body = await _read_limited(receive, self.max_body)
            if body is None:
                await _respond(
                    send, 413, f"the request body is larger than {_size(self.max_body)}; split the file first"
                )
                return
            receive = _replay(body, receive)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope, headers: dict[str, str], check_token: bool) -> tuple[int, str] | None:
        if host_name(headers.get("host", "")) not in self.hosts:
            return 421, (
                "this server answers only requests addressed to localhost, 127.0.0.1 or its own address "
                "(the Host header named another; a page may be trying DNS rebinding); to accept that name, "
                "start it with --allow-host NAME"
            )
        origin = headers.get("origin")
        # same origin only: the Origin's host and port are the Host header's (another local port is another site)
        foreign = origin is not None and urlsplit(origin).netloc.lower() != headers.get("host", "").strip().lower()
        if scope.get("method") not in _SAFE_METHODS and foreign:
            return 403, "requests that change something must come from the advisor's own pages"
        length = headers.get("content-length", "0")
        if not length.isdigit() or int(length) > self.max_body:
            return 413, f"the request body is larger than {_size(self.max_body)}; split the file first"
        if self.token and check_token:
            presented = _presented_token(headers)
            if presented is None or not hmac.compare_digest(presented.encode(), self.token.encode()):
                return 401, (
                    "this server needs its token: send Authorization: Bearer <token>, "
                    "or open /?token=<token> once in the browser"
                )
        return None

    async def _login(self, scope: Scope, send: Send) -> None:
        given = parse_qs(scope["query_string"].decode()).get("token", [""])[0]
        if not hmac.compare_digest(given.encode(), (self.token or "").encode()):
            await _respond(send, 401, "wrong token; open /?token=<the token the server was started with>")
            return
        cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        await send(
            {
                "type": "http.response.start",
                "status": 303,
                "headers": [(b"location", b"/"), (b"set-cookie", cookie.encode()), *_security_headers()],
            }
        )
        await send({"type": "http.response.body", "body": b""})


async def _read_limited(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``body`` as one message, then the connection's own messages (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _size(limit: int) -> str:
    return f"{limit / 2**20:g} MiB" if limit >= 2**20 else f"{limit / 2**10:g} KiB"


def _presented_token(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


def _security_headers() -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", CSP.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-resource-policy", b"same-origin"),
    ]


async def _respond(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}, ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + _security_headers()})
    await send({"type": "http.response.body", "body": body})

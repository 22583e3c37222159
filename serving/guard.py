"""The ingress's pure ASGI middleware: every check that must happen before a request body is parsed.

In order, for each HTTP request (:class:`Guard`):

1. the Host header must name an allowed host (``ServerSettings.allowed_hosts``), else 400: a page on
   another site cannot reach the server by DNS rebinding;
2. a client address with too many failed key or login attempts gets 429 with ``Retry-After``;
3. a declared ``Content-Length`` over ``max_body_bytes`` gets 413 at once; a chunked body is counted as it
   arrives and gets 413 as soon as it passes the limit, before the app sees any of it;
4. on ``/v1`` with a key, a missing or wrong ``Authorization: Bearer <key>`` gets 401 (and counts as a
   failed attempt); a failed UI login (``.../login`` answered 4xx) counts too;
5. anything the routes leave unhandled becomes a 500 with no traceback text.

Rejections are JSON ``{"message", "detail": [{"loc", "msg"}]}`` like every other error of the API.
"""

from __future__ import annotations

import hmac
import json
import logging

from .security import FailureThrottle, ServerSettings, host_of

__all__ = ["Guard", "error_body"]

log = logging.getLogger("evospikenet.serving")


def error_body(field: str, msg: str, loc_prefix: str = "body") -> dict:
    """The JSON of every rejected request: ``message`` names the field, ``detail`` is a list of locations."""
    return {"message": f"{field}: {msg}", "detail": [{"loc": [loc_prefix, field], "msg": msg}]}


async def _reply(send, status: int, body: dict, headers: dict | None = None, close: bool = False) -> None:
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.encode(), str(v).encode()) for k, v in (headers or {}).items()]
    if close:  # the unread rest of the body stays unread: the connection cannot be reused
        raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


class _TooLarge(Exception):
    pass


class Guard:
    """See the module docstring. ``api_key`` None: ``/v1`` is open (loopback only, see ``check_bind``)."""

    def __init__(self, app, api_key: str | None = None, settings: ServerSettings | None = None) -> None:
        self.app = app
        self.s = settings or ServerSettings()
        self.expected = f"Bearer {api_key}".encode() if api_key else None
        self.hosts = {h.lower().strip("[]") for h in self.s.allowed_hosts}
        self.throttle = FailureThrottle(self.s.auth_failures, self.s.auth_window_s)

    def _host_ok(self, headers: dict) -> bool:
        if "*" in self.hosts:
            return True
        host = headers.get(b"host")
        return host is not None and host_of(host.decode("latin-1")) in self.hosts

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if not self._host_ok(headers):
            if scope["type"] == "websocket":
                return await send({"type": "websocket.close", "code": 1008})
            host = headers.get(b"host", b"").decode("latin-1")[:100]
            msg = f"host {host!r} is not served here; allowed: {sorted(self.hosts)} (--allowed-host)"
            return await _reply(send, 400, error_body("host", msg, "header"))
        if scope["type"] == "websocket":
            return await self.app(scope, receive, send)
        await self._http(scope, receive, send, headers)

    async def _http(self, scope, receive, send, headers: dict) -> None:
        path = scope["path"]
        client = (scope.get("client") or ("?", 0))[0]
        is_login = path.rstrip("/").endswith("/login")
        guarded = path.startswith("/v1") or is_login
        if guarded and (wait := self.throttle.blocked(client)):
            msg = "too many failed attempts from this address; try again later"
            return await _reply(send, 429, error_body("authorization", msg, "header"),
                                {"retry-after": max(1, round(wait))})  # fmt: skip
        limit = self.s.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await self._too_large(send, limit)
        if self.expected is not None and path.startswith("/v1"):
            if not hmac.compare_digest(headers.get(b"authorization", b""), self.expected):
                self.throttle.failed(client)
                return await _reply(send, 401, error_body("authorization", "missing or wrong bearer token",
                                                          "header"))  # fmt: skip
        try:
            replay = await self._read_body(receive, limit)
        except _TooLarge:
            return await self._too_large(send, limit)
        started = False

        async def send_tracked(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if is_login and message["status"] in (400, 401, 403):
                    self.throttle.failed(client)
            await send(message)

        try:
            await self.app(scope, replay, send_tracked)
        except Exception:  # last resort, no traceback to the client
            log.exception("unhandled error on %s", path)
            if not started:
                await _reply(send, 500, {"message": "internal error"})

    @staticmethod
    async def _too_large(send, limit: int) -> None:
        msg = f"request body over this server's limit of {limit} bytes (--max-body-bytes)"
        await _reply(send, 413, error_body("body", msg), close=True)

    @staticmethod
    async def _read_body(receive, limit: int):
        """Read the whole body (at most ``limit`` bytes, else ``_TooLarge``); returns a ``receive`` that
        replays it to the app and then passes on to the server's own ``receive``."""
        messages, total = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            total += len(message.get("body", b""))
            if total > limit:
                raise _TooLarge
            if not message.get("more_body", False):
                break
        if len(messages) > 1:  # one message for the app, as the server would send a short body
            body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
            messages = [{"type": "http.request", "body": body, "more_body": False}] + [
                m for m in messages if m["type"] != "http.request"
            ]

        async def replay():
            return messages.pop(0) if messages else await receive()

        return replay

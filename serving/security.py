"""What the server accepts: bind and key rules, allowed Host names, failed-login throttling and the
per-server limits (:class:`ServerSettings`). No Ray, FastAPI or Gradio import: the CLI, the Ray
application builder and the ASGI guard (:mod:`serving.guard`) share these checks.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

__all__ = [
    "LOCAL_HOSTS",
    "MIN_KEY_CHARS",
    "DEFAULT_QUEUE",
    "ServerSettings",
    "check_key",
    "check_bind",
    "check_exposure",
    "generate_key",
    "is_loopback",
    "host_of",
    "FailureThrottle",
]

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
MIN_KEY_CHARS = 32  # 32 URL-safe characters: about 190 bits from secrets.token_urlsafe

# Requests one endpoint may hold at once (running plus waiting); one more gets 503 with Retry-After. Short
# queues keep an overloaded endpoint near its capacity: under open-loop overload (benchmarks/serve.py) the
# unbatched sentiment endpoint answered 61 requests/s with 32 places, 56-63 with 64, 40 with 128 and 23 with
# 512 (its p99 2 s, 2 s, 6 s and 27 s): a longer queue is not only slower to drain, it serves less.
DEFAULT_QUEUE = {
    "generate": 32,
    "insight": 16,
    "sentiment": 64,
    "ecg": 128,
    "multimodal": 16,
    "simulate": 8,
}


@dataclass
class ServerSettings:
    """Limits the ingress enforces on every request (JSON-able: it travels to the Ray ingress replica)."""

    max_body_bytes: int = 1 << 20  # request bodies over this get 413 before they are parsed
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")  # Host header names; "*": any
    request_timeout_s: float = 60.0  # a request still running after this is stopped (504)
    queue: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_QUEUE))  # per endpoint, see above
    retry_after_s: int = 1  # the Retry-After of a 503 or 429
    auth_failures: int = 10  # failed key or login attempts per client address within auth_window_s ...
    auth_window_s: float = 60.0  # ... after which that address gets 429 until the window has passed

    def to_dict(self) -> dict:
        d = asdict(self)
        d["allowed_hosts"] = list(self.allowed_hosts)
        return d

    @classmethod
    def from_dict(cls, d: dict | None) -> ServerSettings:
        d = dict(d or {})
        if "allowed_hosts" in d:
            d["allowed_hosts"] = tuple(d["allowed_hosts"])
        return cls(**d)


def is_loopback(host: str) -> bool:
    """True for ``localhost``, ``::1`` and any ``127.x.y.z`` address."""
    h = host.strip("[]").lower()
    return h in LOCAL_HOSTS or h.startswith("127.") or h == "::ffff:127.0.0.1"


def generate_key() -> str:
    """A fresh API key of 43 URL-safe characters (256 random bits)."""
    return secrets.token_urlsafe(32)


def check_key(api_key: str | None) -> None:
    """Refuse an API key shorter than ``MIN_KEY_CHARS`` characters (None: no key, allowed on loopback)."""
    if api_key is not None and len(api_key) < MIN_KEY_CHARS:
        raise ValueError(
            f"EVOSPIKENET_API_KEY is {len(api_key)} characters; use at least {MIN_KEY_CHARS}, e.g. "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'` (or pass --generate-key)"
        )


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse a non-loopback ``host`` unless an API key (``EVOSPIKENET_API_KEY``) is set; refuse short keys."""
    check_key(api_key)
    if not is_loopback(host) and not api_key:
        raise ValueError(
            f"host={host!r} is not a loopback address; set EVOSPIKENET_API_KEY (at least {MIN_KEY_CHARS} "
            "characters) to serve on it (clients then send 'Authorization: Bearer <key>')"
        )


def check_exposure(http_host: str | None, ray_node_ip: str | None, api_key: str | None) -> None:
    """:func:`check_bind` for the HTTP host and for the address Ray's own servers listen on: Ray on a
    non-loopback address (its GCS, raylet, object manager and worker ports reachable from the network)
    needs the key too. None: not known (not checked); the key's length is checked always."""
    check_bind(http_host or "127.0.0.1", api_key)
    if ray_node_ip is not None and not is_loopback(ray_node_ip) and not api_key:
        raise ValueError(
            f"Ray listens on {ray_node_ip}, not on loopback; start Ray with "
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (loopback only; evospikenet-serve does this) or set "
            f"EVOSPIKENET_API_KEY (at least {MIN_KEY_CHARS} characters)"
        )


def host_of(header: str) -> str:
    """The host name of a Host header value, lower case, without port or IPv6 brackets."""
    h = header.strip().lower()
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else h[1:]
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


class FailureThrottle:
    """Failed authentication attempts per client address in a sliding window.

    ``failed(addr)`` records one; ``blocked(addr)`` gives the seconds until ``addr`` may try again once it
    has ``limit`` failures within ``window_s`` (0 when it may try now). At most ``max_clients`` addresses
    are tracked; the longest-idle ones are forgotten first.
    """

    def __init__(self, limit: int = 10, window_s: float = 60.0, max_clients: int = 10_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_clients = max_clients
        self._fails: OrderedDict[str, list[float]] = OrderedDict()

    def _recent(self, addr: str, now: float) -> list[float]:
        times = [t for t in self._fails.get(addr, ()) if now - t < self.window_s]
        if times:
            self._fails[addr] = times
        else:
            self._fails.pop(addr, None)
        return times

    def blocked(self, addr: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        times = self._recent(addr, now)
        if len(times) < self.limit:
            return 0.0
        return max(0.0, times[-self.limit] + self.window_s - now)

    def failed(self, addr: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        times = self._recent(addr, now)
        times.append(now)
        self._fails[addr] = times[-self.limit :]
        self._fails.move_to_end(addr)
        while len(self._fails) > self.max_clients:
            self._fails.popitem(last=False)

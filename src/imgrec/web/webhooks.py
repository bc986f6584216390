"""Webhooks (pure parts): the signature, which targets are allowed, the delivery record.

A finished job's document (the body of ``GET /api/v1/jobs/{id}``) is POSTed to its
``callback_url`` with the header::

    X-Imgrec-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

where ``secret`` is ``IMGREC_WEBHOOK_SECRET`` (UTF-8) and ``body`` the exact request bytes. A
receiver recomputes the HMAC, compares in constant time and rejects old timestamps (replays);
``verify`` does exactly that. Delivery is at least once: dedupe by ``X-Imgrec-Job``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from .. import keys
from ..errors import ObjectNotFound
from ..ports import ObjectStore

SIGNATURE_HEADER = "X-Imgrec-Signature"
JOB_HEADER = "X-Imgrec-Job"
ATTEMPT_HEADER = "X-Imgrec-Delivery-Attempt"
MAX_URL_CHARS = 2048
DeliveryState = Literal["pending", "delivered", "failed"]
Resolver = Callable[[str, int], list[str]]


class CallbackRefused(ValueError):
    """A callback URL that imgrec will not call; the message says why."""


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: bytes, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify(secret: bytes, header: str, body: bytes, *, now: float,
           tolerance_s: float = 300.0) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and is at most ``tolerance_s`` old."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (ValueError, KeyError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    return hmac.compare_digest(given, sign(secret, timestamp, body))


def _resolve(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def _not_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_callback_url(url: str, *, allow_private: bool,
                       resolve: Resolver = _resolve) -> str:
    """The URL if imgrec may POST to it; ``CallbackRefused`` saying why otherwise.

    Only http(s). A host that resolves to a loopback, private, link-local or otherwise
    non-public address is refused (the service must not be a way into its own network)
    unless ``allow_private``. Checked on submit and again before each delivery.
    """
    if len(url) > MAX_URL_CHARS:
        raise CallbackRefused(f"callback_url is longer than {MAX_URL_CHARS} characters")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise CallbackRefused("callback_url contains spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        raise CallbackRefused(f"callback_url is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise CallbackRefused("callback_url must be an absolute http:// or https:// URL")
    if allow_private:
        return url
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise CallbackRefused(f"callback_url host {host!r} does not resolve: {exc}") from None
    blocked = sorted({a for a in addresses if _not_public(a)})
    if blocked or not addresses:
        raise CallbackRefused(
            f"callback_url host {host!r} resolves to a loopback, private or "
            f"link-local address ({', '.join(blocked) or 'none'}); such targets are refused "
            "unless IMGREC_WEBHOOK_ALLOW_PRIVATE is set")
    return url


def backoff_s(attempts: int, base_s: float, cap_s: float = 300.0) -> float:
    """Seconds before the next try after ``attempts`` failed ones: base, 2 base, 4 base..."""
    return float(min(cap_s, base_s * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class CallbackRecord:
    """``callbacks/<id>.json``: where a job's result goes and how its delivery went.

    ``owner`` is the reply queue of the web tier that accepted the job (it delivers); times
    are Unix seconds.
    """

    url: str
    owner: str
    state: DeliveryState = "pending"
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    next_attempt_at: float | None = None
    delivered_at: float | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> CallbackRecord:
        data: dict[str, Any] = json.loads(raw)
        state = data.get("state")
        return cls(
            url=str(data["url"]), owner=str(data["owner"]),
            state=state if state in ("pending", "delivered", "failed") else "pending",
            attempts=int(data.get("attempts", 0)), last_status=data.get("last_status"),
            last_error=data.get("last_error"), next_attempt_at=data.get("next_attempt_at"),
            delivered_at=data.get("delivered_at"),
        )

    def succeeded(self, status: int, now: float) -> CallbackRecord:
        return replace(self, state="delivered", attempts=self.attempts + 1, last_status=status,
                       last_error=None, next_attempt_at=None, delivered_at=now)

    def failed_once(self, status: int | None, error: str, now: float, *, max_attempts: int,
                    base_s: float) -> CallbackRecord:
        attempts = self.attempts + 1
        if attempts >= max_attempts:
            return replace(self, state="failed", attempts=attempts, last_status=status,
                           last_error=error[:300], next_attempt_at=None)
        return replace(self, attempts=attempts, last_status=status, last_error=error[:300],
                       next_attempt_at=now + backoff_s(attempts, base_s))

    def public(self) -> dict[str, Any]:
        """What ``GET /api/v1/jobs/{id}`` shows (not the owner)."""
        data = asdict(self)
        del data["owner"]
        return data


def rearm_callback(store: ObjectStore, request_id: str, owner: str | None = None) -> bool:
    """Make a job's webhook pending again (its job was replayed); False if it has none.

    ``owner``: the web tier that will get the new answer (None: keep the one that took it;
    if that one is gone, the next web tier's sweep delivers).
    """
    try:
        record = CallbackRecord.from_json(store.get(keys.callback_key(request_id)))
    except ObjectNotFound:
        return False
    fresh = CallbackRecord(url=record.url, owner=owner or record.owner)
    store.put(keys.callback_key(request_id), fresh.to_json())
    return True

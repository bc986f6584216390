"""Webhook signatures, allowed targets and the retry schedule (pure, no network)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from imgrec.web.webhooks import (
    CallbackRecord,
    CallbackRefused,
    backoff_s,
    check_callback_url,
    signature_header,
    verify,
)

SECRET = b"s3cret"


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"id":"x"}'
    expected = hmac.new(SECRET, b"1700000000." + body, hashlib.sha256).hexdigest()
    header = signature_header(SECRET, 1_700_000_000, body)
    assert header == f"t=1700000000,v1={expected}"
    assert verify(SECRET, header, body, now=1_700_000_100)
    assert not verify(SECRET, header, body + b" ", now=1_700_000_100)
    assert not verify(b"other", header, body, now=1_700_000_100)
    assert not verify(SECRET, header, body, now=1_700_001_000)  # too old: a replay
    assert not verify(SECRET, "garbage", body, now=1_700_000_000)


def _resolver(*addresses: str):  # type: ignore[no-untyped-def]
    return lambda host, port: list(addresses)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "192.168.0.9", "172.16.5.5",
                                     "169.254.169.254", "::1", "fe80::1", "fc00::5",
                                     "::ffff:127.0.0.1", "0.0.0.0", "224.0.0.1"])
def test_private_loopback_and_link_local_targets_are_refused(address: str) -> None:
    with pytest.raises(CallbackRefused, match="loopback, private or link-local"):
        check_callback_url("https://hooks.example/x", allow_private=False,
                           resolve=_resolver("93.184.216.34", address))
    assert check_callback_url("https://hooks.example/x", allow_private=True,
                              resolve=_resolver(address)) == "https://hooks.example/x"


def test_a_public_target_is_allowed() -> None:
    url = "https://hooks.example:8443/in?x=1"
    assert check_callback_url(url, allow_private=False,
                              resolve=_resolver("93.184.216.34", "2606:2800:220:1::1")) == url


@pytest.mark.parametrize("url", ["ftp://hooks.example/", "hooks.example/x", "http:///x",
                                 "http://h:99999/", "file:///etc/passwd", "http://[::1",
                                 "http://[zz]/", "http://a b/", "http://h\n/", ""])
def test_what_is_not_an_http_url_is_refused(url: str) -> None:
    with pytest.raises(CallbackRefused):
        check_callback_url(url, allow_private=True)


def test_a_host_that_does_not_resolve_is_refused() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(CallbackRefused, match="does not resolve"):
        check_callback_url("http://nowhere.invalid/", allow_private=False, resolve=fail)


def test_retries_back_off_exponentially_and_stop_after_max_attempts() -> None:
    assert [backoff_s(n, 2.0) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert backoff_s(20, 2.0) == 300.0
    record = CallbackRecord(url="http://x/", owner="q")
    now = 100.0
    for attempt in (1, 2):
        record = record.failed_once(500, "HTTP 500", now, max_attempts=3, base_s=1.0)
        assert record.state == "pending" and record.attempts == attempt
        assert record.next_attempt_at == now + backoff_s(attempt, 1.0)
    record = record.failed_once(None, "refused", now, max_attempts=3, base_s=1.0)
    assert (record.state, record.attempts, record.next_attempt_at) == ("failed", 3, None)
    assert CallbackRecord.from_json(record.to_json()) == record
    assert "owner" not in record.public()

"""Session tokens and CSRF tokens: genuine ones verify, anything else is refused without raising."""

from __future__ import annotations

import base64
from collections.abc import Callable

import orjson
import pytest

from interlock.ui.session import SessionSigner

SECRET = b"0123456789abcdef0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_token_round_trips_and_carries_no_key() -> None:
    signer = SessionSigner(SECRET)
    token = signer.issue("key_abc")
    session = signer.verify(token)
    assert session is not None and session.key_id == "key_abc"
    assert "sk-" not in token
    again = signer.verify(signer.issue("key_abc"))
    assert again is not None and again.nonce != session.nonce


def test_tokens_expire() -> None:
    clock = Clock()
    signer = SessionSigner(SECRET, ttl_s=60, clock=clock)
    token = signer.issue("key_abc")
    clock.now += 59
    assert signer.verify(token) is not None
    clock.now += 2
    assert signer.verify(token) is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature changed
        lambda t: "x" + t,  # body changed
        lambda t: t.replace(".", ""),  # no separator
        lambda t: t + ".extra",  # too many parts
        lambda t: "",
        lambda t: "a" * 5000,
        lambda t: "not base64!.sig",
    ],
)
def test_tampered_tokens_are_refused(mangle: Callable[[str], str]) -> None:
    signer = SessionSigner(SECRET)
    assert signer.verify(mangle(signer.issue("key_abc"))) is None


def test_a_token_signed_with_another_secret_or_version_is_refused() -> None:
    signer = SessionSigner(SECRET)
    other = SessionSigner(b"another-secret-of-enough-length!")
    assert signer.verify(other.issue("key_abc")) is None
    body = base64.urlsafe_b64encode(orjson.dumps({"v": 99, "k": "key_abc", "e": 9e12, "n": "x"}))
    text = body.rstrip(b"=").decode()
    assert signer.verify(f"{text}.{signer._sign(text)}") is None
    assert signer.verify(None) is None


def test_the_master_key_derives_the_same_secret_in_every_process() -> None:
    first = SessionSigner.for_master_key("sk-master-1")
    second = SessionSigner.for_master_key("sk-master-1")
    assert second.verify(first.issue("master")) is not None
    assert SessionSigner.for_master_key("sk-master-2").verify(first.issue("master")) is None
    no_master = SessionSigner.for_master_key(None)
    assert SessionSigner.for_master_key(None).verify(no_master.issue("key_a")) is None


def test_csrf_tokens_belong_to_one_session() -> None:
    signer = SessionSigner(SECRET)
    one = signer.verify(signer.issue("key_abc"))
    two = signer.verify(signer.issue("key_abc"))
    assert one is not None and two is not None
    token = signer.csrf_token(one)
    assert signer.check_csrf(one, token)
    assert not signer.check_csrf(two, token)
    assert not signer.check_csrf(one, None)
    assert not signer.check_csrf(one, "")
    assert not signer.check_csrf(one, token[:-1])


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        SessionSigner(b"short")

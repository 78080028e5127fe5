"""Session tokens and CSRF tokens: genuine ones verify, anything else is refused without raising.
Over real HTTP: signing out revokes a session on the server (a replayed cookie is refused), and the
signing secret is shared through the store, not derived from the master key."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest

from interlock.sim import SimServerThread
from interlock.ui.session import COOKIE_NAME, SessionSigner
from tests.gateway_harness import Gateway, running_gateway, simple_config

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


def _sign_in(gateway: Gateway) -> str:
    """Sign in with the master key over HTTP; the session cookie's value."""
    with httpx.Client(base_url=gateway.url, follow_redirects=False) as client:
        response = client.post("/ui/login", data={"key": gateway.master_key})
        assert response.status_code == 303, response.text
        return response.cookies[COOKIE_NAME]


def _page_with(gateway: Gateway, cookie: str) -> httpx.Response:
    with httpx.Client(base_url=gateway.url, follow_redirects=False) as client:
        client.cookies.set(COOKIE_NAME, cookie)
        return client.get("/ui/overview")


def _csrf(html: str) -> str:
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def test_signing_out_revokes_the_session_so_a_replayed_cookie_is_refused(gateway: Gateway) -> None:
    cookie = _sign_in(gateway)
    page = _page_with(gateway, cookie)
    assert page.status_code == 200
    with httpx.Client(base_url=gateway.url, follow_redirects=False) as client:
        client.cookies.set(COOKIE_NAME, cookie)
        out = client.post("/ui/logout", data={"csrf": _csrf(page.text)})
        assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    replayed = _page_with(gateway, cookie)  # a copy of the cookie taken before the sign-out
    assert replayed.status_code == 303 and replayed.headers["location"].startswith("/ui/login")
    with httpx.Client(base_url=gateway.url) as client:
        client.cookies.set(COOKIE_NAME, cookie)
        assert client.get("/ui/api/overview").status_code == 401
    assert _page_with(gateway, _sign_in(gateway)).status_code == 200  # a new sign-in works


def test_gateways_sharing_a_store_share_sessions_and_sign_outs(sim: SimServerThread, tmp_path: Path) -> None:
    config = simple_config({"sim-a": sim.base_url}, tmp_path)
    with running_gateway(config) as first, running_gateway(config) as second:
        cookie = _sign_in(first)
        page = _page_with(second, cookie)
        assert page.status_code == 200
        with httpx.Client(base_url=second.url, follow_redirects=False) as client:
            client.cookies.set(COOKIE_NAME, cookie)
            assert client.post("/ui/logout", data={"csrf": _csrf(page.text)}).status_code == 303
        assert _page_with(first, cookie).status_code == 303


def test_the_signing_secret_is_not_derived_from_the_master_key(sim: SimServerThread, tmp_path: Path) -> None:
    # Same master key, separate stores: a session of one gateway means nothing to the other.
    one = simple_config({"sim-a": sim.base_url}, tmp_path / "one")
    two = simple_config({"sim-a": sim.base_url}, tmp_path / "two")
    with running_gateway(one) as first, running_gateway(two) as second:
        assert first.master_key == second.master_key
        cookie = _sign_in(first)
        assert _page_with(first, cookie).status_code == 200
        assert _page_with(second, cookie).status_code == 303

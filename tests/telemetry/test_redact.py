"""Redaction: what it catches, what it leaves alone, and that hostile input cannot stall or break it.

The adversarial cases run in a child process with a time limit: the time limit *is* the test (a
quadratic pattern takes minutes on these inputs, a linear one a fraction of a second), and a child
can be killed where a thread stuck in the regex engine could not.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from interlock.telemetry.redact import MAX_DEPTH, MAX_ITEMS, MAX_TOTAL_CHARS, REDACTED, redact, redact_text

LIMIT_S = 10.0  # generous: each case takes well under a second when the patterns are linear

POSITIVE = [
    ("openai", "key sk-proj-abcdefghijklmnopqrstuvwxyz012345 here", "abcdefghijklmnop"),
    ("anthropic", "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abc", "AbCdEfGhIjKl"),
    ("interlock", "use sk-il-Zm9vYmFyYmF6cXV4cXV1eGZvb2Jhcg", "Zm9vYmFyYmF6"),
    ("stripe live", "sk_live_51HqLyjWDarjtT1zdp7dcXYZ", "51HqLyjWDarj"),
    ("stripe restricted", "rk_test_51HqLyjWDarjtT1zdp7dcXYZ", "51HqLyjWDarj"),
    ("aws key id", "id AKIAIOSFODNN7EXAMPLE,", "AKIAIOSFODNN7EXAMPLE"),
    ("aws secret", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    ("aws secret env", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    ("google api key", "key=AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe&q=1", "SyDaGmWKa4Js"),
    ("google bare", "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe", "SyDaGmWKa4Js"),
    ("google oauth", "ya29.a0AfH6SMBxQ3Zq-example_token_value123", "a0AfH6SMBxQ3Zq"),
    ("github", "ghp_16C7e42F292c6912E7710c838347Ae178B4a", "16C7e42F292c"),
    ("slack", "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy", "pdFZKVeTuE8s"),
    (
        "jwt",
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "dozjgNryP4J3",
    ),
    ("bearer", "Authorization: Bearer abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnop"),
    ("basic", "Authorization: Basic dXNlcjpodW50ZXIyMjI=", "dXNlcjpodW50"),
    ("json api_key", '{"api_key": "v4lu3-0f-the-key", "model": "m"}', "v4lu3-0f-the-key"),
    ("json password", '{"password":"hunter2"}', "hunter2"),
    ("json escaped quote", r'{"password": "hun\"ter2"}', "ter2"),
    ("python secret", "{'secret': 'shh it is a secret'}", "shh it is"),
    ("yaml token", "token: abc.def.ghi", "abc.def.ghi"),
    ("client secret", "client_secret=s3cr3tv4lu3&grant_type=x", "s3cr3tv4lu3"),
    ("camel case", "accessToken => 'tok-123-456'", "tok-123-456"),
    ("quoted with spaces", 'password: "correct horse battery staple" end', "battery staple"),
    ("postgres url", "postgresql://app:Pa55w0rd!@db.internal:5432/app", "Pa55w0rd!"),
    ("asyncpg url", "postgresql+asyncpg://u:p4ss@h/db", "p4ss"),
    ("redis url", "redis://:r3d1s-pass@cache:6379/0", "r3d1s-pass"),
    (
        "private key",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7b\n-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEA7b",
    ),
    (
        "openssh key",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----",
        "b3BlbnNz",
    ),
    ("unclosed private key", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq", "MIIEvQIBADANBgkq"),
]

NEGATIVE = [
    "max_tokens: 100",
    '{"max_tokens": 256, "prompt_tokens": 10, "tokenizer": "bpe"}',
    "the author: Jane Doe",
    "http://host:8080/path?q=1",
    "https://user@example.com/",
    "sk-short",
    "ask-abcdefghijklmnopqrstuvwxyz",
    "AKIA123",
    "a plain sentence about passwords and tokens.",
    "eyJhbGciOiJIUzI1NiJ9 alone is only a header",
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
]


@pytest.mark.parametrize(
    ("text", "secret"), [(t, s) for _, t, s in POSITIVE], ids=[n for n, _, _ in POSITIVE]
)
def test_secrets_are_redacted(text: str, secret: str) -> None:
    cleaned = redact_text(text)
    assert secret not in cleaned
    assert REDACTED in cleaned


@pytest.mark.parametrize("text", NEGATIVE)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text


def test_redaction_keeps_the_name_and_the_rest() -> None:
    assert redact_text('{"api_key": "abc123", "model": "m"}') == '{"api_key": [REDACTED], "model": "m"}'
    assert redact_text("postgresql://app:pw@db/app") == "postgresql://app:[REDACTED]@db/app"
    assert redact_text("-----BEGIN EC PRIVATE KEY-----\nx\n-----END EC PRIVATE KEY----- tail") == (
        "[REDACTED] tail"
    )


def test_values_under_secret_names_are_replaced_whole() -> None:
    body = {"api_key": "short", "auth": {"password": "p"}, "max_tokens": 5, "token": "t", "n": None}
    assert redact(body) == {
        "api_key": REDACTED,
        "auth": {"password": REDACTED},
        "max_tokens": 5,
        "token": REDACTED,
        "n": None,
    }


def test_deep_values_become_a_marker() -> None:
    nested: list[object] = []
    cursor = nested
    for _ in range(10_000):
        inner: list[object] = []
        cursor.append(inner)
        cursor = inner
    result = redact(nested)
    depth = 0
    while isinstance(result, list):
        (result,) = result
        depth += 1
    assert depth == MAX_DEPTH and result == "[too deep]"


def test_wide_and_long_values_are_cut() -> None:
    result = redact({"items": list(range(MAX_ITEMS + 5)), "text": "x" * 50}, limit=10)
    assert len(result["items"]) == MAX_ITEMS + 1 and result["items"][-1] == "[5 more items]"
    assert result["text"] == "x" * 10 + "…[truncated]"
    many = redact(["y" * 10_000] * 100, limit=10_000)
    kept = sum(len(s) for s in many if not s.startswith("["))
    assert kept <= MAX_TOTAL_CHARS + 100 * len("…[truncated]") and many[-1].endswith("more items]")


def test_a_secret_cut_by_the_limit_is_still_redacted() -> None:
    text = "key: " + "sk-proj-abcdefghijklmnopqrstuvwxyz"
    assert redact(text, limit=12) == "key: " + REDACTED[:7] + "…[truncated]"


def test_odd_values_pass_through() -> None:
    assert redact({"n": 1.5, "ok": True, "none": None, 3: ("a", "b")}) == {
        "n": 1.5,
        "ok": True,
        "none": None,
        3: ["a", "b"],
    }


_BUILD_DEEP = """
def deep(kind, n):
    root = cursor = [] if kind == "list" else {}
    for _ in range(n):
        inner = [] if kind == "list" else {}
        if kind == "list":
            cursor.append(inner)
        else:
            cursor["k"] = inner
        cursor = inner
    return root
"""

ADVERSARIAL = {
    "unclosed BEGIN repeated": '"-----BEGIN PRIVATE KEY-----" * 20000',
    "BEGIN lines with a far END": (
        '"-----BEGIN RSA PRIVATE KEY-----\\n" * 20000 + "-----END RSA PRIVATE KEY-----"'
    ),
    "one long word": '"a" * 10**6',
    "one long key": '"sk-" + "a" * 10**6',
    "many key prefixes": '"eyJ-" * 250000',
    "a name and long whitespace": '"password" + " " * 10**6 + "x"',
    "url userinfo without @": '"http://a:" * 100000',
    "deep lists": 'deep("list", 10000)',
    "deep objects": 'deep("dict", 10000)',
    "wide and long": '{"k%d" % i: "sk-" + "b" * 1000 for i in range(20000)}',
}


@pytest.mark.parametrize("expression", list(ADVERSARIAL.values()), ids=list(ADVERSARIAL))
def test_hostile_input_finishes_quickly(expression: str) -> None:
    code = _BUILD_DEEP + textwrap.dedent(f"""
        from interlock.telemetry.redact import redact, redact_text
        value = {expression}
        redact(value)
        if isinstance(value, str):
            redact_text(value)
        print("done")
    """)
    try:
        completed = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=LIMIT_S, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"redacting {expression} took more than {LIMIT_S} s")
    assert completed.returncode == 0 and completed.stdout.strip() == "done", completed.stderr[-2000:]

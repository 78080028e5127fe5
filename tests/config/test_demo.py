"""The embedded default's master key: generated and shown once, kept only as its hash, rotated on
request; a key from the environment is checked and never stored."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from interlock.config.demo import HASH_FILE, ensure_master_key, rotate_master_key
from interlock.config.secrets import hash_secret, master_key_problem

STRONG = "sk-env-master-Wc5nT8qL2vX9rB4kZ7mHp3Jd"


def test_the_first_start_generates_a_key_and_keeps_only_its_hash(tmp_path: Path) -> None:
    first = ensure_master_key(tmp_path, env={})
    assert first.source == "generated" and first.new_key is not None
    assert master_key_problem(first.new_key) is None
    hash_file = tmp_path / HASH_FILE
    assert hash_file.read_text().strip() == hash_secret(first.new_key) == first.sha256
    assert stat.S_IMODE(hash_file.stat().st_mode) == 0o600
    for path in tmp_path.iterdir():
        assert first.new_key not in path.read_text(), f"the key is stored in {path.name}"

    later = ensure_master_key(tmp_path, env={})
    assert later.source == "stored" and later.new_key is None and later.sha256 == first.sha256


def test_a_plaintext_key_file_from_an_earlier_version_becomes_a_hash(tmp_path: Path) -> None:
    (tmp_path / "master.key").write_text(STRONG + "\n")
    moved = ensure_master_key(tmp_path, env={})
    assert moved.new_key == STRONG and moved.sha256 == hash_secret(STRONG)
    assert not (tmp_path / "master.key").exists()
    assert ensure_master_key(tmp_path, env={}).new_key is None


def test_rotation_replaces_the_key(tmp_path: Path) -> None:
    old = ensure_master_key(tmp_path, env={})
    new_key = rotate_master_key(tmp_path)
    assert new_key != old.new_key
    after = ensure_master_key(tmp_path, env={})
    assert after.source == "stored" and after.sha256 == hash_secret(new_key)
    assert [p.name for p in tmp_path.iterdir()] == [HASH_FILE]  # no temporary file left behind


def test_deleting_the_hash_file_makes_a_new_key(tmp_path: Path) -> None:
    old = ensure_master_key(tmp_path, env={})
    (tmp_path / HASH_FILE).unlink()
    new = ensure_master_key(tmp_path, env={})
    assert new.new_key is not None and new.sha256 != old.sha256


def test_a_key_in_the_environment_is_used_and_never_stored(tmp_path: Path) -> None:
    chosen = ensure_master_key(tmp_path, env={"INTERLOCK_MASTER_KEY": STRONG})
    assert chosen.source == "environment" and chosen.new_key is None
    assert chosen.sha256 == hash_secret(STRONG)
    assert list(tmp_path.iterdir()) == []


def test_a_weak_key_in_the_environment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="INTERLOCK_MASTER_KEY is too short") as info:
        ensure_master_key(tmp_path, env={"INTERLOCK_MASTER_KEY": "hunter2hunter2"})
    assert "hunter2" not in str(info.value)


def test_a_damaged_hash_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / HASH_FILE).write_text("not a digest\n")
    with pytest.raises(ValueError, match="delete it"):
        ensure_master_key(tmp_path, env={})

"""Tokens: random, hashed at rest, 0600 file, atomic updates, reloaded by a running gateway."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from wanx.errors import TokenError, TokensFileError
from wanx.gateway.tokens import Role, TokenSet, add_token, hash_token, load_tokens, match_token, revoke_token


def test_new_token_is_random_hashed_and_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "tokens.json"
    token = add_token(path, name="alice", role=Role.USER)
    other = add_token(path, name="bob", role=Role.ADMIN)
    assert len(token) >= 43 and token != other
    text = path.read_text()
    assert token not in text and hash_token(token) in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [r.name for r in load_tokens(path)] == ["alice", "bob"]
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_match_and_revoke(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    token = add_token(path, name="alice", role=Role.USER)
    record = match_token(load_tokens(path), token)
    assert record is not None and record.role is Role.USER
    assert match_token(load_tokens(path), token + "x") is None
    revoke_token(path, "alice")
    assert match_token(load_tokens(path), token) is None
    with pytest.raises(TokenError, match="'alice': not found"):
        revoke_token(path, "alice")


@pytest.mark.parametrize("name", ["", "has space", "a/b", "-lead", "x" * 65])
def test_bad_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(TokenError, match="token name"):
        add_token(tmp_path / "t.json", name=name, role=Role.USER)


def test_duplicate_name(tmp_path: Path) -> None:
    add_token(tmp_path / "t.json", name="a", role=Role.USER)
    with pytest.raises(TokenError, match="already exists"):
        add_token(tmp_path / "t.json", name="a", role=Role.ADMIN)


@pytest.mark.parametrize(
    ("text", "message"),
    [("{", "not valid JSON"), ('{"version": 2, "tokens": []}', "version"),
     ('{"version": 1, "tokens": [{"name": "a"}]}', "token #1"),
     ('{"version": 1, "tokens": [{"name": "a", "role": "root", "sha256": "0", "created": ""}]}', "token #1")],
)  # fmt: skip
def test_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.json"
    path.write_text(text)
    with pytest.raises(TokensFileError, match=message):
        load_tokens(path)


def test_token_set_reloads_and_env_token(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    tokens = TokenSet(path, admin_token="env-secret-token", recheck_s=0)
    env = tokens.authenticate("env-secret-token")
    assert env is not None and env.role is Role.ADMIN and env.name == "WANX_TOKEN"
    token = add_token(path, name="late", role=Role.USER)
    assert tokens.authenticate(token) is not None
    revoke_token(path, "late")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1000))
    assert tokens.authenticate(token) is None
    assert json.loads(path.read_text())["tokens"] == []

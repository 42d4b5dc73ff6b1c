"""The shipped policy as a truth table: every route, both spellings, path tricks, HEAD like GET."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.gateway.routes import ROUTES, Route, other_spelling, spellings
from wanx.errors import PolicyFileError
from wanx.gateway.paths import canonical_path
from wanx.gateway.policy import Check, Policy, load_policy
from wanx.gateway.tokens import Role

POLICY = load_policy()


def _decide(policy: Policy, role: Role, method: str, raw: str) -> tuple[bool, Check | None, str | None]:
    path = canonical_path(raw)
    assert path is not None, raw
    d = policy.decide(role, method, path)
    return d.allowed, d.check, d.answer


def _cases() -> list[object]:
    out: list[object] = []
    for route in ROUTES:
        for path in spellings(route):
            out.append(pytest.param(route, route.method, path, id=f"{route.method} {path}"))
            if route.method == "GET":
                out.append(pytest.param(route, "HEAD", path, id=f"HEAD {path}"))
    return out


@pytest.mark.parametrize(("route", "method", "path"), _cases())
def test_user(route: Route, method: str, path: str) -> None:
    allowed, check, answer = _decide(POLICY, Role.USER, method, path)
    if route.user is False:
        assert not allowed
    elif route.user is True:
        assert (allowed, check, answer) == (True, None, None) or (allowed and check is Check.UPLOAD)
    elif route.user == "internal_logs":
        assert (allowed, answer) == (True, "internal_logs")
    else:
        assert (allowed, str(check)) == (True, route.user)


@pytest.mark.parametrize(("route", "method", "path"), _cases())
def test_admin_everything(route: Route, method: str, path: str) -> None:
    assert _decide(POLICY, Role.ADMIN, method, path) == (True, None, None)


@pytest.mark.parametrize(
    "route", [pytest.param(r, id=f"{r.method} {other_spelling(r)}") for r in ROUTES if other_spelling(r)]
)
def test_user_wrong_spelling_denied(route: Route) -> None:
    spelling = other_spelling(route)
    assert spelling is not None
    assert not _decide(POLICY, Role.USER, route.method, spelling)[0]


TRICKS = [
    # (method, raw path, user allowed?, the check that must still run)
    ("GET", "//internal/logs/raw", False, None),
    ("GET", "/./internal/folder_paths", False, None),
    ("GET", "/api/../internal/folder_paths", False, None),
    ("GET", "/x/../vhs/getpath", False, None),
    ("GET", "/vhs%2Fgetpath", False, None),
    ("GET", "/api/vhs/getpath/", False, None),
    ("GET", "/API/vhs/getpath", False, None),
    ("GET", "/VHS/getpath", False, None),
    ("GET", "/Internal/logs/raw", False, None),
    ("POST", "/Prompt", False, None),
    ("POST", "/API/prompt", False, None),
    ("POST", "/prompt/", True, Check.PROMPT_GRAPH),
    ("POST", "//api//prompt", True, Check.PROMPT_GRAPH),
    ("POST", "/api/./prompt", True, Check.PROMPT_GRAPH),
    ("POST", "/%70rompt", True, Check.PROMPT_GRAPH),
    ("POST", "/free/", False, None),
    ("POST", "/users/", False, None),
    ("POST", "/queue/", True, Check.NO_CLEAR),
    ("GET", "/view_metadata/x/", False, None),
    ("GET", "/assets/../internal/logs/raw", False, None),
    ("OPTIONS", "/prompt", False, None),
    ("PUT", "/prompt", False, None),
    ("DELETE", "/history", False, None),
    ("GET", "/metrics", False, None),
    ("GET", "/api", False, None),
    ("GET", "/secret.txt", False, None),
    ("GET", "/a/b.js", False, None),
]


@pytest.mark.parametrize(("method", "raw", "allowed", "check"), [pytest.param(*t, id=f"{t[0]} {t[1]}") for t in TRICKS])
def test_user_path_tricks(method: str, raw: str, allowed: bool, check: Check | None) -> None:
    got_allowed, got_check, _ = _decide(POLICY, Role.USER, method, raw)
    assert got_allowed is allowed
    if allowed:
        assert got_check is check


def test_policy_file_errors_name_the_rule(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text(
        "version: 1\nroles:\n  admin: {all: true}\n  user:\n    rules:\n"
        "      - {methods: [GET], path: /x, check: nope}\n"
        "static_extensions: []\nuserdata_folders: []\nprompt: {allowed_classes: [], path_inputs: []}\n"
    )
    with pytest.raises(PolicyFileError, match=r"user rule #1: unknown check 'nope'"):
        load_policy(bad)
    bad.write_text("version: 2\n")
    with pytest.raises(PolicyFileError, match="version: 1"):
        load_policy(bad)
    with pytest.raises(PolicyFileError, match="cannot read"):
        load_policy(tmp_path / "missing.yaml")

"""Role policy: which canonical routes each role may call, compiled once from ``policy.yaml``."""

from __future__ import annotations

import fnmatch
import importlib.resources
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from wanx.errors import PolicyFileError
from wanx.gateway.paths import CanonicalPath
from wanx.gateway.tokens import Role

__all__ = ["Check", "Decision", "Policy", "PromptPolicy", "load_policy"]


class Check(StrEnum):
    """Extra checks a rule asks for before the request is proxied."""

    PROMPT_GRAPH = "prompt_graph"
    NO_CLEAR = "no_clear"
    NO_PATH_TYPE = "no_path_type"
    UPLOAD = "upload"
    USERDATA_WORKFLOWS = "userdata_workflows"


_TWINS = ("both", "plain", "api")
_CACHE_SIZE = 4096
_ANSWERS = ("internal_logs",)


@dataclass(frozen=True, slots=True)
class Rule:
    methods: frozenset[str]
    pattern: tuple[str, ...]
    prefix: bool
    static_file: bool
    twin: str
    deny: bool
    check: Check | None
    answer: str | None
    label: str


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for one request: allowed or not, the route label for metrics, and what else to do."""

    allowed: bool
    label: str
    check: Check | None = None
    answer: str | None = None
    params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PromptPolicy:
    allowed_classes: frozenset[str]
    path_inputs: tuple[str, ...]

    def is_path_input(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.path_inputs)


@dataclass(frozen=True, slots=True)
class Policy:
    admin_all: bool
    user_rules: tuple[Rule, ...]
    static_extensions: frozenset[str]
    userdata_folders: tuple[str, ...]
    prompt: PromptPolicy
    _cache: dict[tuple[Role, str, CanonicalPath], Decision] = field(default_factory=dict, compare=False, repr=False)

    def decide(self, role: Role, method: str, path: CanonicalPath) -> Decision:
        """First matching rule for ``role``; HEAD is judged as GET; no match is a denial (cached)."""
        key = (role, method, path)
        cached = self._cache.get(key)
        if cached is None:
            cached = self._decide(role, method, path)
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()  # bounded: random paths cannot grow it without limit
            self._cache[key] = cached
        return cached

    def _decide(self, role: Role, method: str, path: CanonicalPath) -> Decision:
        verb = "GET" if method == "HEAD" else method
        if role is Role.ADMIN and self.admin_all:
            return Decision(True, _admin_label(self.user_rules, verb, path, self.static_extensions))
        for rule in self.user_rules:
            params = _match(rule, verb, path, self.static_extensions)
            if params is not None:
                return Decision(not rule.deny, rule.label, rule.check, rule.answer, params)
        return Decision(False, "other")


def _admin_label(rules: tuple[Rule, ...], verb: str, path: CanonicalPath, exts: frozenset[str]) -> str:
    for rule in rules:
        if _match(rule, verb, path, exts) is not None:
            return rule.label
    return "other"


def _match(rule: Rule, verb: str, path: CanonicalPath, exts: frozenset[str]) -> tuple[tuple[str, str], ...] | None:
    if verb not in rule.methods:
        return None
    if (rule.twin == "plain" and path.api) or (rule.twin == "api" and not path.api):
        return None
    segs = path.segments
    if rule.static_file:
        if len(segs) == 1 and "." in segs[0] and "/" not in segs[0]:
            return () if segs[0][segs[0].rindex(".") :].lower() in exts else None
        return None
    if rule.prefix:
        return () if segs[: len(rule.pattern)] == rule.pattern else None
    if len(segs) != len(rule.pattern):
        return None
    params: list[tuple[str, str]] = []
    for want, got in zip(rule.pattern, segs, strict=True):
        if want.startswith("{") and want.endswith("}"):
            params.append((want[1:-1], got))
        elif want != got:
            return None
    return tuple(params)


def _compile_rule(index: int, raw: Any, where: str) -> Rule:
    if not isinstance(raw, Mapping):
        raise PolicyFileError(f"{where}: user rule #{index + 1}: expected a mapping, got {raw!r}")
    known = {"methods", "path", "prefix", "static_file", "twin", "deny", "check", "answer"}
    extra = set(raw) - known
    if extra:
        raise PolicyFileError(
            f"{where}: user rule #{index + 1}: unknown keys {sorted(extra)} (expected {sorted(known)})"
        )
    methods = raw.get("methods")
    if (
        not isinstance(methods, list)
        or not methods
        or not all(m in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS") for m in methods)
    ):
        raise PolicyFileError(f"{where}: user rule #{index + 1}: methods must list GET/POST/PUT/PATCH/DELETE/OPTIONS")
    chosen = [k for k in ("path", "prefix", "static_file") if raw.get(k)]
    if len(chosen) != 1:
        raise PolicyFileError(f"{where}: user rule #{index + 1}: give exactly one of path, prefix, static_file")
    text = str(raw.get("path") or raw.get("prefix") or "")
    if not raw.get("static_file") and not text.startswith("/"):
        raise PolicyFileError(f"{where}: user rule #{index + 1}: {text!r} must start with '/'")
    twin = raw.get("twin", "both")
    if twin not in _TWINS:
        raise PolicyFileError(f"{where}: user rule #{index + 1}: twin {twin!r}, expected one of {_TWINS}")
    try:
        check = Check(raw["check"]) if raw.get("check") else None
    except ValueError as exc:
        raise PolicyFileError(f"{where}: user rule #{index + 1}: unknown check {raw['check']!r}") from exc
    answer = raw.get("answer")
    if answer is not None and answer not in _ANSWERS:
        raise PolicyFileError(f"{where}: user rule #{index + 1}: unknown answer {answer!r}")
    pattern = tuple(s for s in text.split("/") if s)
    label = "static" if raw.get("static_file") or (raw.get("prefix") and twin == "plain") else (text or "/")
    return Rule(
        methods=frozenset(methods),
        pattern=pattern,
        prefix=bool(raw.get("prefix")),
        static_file=bool(raw.get("static_file")),
        twin=twin,
        deny=bool(raw.get("deny")),
        check=check,
        answer=answer,
        label=label,
    )


def _str_list(data: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyFileError(f"{where}: {key} must be a list of strings")
    return value


def load_policy(path: Path | None = None) -> Policy:
    """Load and compile ``path``, or the policy shipped with wanx."""
    if path is None:
        where = "policy.yaml (shipped)"
        text = importlib.resources.files("wanx.gateway").joinpath("policy.yaml").read_text(encoding="utf-8")
    else:
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyFileError(f"{path}: cannot read the policy file ({exc.strerror})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyFileError(f"{where}: not valid YAML ({exc})") from exc
    if not isinstance(data, Mapping) or data.get("version") != 1:
        raise PolicyFileError(f"{where}: expected a mapping with version: 1")
    roles = data.get("roles")
    if not isinstance(roles, Mapping) or set(roles) != {"admin", "user"}:
        raise PolicyFileError(f"{where}: roles must define exactly admin and user")
    raw_rules = (roles["user"] or {}).get("rules")
    if not isinstance(raw_rules, list):
        raise PolicyFileError(f"{where}: roles.user.rules must be a list")
    prompt = data.get("prompt")
    if not isinstance(prompt, Mapping):
        raise PolicyFileError(f"{where}: prompt must be a mapping with allowed_classes and path_inputs")
    return Policy(
        admin_all=bool((roles["admin"] or {}).get("all")),
        user_rules=tuple(_compile_rule(i, r, where) for i, r in enumerate(raw_rules)),
        static_extensions=frozenset(e.lower() for e in _str_list(data, "static_extensions", where)),
        userdata_folders=tuple(_str_list(data, "userdata_folders", where)),
        prompt=PromptPolicy(
            allowed_classes=frozenset(_str_list(prompt, "allowed_classes", where)),
            path_inputs=tuple(_str_list(prompt, "path_inputs", where)),
        ),
    )

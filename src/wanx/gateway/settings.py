"""Gateway settings: defaults, then ``WANX_*`` environment variables, then flags (one frozen object)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from yarl import URL

from wanx.errors import ConfigError

__all__ = ["MIB", "GatewaySettings", "Secret", "load_settings", "parse_listen"]

MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class Secret:
    """A value that never shows in ``repr`` or ``str`` (for ``WANX_TOKEN``)."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """Everything ``create_app`` needs; built once at the entry point and passed explicitly."""

    upstream: str = "http://127.0.0.1:8188"
    # Every ComfyUI backend (one per GPU) when there are several; the proxy uses ``upstream`` (the first).
    upstreams: tuple[str, ...] = ()
    # The job journal (docs/jobs.md); None keeps the gateway a plain proxy for /prompt and the job routes.
    journal: Path | None = None
    listen_host: str = "0.0.0.0"
    listen_port: int = 8080
    tokens_file: Path | None = None
    policy_file: Path | None = None
    admin_token: Secret | None = None
    trust_forwarded_proto: bool = False
    fast_path: bool = True  # front.py answers plain reads itself; False: aiohttp serves everything
    max_upload_bytes: int = 512 * MIB
    max_prompt_bytes: int = 8 * MIB
    prompt_rate_per_minute: float = 30.0
    prompt_burst: int = 10
    max_queued_per_token: int = 20
    session_max_age_s: int = 7 * 24 * 3600
    upstream_timeout_s: float = 30.0
    audit: bool = True

    @property
    def upstream_url(self) -> URL:
        return URL(self.upstream)

    @property
    def backends(self) -> tuple[str, ...]:
        return self.upstreams or (self.upstream,)


# Environment variable -> (field, parser). One table, so `wanx doctor` and the docs can list them.
_ENV: dict[str, tuple[str, str]] = {
    "WANX_GATEWAY_UPSTREAM": ("upstream", "url"),
    "WANX_UPSTREAMS": ("upstreams", "urls"),
    "WANX_GATEWAY_JOURNAL": ("journal", "path"),
    "WANX_GATEWAY_LISTEN": ("listen", "listen"),
    "WANX_TOKENS_FILE": ("tokens_file", "path"),
    "WANX_GATEWAY_POLICY": ("policy_file", "path"),
    "WANX_TOKEN": ("admin_token", "secret"),
    "WANX_GATEWAY_TRUST_FORWARDED_PROTO": ("trust_forwarded_proto", "bool"),
    "WANX_GATEWAY_FAST_PATH": ("fast_path", "bool"),
    "WANX_GATEWAY_MAX_UPLOAD_MB": ("max_upload_bytes", "mib"),
    "WANX_GATEWAY_MAX_PROMPT_MB": ("max_prompt_bytes", "mib"),
    "WANX_GATEWAY_PROMPT_RATE": ("prompt_rate_per_minute", "float"),
    "WANX_GATEWAY_PROMPT_BURST": ("prompt_burst", "int"),
    "WANX_GATEWAY_MAX_QUEUED": ("max_queued_per_token", "int"),
    "WANX_GATEWAY_AUDIT": ("audit", "bool"),
}


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``[v6]:PORT``) -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"listen address {value!r}: expected HOST:PORT, for example 0.0.0.0:8080")
    return host.strip("[]") or "0.0.0.0", int(port)


def _convert(name: str, kind: str, raw: str) -> Any:
    try:
        if kind == "url":
            url = URL(raw)
            if url.scheme not in ("http", "https") or not url.host:
                raise ValueError("expected an http:// or https:// URL")
            return raw.rstrip("/")
        if kind == "urls":
            return tuple(_convert(name, "url", u.strip()) for u in raw.split(",") if u.strip())
        if kind == "path":
            return Path(raw).expanduser()
        if kind == "secret":
            return Secret(raw) if raw else None
        if kind == "bool":
            if raw.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError("expected 1/0, true/false, yes/no or on/off")
            return raw.lower() in ("1", "true", "yes", "on")
        if kind == "mib":
            return int(float(raw) * MIB)
        if kind == "float":
            return float(raw)
        if kind == "int":
            return int(raw)
        if kind == "listen":
            return parse_listen(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r}: {exc}", hint=f"Fix or unset {name}.") from exc
    raise AssertionError(kind)


def load_settings(environ: Mapping[str, str], **overrides: Any) -> GatewaySettings:
    """Defaults, then ``WANX_*`` from ``environ``, then ``overrides`` (flags; ``None`` means not given)."""
    values: dict[str, Any] = {}
    for var, (name, kind) in _ENV.items():
        raw = environ.get(var)
        if raw is None or raw == "":
            continue
        value = _convert(var, kind, raw)
        if name == "listen":
            values["listen_host"], values["listen_port"] = value
        else:
            values[name] = value
    known = {f.name for f in fields(GatewaySettings)}
    for name, value in overrides.items():
        if value is None:
            continue
        if name == "listen":
            values["listen_host"], values["listen_port"] = parse_listen(value)
        elif name == "upstream":
            values["upstream"] = _convert("--upstream", "url", value)
        elif name == "upstreams":
            values["upstreams"] = tuple(_convert("--upstream", "url", u) for u in value)
        elif name in known:
            values[name] = value
        else:
            raise TypeError(f"unknown gateway setting {name!r}")
    if values.get("upstreams"):
        values["upstream"] = values["upstreams"][0]
    settings = replace(GatewaySettings(), **values)
    for name in ("max_upload_bytes", "max_prompt_bytes", "prompt_burst", "max_queued_per_token"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"gateway setting {name}: must be positive, got {getattr(settings, name)}")
    if settings.prompt_rate_per_minute <= 0:
        raise ConfigError("gateway setting prompt_rate_per_minute: must be positive")
    return settings

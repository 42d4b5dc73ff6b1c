"""Where a lock entry's bytes can come from: each source kind resolved to a concrete URL or local file.

Hub access goes through huggingface_hub (URLs, auth headers, HEAD metadata, paths-info); ModelScope and plain
URLs are plain HTTP through the same session. The fetcher decides what to do with the bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from wanx import __version__
from wanx.errors import SourceUnavailable
from wanx.lockfile import LockEntry, Source, SourceKind

__all__ = [
    "DEFAULT_ENDPOINTS",
    "Endpoints",
    "HubFacts",
    "Origin",
    "RemoteInfo",
    "SourceSettings",
    "hub_facts",
    "origins_for",
    "probe",
]

HEAD_TIMEOUT = 10.0
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Endpoints:
    hf: str = "https://huggingface.co"
    hf_mirror: str = "https://hf-mirror.com"
    modelscope: str = "https://www.modelscope.cn"


DEFAULT_ENDPOINTS = Endpoints()


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """Endpoints, the Hugging Face token and the ``${NAME}`` values used to expand url/dir sources."""

    endpoints: Endpoints = DEFAULT_ENDPOINTS
    hf_token: str | None = field(default=None, repr=False)
    variables: Mapping[str, str] = field(default_factory=dict, repr=False)
    local_dirs: tuple[Path, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str], *, local_dirs: Sequence[Path] = ()) -> SourceSettings:
        """``HF_ENDPOINT`` and ``HF_TOKEN`` pass through unrenamed; the mirrors use ``WANX_*`` variables."""
        endpoints = Endpoints(
            hf=_endpoint(environ.get("HF_ENDPOINT"), DEFAULT_ENDPOINTS.hf),
            hf_mirror=_endpoint(environ.get("WANX_HF_MIRROR_ENDPOINT"), DEFAULT_ENDPOINTS.hf_mirror),
            modelscope=_endpoint(environ.get("WANX_MODELSCOPE_ENDPOINT"), DEFAULT_ENDPOINTS.modelscope),
        )
        return cls(
            endpoints=endpoints,
            hf_token=environ.get("HF_TOKEN") or None,
            variables={k: v for k, v in environ.items() if k.startswith("WANX_") and v},
            local_dirs=tuple(local_dirs),
        )


@dataclass(frozen=True, slots=True)
class Origin:
    """One concrete place to read an entry's bytes: an HTTP URL (with its request headers) or a local file."""

    source: Source
    label: str
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    local: Path | None = None


@dataclass(frozen=True, slots=True)
class RemoteInfo:
    """What a HEAD told us: the size, and the sha256 when the hub publishes it (the LFS ETag)."""

    size: int | None
    sha256: str | None
    commit: str | None


@dataclass(frozen=True, slots=True)
class HubFacts:
    """What ``wanx models lock`` pins: the resolved commit, the size and the LFS sha256."""

    revision: str
    size: int
    sha256: str | None


def origins_for(
    entry: LockEntry, settings: SourceSettings, *, kinds: Sequence[SourceKind] = ()
) -> tuple[list[Origin], list[str]]:
    """Resolve ``entry``'s sources in order (restricted to and ordered by ``kinds`` when given).

    Returns the origins and, for each source left out, a line saying why (e.g. an unset ``${WANX_MODELS_URL}``).
    """
    extra = tuple(Source(kind=SourceKind.LOCAL, dir=str(d)) for d in settings.local_dirs)
    sources = extra + entry.sources
    if kinds:
        sources = tuple(s for kind in kinds for s in sources if s.kind is kind)
    origins: list[Origin] = []
    skipped: list[str] = []
    for source in sources:
        try:
            origins.append(_resolve(entry, source, settings))
        except _Skip as skip:
            skipped.append(f"{source.kind}: {skip}")
    return origins, skipped


def probe(origin: Origin) -> RemoteInfo:
    """HEAD an HTTP origin (or stat a local one); fail fast so the next source can be tried.

    Raises:
        SourceUnavailable: unreachable, refused, 404 or any other non-success answer.
    """
    if origin.local is not None:
        try:
            return RemoteInfo(size=origin.local.stat().st_size, sha256=None, commit=None)
        except OSError as exc:
            raise SourceUnavailable(f"{origin.label}: {exc.strerror or exc}") from exc
    assert origin.url is not None
    httpx2, hub, errors = _hub()
    try:
        if origin.source.kind in (SourceKind.HF, SourceKind.HF_MIRROR):
            meta = hub.get_hf_file_metadata(origin.url, token=False, headers=dict(origin.headers), timeout=HEAD_TIMEOUT)
            sha = meta.etag if meta.etag and _is_sha256(meta.etag) else None
            return RemoteInfo(size=meta.size, sha256=sha, commit=meta.commit_hash)
        response = hub.get_session().head(
            origin.url, headers={**origin.headers, "Accept-Encoding": "identity"}, timeout=HEAD_TIMEOUT
        )
        response.raise_for_status()
        length = response.headers.get("Content-Length")
        return RemoteInfo(size=int(length) if length and length.isdigit() else None, sha256=None, commit=None)
    except (errors.RemoteEntryNotFoundError, errors.RevisionNotFoundError) as exc:
        raise SourceUnavailable(f"{origin.label}: not found on the server (404)") from exc
    except (errors.HfHubHTTPError, httpx2.HTTPStatusError) as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise SourceUnavailable(f"{origin.label}: the server answered HTTP {status}") from exc
    except httpx2.HTTPError as exc:
        raise SourceUnavailable(f"{origin.label}: unreachable ({_reason(exc)})") from exc


def hub_facts(source: Source, settings: SourceSettings) -> HubFacts:
    """Resolve an hf source's revision to a commit and read its size and LFS sha256 from ``paths-info``.

    Raises:
        SourceUnavailable: the hub could not be reached, or has no such repo, revision or file.
    """
    assert source.kind is SourceKind.HF and source.repo and source.path
    endpoint = source.endpoint or settings.endpoints.hf
    label = f"{source.repo}@{source.revision or 'main'}:{source.path}"
    httpx2, hub, errors = _hub()
    try:
        revision = source.revision
        if revision is None or not re.fullmatch(r"[0-9a-f]{40}", revision):
            url = hub.hf_hub_url(source.repo, source.path, revision=revision, endpoint=endpoint)
            meta = hub.get_hf_file_metadata(url, token=settings.hf_token or None, timeout=HEAD_TIMEOUT)
            if not meta.commit_hash:
                raise SourceUnavailable(f"{label}: the hub sent no X-Repo-Commit, cannot pin a revision")
            revision = meta.commit_hash
        api = hub.HfApi(endpoint=endpoint, token=settings.hf_token or None)
        infos = api.get_paths_info(source.repo, [source.path], revision=revision)
    except (errors.RemoteEntryNotFoundError, errors.RevisionNotFoundError) as exc:
        raise SourceUnavailable(f"{label}: not found on {endpoint}") from exc
    except errors.HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise SourceUnavailable(f"{label}: {endpoint} answered HTTP {status}") from exc
    except httpx2.HTTPError as exc:
        raise SourceUnavailable(f"{label}: {endpoint} unreachable ({_reason(exc)})") from exc
    files = [info for info in infos if isinstance(info, hub.hf_api.RepoFile) and info.path == source.path]
    if not files:
        raise SourceUnavailable(f"{label}: no such file at revision {revision}")
    info = files[0]
    sha = info.lfs.sha256 if info.lfs is not None else None
    return HubFacts(revision=revision, size=info.lfs.size if info.lfs is not None else info.size, sha256=sha)


# ---------------------------------------------------------------- resolution


def _hub() -> tuple[Any, Any, Any]:
    """huggingface_hub and httpx2, imported on first network use: a no-op re-run must not pay ~1 s of imports."""
    import httpx2
    import huggingface_hub
    import huggingface_hub.errors
    import huggingface_hub.hf_api

    return httpx2, huggingface_hub, huggingface_hub.errors


class _Skip(Exception):
    """A source that cannot apply here (unset variable, missing local file); not an error."""


def _resolve(entry: LockEntry, source: Source, settings: SourceSettings) -> Origin:
    if source.kind is SourceKind.LOCAL:
        base = Path(_expand(source.dir or "", settings))
        path = base / (source.path or entry.path)
        if not path.is_file():
            raise _Skip(f"{path} is not there")
        return Origin(source=source, label=f"local {path}", local=path)
    if source.kind is SourceKind.URL:
        url = _expand(source.url or "", settings)
        return Origin(source=source, label=_scrub(url), url=url)
    if source.kind is SourceKind.MODELSCOPE:
        assert source.repo and source.path and source.revision
        endpoint = source.endpoint or settings.endpoints.modelscope
        url = f"{endpoint}/models/{source.repo}/resolve/{quote(source.revision, safe='')}/{quote(source.path)}"
        return Origin(source=source, label=f"modelscope {source.repo}:{source.path}", url=url)
    hf = _hf_fields(entry, source)
    from huggingface_hub.utils._headers import build_hf_headers

    if source.kind is SourceKind.HF:
        endpoint = source.endpoint or settings.endpoints.hf
        # Only the hub itself sees the token: never a mirror, ModelScope or a plain URL.
        headers = build_hf_headers(token=settings.hf_token or None, library_name="wanx", library_version=__version__)
    else:
        endpoint = source.endpoint or settings.endpoints.hf_mirror
        headers = build_hf_headers(token=False, library_name="wanx", library_version=__version__)
    from huggingface_hub import hf_hub_url

    url = hf_hub_url(hf.repo or "", hf.path or "", revision=hf.revision, endpoint=endpoint)
    label = f"{source.kind} {hf.repo}@{(hf.revision or 'main')[:12]}:{hf.path}"
    return Origin(source=source, label=label, url=url, headers=headers)


def _hf_fields(entry: LockEntry, source: Source) -> Source:
    """A bare hf-mirror source stands for the entry's hf source through the mirror endpoint."""
    if source.repo:
        return source
    return next(s for s in entry.sources if s.kind is SourceKind.HF)


def _expand(value: str, settings: SourceSettings) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in settings.variables:
            raise _Skip(f"${{{name}}} is not set")
        return settings.variables[name].rstrip("/")

    return _VAR.sub(one, value)


def _endpoint(value: str | None, default: str) -> str:
    return (value or default).rstrip("/")


def _is_sha256(value: str) -> bool:
    return re.fullmatch(r"[0-9a-f]{64}", value) is not None


def _scrub(url: str) -> str:
    """Drop credentials and query strings (signed URLs) before a URL is shown."""
    without_query = url.split("?", 1)[0]
    return re.sub(r"//[^/@]*@", "//", without_query)


def _reason(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__

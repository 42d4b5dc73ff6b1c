"""Path normalisation: one canonical form for every spelling a client (or attacker) can send."""

from __future__ import annotations

import pytest

from wanx.gateway.paths import CanonicalPath, canonical_path, plain_path, strip_token_query


@pytest.mark.parametrize(
    ("raw", "segments", "api"),
    [
        pytest.param("/prompt", ("prompt",), False, id="plain"),
        pytest.param("/api/prompt", ("prompt",), True, id="api"),
        pytest.param("//prompt", ("prompt",), False, id="double-slash"),
        pytest.param("/./prompt", ("prompt",), False, id="dot"),
        pytest.param("/prompt/", ("prompt",), False, id="trailing-slash"),
        pytest.param("/api//prompt/", ("prompt",), True, id="api-double-slash-trailing"),
        pytest.param("/%70rompt", ("prompt",), False, id="encoded-letter"),
        pytest.param("/api/../internal/logs", ("internal", "logs"), False, id="dotdot-out-of-api"),
        pytest.param("/x/../api/prompt", ("prompt",), True, id="dotdot-into-api"),
        pytest.param("/userdata/workflows%2Fa.json", ("userdata", "workflows/a.json"), False, id="encoded-slash-kept"),
        pytest.param("/userdata/a..b%2F..c", ("userdata", "a..b/..c"), False, id="dots-in-names-kept"),
        pytest.param("/API/prompt", ("API", "prompt"), False, id="upper-api-is-not-api"),
        pytest.param("/Prompt", ("Prompt",), False, id="case-kept"),
        pytest.param("/", (), False, id="root"),
    ],
)
def test_canonical(raw: str, segments: tuple[str, ...], api: bool) -> None:
    path = canonical_path(raw)
    assert path is not None
    assert (path.segments, path.api) == (segments, api)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("/%2e%2e/internal/logs", id="encoded-dotdot"),
        pytest.param("/api/%2E%2E/internal", id="encoded-dotdot-upper"),
        pytest.param("/%2e/prompt", id="encoded-dot"),
        pytest.param("/%252e%252e/x", id="double-encoded"),
        pytest.param("/a%00b", id="nul"),
        pytest.param("/a%5Cb", id="backslash"),
        pytest.param("/..", id="above-root"),
        pytest.param("/userdata/..%2F..%2Fcomfy.settings.json", id="encoded-slash-climb"),
        pytest.param("/userdata/workflows%2F..", id="encoded-slash-climb-at-end"),
        pytest.param("/%ff", id="bad-utf8"),
        pytest.param("prompt", id="relative"),
    ],
)
def test_unreadable(raw: str) -> None:
    assert canonical_path(raw) is None


def test_forward_keeps_encoded_slash_and_spelling() -> None:
    path = canonical_path("/api//userdata/workflows%2Fmy%20flow.json/")
    assert path is not None
    assert path.forward == "/api/userdata/workflows%2Fmy%20flow.json"
    assert path.key == "/userdata/workflows/my flow.json"


@pytest.mark.parametrize(
    "raw",
    ["/", "/api", "/api/view", "/extensions/core/x.js", "/a!$&'()*+,;=:@~-._b", "/assets/index-D1e.js", "/.hidden"],
)
def test_plain_path_forward_is_what_quoting_gives(raw: str) -> None:
    plain = plain_path(raw)
    assert plain is not None
    fresh = CanonicalPath(plain.segments, plain.api)  # computes forward by quoting each segment
    assert plain.forward == fresh.forward == raw
    assert canonical_path(raw) == plain


@pytest.mark.parametrize("raw", ["/a/", "//a", "/./a", "/a/..", "/%61", "/a b", "/\u00e9", ""])
def test_plain_path_leaves_the_rest_to_canonical_path(raw: str) -> None:
    assert plain_path(raw) is None


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("token=abc", ""),
        ("filename=a.png&token=abc&type=output", "filename=a.png&type=output"),
        ("TOKEN=abc&x=1", "x=1"),
        ("%74oken=abc&x=1", "x=1"),
        ("x=%20a&&y", "x=%20a&y"),
        ("", ""),
    ],
)
def test_strip_token_query(raw: str, kept: str) -> None:
    assert strip_token_query(raw) == kept

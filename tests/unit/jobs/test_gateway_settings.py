"""Several backends for one gateway: repeated --upstream or WANX_UPSTREAMS, and where the journal goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from wanx.errors import ConfigError
from wanx.gateway import load_settings
from wanx.jobs.gateway import default_journal


def test_upstreams_from_env_list_and_flags() -> None:
    env = {"WANX_UPSTREAMS": "http://127.0.0.1:8188, http://127.0.0.1:8189/", "WANX_GATEWAY_JOURNAL": "/j/x.db"}
    settings = load_settings(env)
    assert settings.backends == ("http://127.0.0.1:8188", "http://127.0.0.1:8189")
    assert settings.upstream == "http://127.0.0.1:8188"  # the proxy's target for everything else
    assert settings.journal == Path("/j/x.db")
    flags = load_settings(env, upstreams=("http://127.0.0.1:9000",))
    assert flags.backends == ("http://127.0.0.1:9000",) and flags.upstream == "http://127.0.0.1:9000"


def test_single_upstream_is_the_only_backend_and_no_journal_by_default() -> None:
    settings = load_settings({"WANX_GATEWAY_UPSTREAM": "http://127.0.0.1:7000"})
    assert settings.backends == ("http://127.0.0.1:7000",)
    assert settings.journal is None


def test_bad_upstream_in_list_is_named() -> None:
    with pytest.raises(ConfigError, match="WANX_UPSTREAMS"):
        load_settings({"WANX_UPSTREAMS": "http://127.0.0.1:8188,ftp://x"})


def test_default_journal_follows_the_data_dir() -> None:
    assert default_journal({"WANX_DATA_DIR": "/data"}) == Path("/data/gateway/jobs.sqlite3")
    assert default_journal({"XDG_STATE_HOME": "/st"}) == Path("/st/wanx/jobs.sqlite3")

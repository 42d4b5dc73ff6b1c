"""The stack's .env file and settings: parsing, creation at 0600 without replacing, defaults, masking."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from tests.helpers.servers import REPO
from wanx.errors import ConfigError, EnvFileError
from wanx.stack import STACK_KEYS, StackConfig, create_env_file, fill_token, masked_settings, read_env_file


def test_read_env_file_reads_what_compose_reads(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "# comment\n\nWANX_PORT=9000\nexport WANX_BIND=127.0.0.1\nHF_TOKEN='hf secret'\n"
        'WANX_IMAGE="reg/wanx:1"\nWANX_WORKFLOWS=vace # only the small one\nEMPTY=\n'
    )
    assert read_env_file(env) == {
        "WANX_PORT": "9000",
        "WANX_BIND": "127.0.0.1",
        "HF_TOKEN": "hf secret",
        "WANX_IMAGE": "reg/wanx:1",
        "WANX_WORKFLOWS": "vace",
        "EMPTY": "",
    }


def test_read_env_file_names_the_bad_line(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("WANX_PORT=1\nthis is not a setting\n")
    with pytest.raises(EnvFileError, match=r"\.env:2: not a NAME=value line"):
        read_env_file(env)


def test_create_env_file_fills_a_fresh_token_at_0600(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    token = create_env_file(target, example=REPO / ".env.example")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    values = read_env_file(target)
    assert values["WANX_TOKEN"] == token and len(token) >= 40
    assert values["WANX_PORT"] == "8188"
    assert [p.name for p in tmp_path.iterdir()] == [".env"]  # no temp file left behind
    assert create_env_file(tmp_path / ".env2", example=REPO / ".env.example") != token


def test_create_env_file_never_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    target.write_text("WANX_TOKEN=mine\n")
    with pytest.raises(FileExistsError):
        create_env_file(target, example=REPO / ".env.example")
    assert target.read_text() == "WANX_TOKEN=mine\n"
    assert [p.name for p in tmp_path.iterdir()] == [".env"]


def test_create_env_file_needs_a_token_line_in_the_template(tmp_path: Path) -> None:
    example = tmp_path / "example"
    example.write_text("WANX_PORT=8188\n")
    with pytest.raises(EnvFileError, match="no WANX_TOKEN= line"):
        create_env_file(tmp_path / ".env", example=example)
    assert not (tmp_path / ".env").exists()


def test_stack_config_defaults_and_paths(tmp_path: Path) -> None:
    config = StackConfig.from_env({}, root=tmp_path)
    assert config.workflows == ("wanx-21", "vace")
    assert (config.bind, config.port) == ("0.0.0.0", 8188)
    assert config.models_dir == tmp_path / "var/models"
    assert config.local_url == "http://127.0.0.1:8188"
    assert config.image is None and config.token is None
    custom = StackConfig.from_env(
        {"WANX_WORKFLOWS": " vace ", "WANX_BIND": "10.0.0.5", "WANX_MODELS_DIR": "/srv/models", "WANX_TOKEN": "t"},
        root=tmp_path,
    )
    assert custom.workflows == ("vace",)
    assert custom.local_url == "http://10.0.0.5:8188"
    assert custom.compose_environ()["WANX_MODELS_DIR"] == "/srv/models"
    assert "token=" not in repr(custom)


def test_stack_config_gpus(tmp_path: Path) -> None:
    assert StackConfig.from_env({}, root=tmp_path).gpus == ()
    listed = StackConfig.from_env({"WANX_GPUS": "0, 2"}, root=tmp_path)
    assert listed.gpus == (0, 2)
    assert listed.with_gpus(4).gpus == (0, 2)  # a list in .env wins over what the host has
    assert listed.compose_environ()["WANX_GPUS"] == "0,2"
    every = StackConfig.from_env({}, root=tmp_path).with_gpus(3)
    assert every.compose_environ()["WANX_GPUS"] == "0,1,2"
    assert StackConfig.from_env({}, root=tmp_path).with_gpus(0).gpus == ()


@pytest.mark.parametrize("gpus", ["a", "0,,1", "-1", "0;1"])
def test_stack_config_rejects_bad_gpus(tmp_path: Path, gpus: str) -> None:
    with pytest.raises(ConfigError, match=r"WANX_GPUS: .* is not a list of GPU indices"):
        StackConfig.from_env({"WANX_GPUS": gpus}, root=tmp_path)


@pytest.mark.parametrize("port", ["0", "70000", "http", "-1"])
def test_stack_config_rejects_a_bad_port(tmp_path: Path, port: str) -> None:
    with pytest.raises(ConfigError, match=f"WANX_PORT: '{port}' is not a TCP port"):
        StackConfig.from_env({"WANX_PORT": port}, root=tmp_path)


def test_masked_settings_hide_secrets_and_show_defaults() -> None:
    shown = masked_settings({"WANX_TOKEN": "s3cret-token", "HF_TOKEN": "", "WANX_EXTRA": "x"})
    assert shown["WANX_TOKEN"] == "set (12 characters, hidden)"
    assert "s3cret" not in str(shown)
    assert shown["HF_TOKEN"] == "(unset)"
    assert shown["WANX_PORT"] == "8188"
    assert shown["WANX_EXTRA"] == "x"


def test_env_example_documents_every_stack_key() -> None:
    example = read_env_file(REPO / ".env.example")
    assert list(example) == list(STACK_KEYS)
    assert example["WANX_TOKEN"] == ""  # never ship a token
    for name, default in STACK_KEYS.items():
        assert example[name] == default, name


def test_compose_interpolates_only_documented_keys() -> None:
    used = set()
    for path in (REPO / "deploy").glob("compose*.yaml"):
        used |= set(re.findall(r"\$\{([A-Z_]+)", path.read_text()))
    internal = {"WANX_UID", "WANX_GID", "WANX_CI_ROLE"}  # set by `wanx up` and the image test
    assert used - internal <= set(STACK_KEYS)


def test_fill_token_keeps_every_other_line(tmp_path: Path) -> None:
    target = tmp_path / ".env"
    target.write_text("# mine\nWANX_PORT=9000\nWANX_TOKEN=\nHF_TOKEN=hf\n")
    target.chmod(0o644)
    token = fill_token(target)
    assert target.read_text() == f"# mine\nWANX_PORT=9000\nWANX_TOKEN={token}\nHF_TOKEN=hf\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    other = tmp_path / "other.env"
    other.write_text("WANX_PORT=1\n")
    fill_token(other, token="t")  # no WANX_TOKEN line at all: one is appended
    assert read_env_file(other) == {"WANX_PORT": "1", "WANX_TOKEN": "t"}

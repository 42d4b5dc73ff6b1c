"""The variables' validation blocks, evaluated by Terraform itself: each root's variables.tf alone in a temp
dir (no provider needed), planned with good and bad values. Needs terraform >= 1.9 (cross-variable
validations); the PyPI wrapper carries 1.0.3, so without a newer binary these tests are skipped."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.cloud.tf import ROOTS, find_terraform, run_terraform

TERRAFORM = find_terraform()
pytestmark = pytest.mark.skipif(
    TERRAFORM is None, reason="terraform >= 1.9 not found: put one on PATH or set TERRAFORM=/path/to/terraform"
)

ECS_BASE = {"region": "cn-hangzhou", "allowed_cidrs": ["203.0.113.7/32"], "bundle_git_url": "https://g.example/w.git"}
ACS_BASE = {"region": "cn-hangzhou", "image": "registry.cn-hangzhou.aliyuncs.com/team/wanx:0.1.0"}
GOOD_TOKEN = "abcdefghijklmnopqrstuvwxyz012345"


@pytest.fixture(scope="module")
def workdirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One initialised directory per root, holding only that root's variables.tf."""
    dirs = {}
    for root_id, root in ROOTS.items():
        work = tmp_path_factory.mktemp(f"vars-{root_id}")
        shutil.copy(root / "variables.tf", work / "variables.tf")
        init = _run(work, "init", "-backend=false", "-input=false")
        assert init.returncode == 0, init.stderr
        dirs[root_id] = work
    return dirs


def _run(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert TERRAFORM
    return run_terraform(TERRAFORM, work, *args)


def plan(work: Path, values: dict[str, Any] | None = None, var_file: Path | None = None) -> tuple[int, str]:
    args = ["plan", "-input=false", "-lock=false", "-refresh=false"]
    if values is not None:
        case_file = work / f"case-{uuid.uuid4().hex}.tfvars.json"
        case_file.write_text(json.dumps(values))
        args.append(f"-var-file={case_file.name}")
    if var_file is not None:
        args.append(f"-var-file={var_file}")
    result = _run(work, *args)
    return result.returncode, " ".join((result.stdout + result.stderr).split())


CASES = [
    # ECS: who may connect
    ("ecs", {}, None),
    ("ecs", {"allowed_cidrs": ["0.0.0.0/0"]}, "The allowed_cidrs contains 0.0.0.0/0"),
    ("ecs", {"allowed_cidrs": ["0.0.0.0/0"], "allow_public_ingress": True}, None),
    ("ecs", {"allowed_cidrs": ["0.0.0.0/1", "128.0.0.0/1"]}, "wider than /8"),
    ("ecs", {"allowed_cidrs": ["10.0.0.0/8"]}, None),
    ("ecs", {"allowed_cidrs": []}, "The allowed_cidrs must hold at least one"),
    ("ecs", {"allowed_cidrs": ["203.0.113.7"]}, "The allowed_cidrs must hold at least one IPv4 CIDR block"),
    ("ecs", {"allowed_cidrs": None}, "allowed_cidrs"),
    ("ecs", {"ssh_cidrs": ["0.0.0.0/0"], "allow_public_ingress": True}, "Each ssh_cidrs entry"),
    ("ecs", {"ssh_cidrs": ["203.0.113.0/28"]}, None),
    ("ecs", {"gateway_port": 22}, "The gateway_port must be"),
    # ECS: placement and network
    ("ecs", {"instance_type": "gn7i"}, "The instance_type must be an ECS instance type"),
    ("ecs", {"vswitch_id": "vsw-1"}, "The vswitch_id can only be set together with vpc_id"),
    ("ecs", {"vswitch_id": "vsw-1", "vpc_id": "vpc-1"}, "The zone_id must be set when vswitch_id is set"),
    ("ecs", {"vswitch_id": "vsw-1", "vpc_id": "vpc-1", "zone_id": "cn-hangzhou-k"}, None),
    ("ecs", {"image_name_regex": "("}, "The image_name_regex must be a valid regular expression"),
    ("ecs", {"models_disk_size": 20}, "The models_disk_size must be"),
    # ECS: what runs
    ("ecs", {"bundle_git_url": "https://g.example/w.git'; rm -rf /"}, "The bundle_git_url must be"),
    ("ecs", {"bundle_git_ref": "main; reboot"}, "The bundle_git_ref must be"),
    ("ecs", {"image": "Registry/Wanx:1"}, "The image must be a container image reference"),
    ("ecs", {"workflows": ["wan"]}, "The workflows must list"),
    ("ecs", {"workflows": ["vace"]}, None),
    ("ecs", {"token": "short"}, "The token must be 24 to 128"),
    ("ecs", {"token": GOOD_TOKEN + "'"}, "The token must be 24 to 128"),
    ("ecs", {"token": GOOD_TOKEN}, None),
    ("ecs", {"hf_endpoint": "http://hf-mirror.com"}, "The hf_endpoint must be an https:// URL"),
    ("ecs", {"region": "Hangzhou"}, "The region must be an Alibaba Cloud region ID"),
    # ACS
    ("acs", {}, None),
    ("acs", {"profile": "eks"}, 'The profile must be "acs" or "ack"'),
    ("acs", {"image": "not an image"}, "The image must be a container image reference"),
    ("acs", {"image": "registry.example.com/t/wanx@sha256:" + "a" * 64}, None),
    ("acs", {"zone_ids": []}, "The zone_ids must list one or two zones"),
    ("acs", {"zone_ids": ["a-1", "a-2", "a-3"]}, "The zone_ids must list one or two zones"),
    ("acs", {"kubernetes_version": "latest"}, "The kubernetes_version must look like"),
    ("acs", {"kubernetes_version": "1.33.3-aliyun.1"}, None),
    ("acs", {"nvidia_driver_version": "550"}, "The nvidia_driver_version must be a full driver version"),
    ("acs", {"nvidia_driver_version": "550.144.03"}, None),
    ("acs", {"gpu_node_count": 51}, "The gpu_node_count must be"),
    ("acs", {"system_node_count": 0}, "The system_node_count must be"),
    ("acs", {"workflows": []}, "The workflows must list"),
    ("acs", {"token": "x" * 10}, "The token must be 24 to 128"),
]


def _case_id(case: tuple[str, dict[str, Any], str | None]) -> str:
    root_id, values, expected = case
    what = ",".join(f"{k}={json.dumps(v)}" for k, v in values.items()) or "defaults"
    return f"{root_id}:{'ok' if expected is None else 'refused'}:{re.sub(r'[^A-Za-z0-9=,._/-]', '', what)[:60]}"


@pytest.fixture(scope="module")
def outcomes(workdirs: dict[str, Path]) -> list[tuple[int, str]]:
    """Every case planned up front, a few at a time (each plan is mostly Terraform's start-up)."""

    def run_case(case: tuple[str, dict[str, Any], str | None]) -> tuple[int, str]:
        root_id, values, _ = case
        base = ECS_BASE if root_id == "ecs" else ACS_BASE
        return plan(workdirs[root_id], {k: v for k, v in {**base, **values}.items() if v is not None})

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(run_case, CASES))


@pytest.mark.parametrize("index", range(len(CASES)), ids=[_case_id(c) for c in CASES])
def test_validation(outcomes: list[tuple[int, str]], index: int) -> None:
    expected = CASES[index][2]
    rc, output = outcomes[index]
    if expected is None:
        assert rc == 0, output
    else:
        assert rc != 0 and expected in output, output


@pytest.mark.parametrize("root_id", sorted(ROOTS))
def test_examples_pass_validation(workdirs: dict[str, Path], root_id: str) -> None:
    examples = sorted((ROOTS[root_id] / "examples").glob("*.tfvars"))
    assert examples
    for example in examples:
        rc, output = plan(workdirs[root_id], var_file=example)
        assert rc == 0, f"{example.name}: {output}"

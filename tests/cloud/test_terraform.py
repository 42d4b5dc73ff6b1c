"""Static rules for terraform/ecs and terraform/acs, read with python-hcl2 (terraform validate needs the
provider, which cannot be downloaded here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.cloud.tf import ROOTS, Root, load_file, load_root
from tests.cloud.tfdocs import render_docs, splice

ROOT_IDS = sorted(ROOTS)

# Variables a user sets in terraform.tfvars: each must refuse bad values with a clear sentence.
USER_FACING = {
    "ecs": [
        "region",
        "name",
        "allowed_cidrs",
        "ssh_cidrs",
        "gateway_port",
        "instance_type",
        "zone_id",
        "models_disk_size",
        "bundle_git_url",
        "bundle_git_ref",
        "image",
        "workflows",
        "token",
        "ssh_public_key",
        "vpc_cidr",
        "vswitch_cidr",
    ],
    "acs": [
        "region",
        "name",
        "profile",
        "zone_ids",
        "vpc_cidr",
        "service_cidr",
        "gpu_instance_types",
        "gpu_node_count",
        "image",
        "workflows",
        "gpu_model_series",
        "token",
    ],
}
SECRET_VARIABLE_WORDS = ("token", "password", "secret")
SECRET_OUTPUT_WORDS = (*SECRET_VARIABLE_WORDS, "kubeconfig", "kustomization")
WORLD = ("0.0.0.0/0", "::/0")


@pytest.fixture(scope="module", params=ROOT_IDS)
def root(request: pytest.FixtureRequest) -> Root:
    return load_root(ROOTS[request.param])


def _strings(value: Any) -> list[str]:
    """Every string inside a parsed HCL value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


# --- layout -------------------------------------------------------------------------------------


@pytest.mark.parametrize("root_id", ROOT_IDS)
def test_root_has_the_standard_files(root_id: str) -> None:
    path = ROOTS[root_id]
    for name in ("versions.tf", "variables.tf", "main.tf", "outputs.tf", "README.md"):
        assert (path / name).is_file(), f"terraform/{root_id}/{name} is missing"
    assert list((path / "examples").glob("*.tfvars")), f"terraform/{root_id}/examples has no .tfvars"


def test_versions_pin_the_alicloud_provider(root: Root) -> None:
    (block,) = root.terraform
    assert re.fullmatch(r">= ?1\.\d+", block["required_version"])
    (providers,) = block["required_providers"]
    alicloud = providers["alicloud"]
    assert alicloud["source"] == "aliyun/alicloud"
    # A minimum for the arguments used (role attachment, profile = "Acs") and no v2 (map-to-list changes).
    assert alicloud["version"] == ">= 1.252.0, < 2.0.0"


def test_versions_tf_holds_only_the_terraform_block(root: Root) -> None:
    doc = load_file(root.path / "versions.tf")
    assert set(doc) - {"__comments__"} == {"terraform"}


def test_every_resource_is_alicloud_or_random(root: Root) -> None:
    for rtype, name, _ in root.resources + root.data:
        assert rtype.startswith(("alicloud_", "random_")), f"{rtype}.{name}: unexpected provider"


# --- variables ----------------------------------------------------------------------------------


def test_every_variable_is_described_and_typed(root: Root) -> None:
    assert root.variables
    for name, body in root.variables.items():
        assert body.get("type"), f"variable {name!r} has no type"
        description = body.get("description", "")
        assert len(description) >= 20 and description.endswith("."), f"variable {name!r}: describe it in a sentence"


def test_user_facing_variables_are_validated(root: Root) -> None:
    root_id = root.path.name
    for name in USER_FACING[root_id]:
        assert name in root.variables, f"{root_id}: no variable {name!r}"
        assert root.variables[name].get("validation"), f"{root_id}: variable {name!r} has no validation block"


def test_validation_messages_are_full_sentences(root: Root) -> None:
    count = 0
    for name, body in root.variables.items():
        for rule in body.get("validation", []):
            message = rule["error_message"]
            assert re.match(r"^[A-Z]", message) and message.endswith("."), f"{name}: {message!r}"
            assert f"var.{name}" in rule["condition"], f"{name}: the condition must test the variable itself"
            count += 1
    assert count >= 10


def test_secret_variables_are_sensitive(root: Root) -> None:
    secret = [n for n in root.variables if any(w in n for w in SECRET_VARIABLE_WORDS)]
    assert "token" in secret
    for name in secret:
        assert root.variables[name].get("sensitive") is True, f"variable {name!r} must be sensitive"


def test_token_is_generated_when_not_given(root: Root) -> None:
    assert root.variables["token"]["default"] is None
    generators = [body for rtype, name, body in root.resources if (rtype, name) == ("random_password", "token")]
    assert generators and generators[0]["special"] is False
    assert generators[0]["length"] >= 32
    assert "random_password.token[0].result" in root.locals["token"]


# --- outputs ------------------------------------------------------------------------------------


def test_every_output_is_described(root: Root) -> None:
    for name, body in root.outputs.items():
        assert body.get("description", "").endswith("."), f"output {name!r} needs a description"


def test_outputs_that_carry_secrets_are_sensitive(root: Root) -> None:
    secret_refs = ("local.token", "random_password", ".kube_config", "local.site_kustomization", "var.token")
    flagged = []
    for name, body in root.outputs.items():
        value = " ".join(_strings(body["value"]))
        if any(w in name for w in SECRET_OUTPUT_WORDS) or any(r in value for r in secret_refs):
            flagged.append(name)
            assert body.get("sensitive") is True, f"output {name!r} carries a secret and must be sensitive"
    assert "token" in flagged


def test_ecs_outputs_the_access_details() -> None:
    outputs = load_root(ROOTS["ecs"]).outputs
    assert {"url", "public_ip", "instance_id", "token"} <= set(outputs)
    assert "var.gateway_port" in outputs["url"]["value"]


# --- security -----------------------------------------------------------------------------------


def test_no_literal_world_cidr_anywhere_in_resources(root: Root) -> None:
    for rtype, name, body in root.resources:
        for s in _strings(body):
            assert not any(w in s for w in WORLD), f"{rtype}.{name} opens {s!r} to the world"


def test_ingress_rules_come_only_from_guarded_variables(root: Root) -> None:
    """Each ingress rule takes its sources from a variable that refuses 0.0.0.0/0 unless an allow_ flag is set."""
    rules = [(n, b) for t, n, b in root.resources if t == "alicloud_security_group_rule"]
    for name, body in rules:
        assert body["type"] in ("ingress", "egress")
        if body["type"] != "ingress":
            continue
        assert body["cidr_ip"] == "${each.value}", f"rule {name}: cidr_ip must come from for_each"
        assert "ipv6_cidr_ip" not in body and "source_security_group_id" not in body
        match = re.fullmatch(r"\$\{toset\(var\.(\w+)\)\}", body["for_each"])
        assert match, f"rule {name}: for_each must iterate a variable"
        variable = root.variables[match.group(1)]
        assert "default" not in variable or variable["default"] == [], f"rule {name}: sources must not default open"
        conditions = " ".join(rule["condition"] for rule in variable.get("validation", []))
        assert "0.0.0.0/0" in conditions, f"variable {match.group(1)} must refuse 0.0.0.0/0"
        assert body["ip_protocol"] == "tcp" and body["nic_type"] == "intranet"
        assert re.fullmatch(r"\d+/\d+|\$\{var\.\w+\}/\$\{var\.\w+\}", body["port_range"]), "one port per rule"


def test_ecs_security_group_opens_the_gateway_and_optional_ssh_only() -> None:
    root = load_root(ROOTS["ecs"])
    rules = {n: b for t, n, b in root.resources if t == "alicloud_security_group_rule"}
    assert set(rules) == {"gateway", "ssh"}
    assert rules["gateway"]["port_range"] == "${var.gateway_port}/${var.gateway_port}"
    assert rules["gateway"]["for_each"] == "${toset(var.allowed_cidrs)}"
    assert rules["ssh"]["port_range"] == "22/22"
    assert rules["ssh"]["for_each"] == "${toset(var.ssh_cidrs)}"
    allowed = root.variables["allowed_cidrs"]
    assert "default" not in allowed, "allowed_cidrs must be required"
    assert "var.allow_public_ingress" in " ".join(r["condition"] for r in allowed["validation"])
    assert root.variables["allow_public_ingress"]["default"] is False
    assert root.variables["ssh_cidrs"]["default"] == []
    assert "0.0.0.0/0" in root.variables["ssh_cidrs"]["validation"][0]["condition"]


def test_ecs_instance_is_hardened_and_models_survive_it() -> None:
    root = load_root(ROOTS["ecs"])
    resources = {(t, n): b for t, n, b in root.resources}
    instance = resources[("alicloud_instance", "this")]
    assert instance["internet_max_bandwidth_out"] == 0, "public access goes through the EIP only"
    assert instance["http_tokens"] == "required"
    assert instance["instance_charge_type"] == "PostPaid"
    assert "data_disks" not in instance, "models live on a separate disk"
    assert set(instance["lifecycle"][0]["ignore_changes"]) == {"image_id", "user_data"}
    disk = resources[("alicloud_ecs_disk", "models")]
    assert disk["delete_with_instance"] is False
    assert ("alicloud_ecs_disk_attachment", "models") in resources
    assert ("alicloud_eip_association", "this") in resources
    assert root.variables["instance_type"]["default"] == "ecs.gn7i-c16g1.4xlarge"


def test_ecs_zone_comes_from_stock() -> None:
    root = load_root(ROOTS["ecs"])
    data = {(t, n): b for t, n, b in root.data}
    types = data[("alicloud_instance_types", "this")]
    assert types["instance_type"] == "${var.instance_type}"
    assert "availability_zones" in root.locals["stock_zones"]


def test_acs_nas_is_reachable_from_the_vpc_only() -> None:
    root = load_root(ROOTS["acs"])
    resources = {(t, n): b for t, n, b in root.resources}
    rule = resources[("alicloud_nas_access_rule", "vpc")]
    assert rule["source_cidr_ip"] == "${var.vpc_cidr}"
    assert resources[("alicloud_nas_access_group", "this")]["access_group_type"] == "Vpc"
    fs = resources[("alicloud_nas_file_system", "this")]
    assert fs["protocol_type"] == "NFS" and "vpc_id" not in fs, "standard NAS must not set vpc_id"
    cluster = resources[("alicloud_cs_managed_kubernetes", "this")]
    assert cluster["slb_internet_enabled"] == "${var.enable_public_api_server}"
    assert root.variables["enable_public_api_server"]["default"] is False


def test_tags_are_one_map_merged_everywhere(root: Root) -> None:
    assert "var.tags" in root.locals["tags"]
    for rtype, name, body in root.resources:
        if "tags" in body:
            assert body["tags"] == "${local.tags}", f"{rtype}.{name} must take local.tags"


# --- examples and README ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tfvars", sorted(p for r in ROOTS.values() for p in (r / "examples").glob("*.tfvars")), ids=lambda p: p.name
)
def test_examples_set_known_and_required_variables(tfvars: Path) -> None:
    root = load_root(tfvars.parents[1])
    values = {k: v for k, v in load_file(tfvars).items() if k != "__comments__"}
    unknown = set(values) - set(root.variables)
    assert not unknown, f"{tfvars.name} sets undeclared variables {unknown}"
    required = {n for n, b in root.variables.items() if "default" not in b}
    assert required <= set(values), f"{tfvars.name} misses required {required - set(values)}"
    assert not any(w in s for s in _strings(values) for w in WORLD), f"{tfvars.name} opens something to the world"
    assert "token" not in values, "examples must not carry a token"


def test_readme_documents_every_input_and_output(root: Root) -> None:
    readme = (root.path / "README.md").read_text(encoding="utf-8")
    assert splice(readme, render_docs(root)) == readme, "README is stale: run python -m tests.cloud.tfdocs"
    assert "terraform validate" in readme, "the README must say why terraform validate is not run"
    assert "```hcl" in readme, "the README needs an example terraform.tfvars"

"""Shared fixtures for the workflow tests: the pinned schema and fresh copies of the shipped graphs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.servers import REPO
from wanx.workflows.schema import Schema, load_schema

WORKFLOWS = REPO / "workflows"


@pytest.fixture(scope="session")
def schema() -> Schema:
    return load_schema()


def shipped(name: str) -> dict[str, Any]:
    """A fresh copy of workflows/api/<name>.json."""
    data: dict[str, Any] = json.loads((WORKFLOWS / "api" / f"{name}.json").read_text(encoding="utf-8"))
    return data


@pytest.fixture
def workflows_copy(tmp_path: Path) -> Path:
    """A writable copy of the repository's workflows/ folder."""
    target = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS, target)
    return target

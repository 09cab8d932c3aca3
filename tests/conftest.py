"""Shared fixtures: a temporary project file, an open store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from coevo_tui.store import Store

# Tests never reach the network, and litellm must never fetch its price list.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture
def project_path(tmp_path: Path) -> Path:
    return tmp_path / "project.db"


@pytest.fixture
async def store(project_path: Path):
    s = await Store.open(project_path)
    try:
        yield s
    finally:
        await s.close()

"""Shared fixtures: a temporary project file, an open store, and the app on a temporary
project with the fake model (`make_test_app`), as posting's `make_posting` does.

Screens are opened and waited for with `pilot_support.open_screen` and `settle`; what the
app told the user is `pilot_support.notifications(app)`."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from coevo_tui.app import CoevoApp, make_app
from fake_model_server import FakeModelServer
from llm_fixtures import FAST_RETRY, FAST_TIMEOUT
from pilot_support import record_notifications

from coevo_tui.llm.client import ModelClient
from coevo_tui.llm.config import FAKE_MODEL
from coevo_tui.llm.fake_provider import FakeModel, fake_model
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


@pytest.fixture
def fake_server() -> Iterator[FakeModelServer]:
    """A fresh fake OpenAI-protocol server on 127.0.0.1 (its own thread and loop), reached
    through litellm's real client; `.url` is the api_base."""
    server = FakeModelServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_provider() -> Iterator[FakeModel]:
    """The `coevo-fake/...` provider's settings (`coevo_tui/llm/fake_provider.py`, behind
    litellm's custom-provider API), reset before and after the test: `.hold()`,
    `.configure(chunks=..., chunk_delay=...)`, ..."""
    fake_model.reset()
    try:
        yield fake_model
    finally:
        fake_model.reset()


@pytest.fixture
def fast_client() -> ModelClient:
    """A client with millisecond backoff and a seeded jitter."""
    return ModelClient(concurrency=4, timeout=FAST_TIMEOUT, retry=FAST_RETRY,
                       rng=random.Random(7))


@pytest.fixture
def make_test_app(project_path: Path, fake_provider: FakeModel
                  ) -> Callable[..., CoevoApp]:
    """Build the app the way the command line does (`make_app`), on `project_path` (or the
    path given), calling the fake model through litellm's custom-provider API, with no
    user keymap and a model client with short retries. Keyword arguments go to
    `make_app` (e.g. `client=`; `model=None` for the model the project or the
    environment names, as the command line without --model). The app keeps every
    notification it raises (`pilot_support.notifications`)."""

    def build(path: Path | None = None, **kwargs: Any) -> CoevoApp:
        kwargs.setdefault("model", FAKE_MODEL)
        kwargs.setdefault("keymap", {})
        kwargs.setdefault("client", ModelClient(concurrency=4, timeout=FAST_TIMEOUT,
                                                retry=FAST_RETRY, rng=random.Random(7)))
        app = make_app(path or project_path, **kwargs)
        record_notifications(app)
        return app

    return build

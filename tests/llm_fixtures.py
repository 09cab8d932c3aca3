"""Fixtures for model calls in tests: the fake OpenAI-compatible server and the fake
litellm provider. Import them into a test module (pytest then finds them)::

    from llm_fixtures import fake_server, fake_provider, fast_client  # noqa: F401

(tests/ is on sys.path because it has no __init__.py: pytest's default import mode.)
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
from fake_model_server import FakeModelServer

from coevo_tui.llm.client import ModelClient, RetryPolicy
from coevo_tui.llm.fake_provider import FakeModel, fake_model

# Short waits so retry tests take milliseconds; the timeout trips the "slow" fault (which
# waits 5 s) yet is far above anything the fake server needs.
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, max_retry_after=0.5)
FAST_TIMEOUT = 5.0  # generous: a loaded CI machine must not turn a normal call into a retry


@pytest.fixture
def fake_server() -> Iterator[FakeModelServer]:
    """A fresh fake server on 127.0.0.1 (its own thread and loop); `.url` is the api_base."""
    server = FakeModelServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_provider() -> Iterator[FakeModel]:
    """The `coevo-fake/...` provider's settings, reset before and after the test."""
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

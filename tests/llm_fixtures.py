"""Retry and timeout settings for model calls in tests. The fixtures themselves
(`fake_server`, `fake_provider`, `fast_client`, `make_test_app`) are in conftest.py.

(tests/ is on sys.path because it has no __init__.py: pytest's default import mode.)
"""

from __future__ import annotations

from coevo_tui.llm.client import RetryPolicy

# Short waits so retry tests take milliseconds; the timeout trips the "slow" fault (which
# waits 5 s) yet is far above anything the fake server needs.
FAST_RETRY = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, max_retry_after=0.5)
FAST_TIMEOUT = 5.0  # generous: a loaded CI machine must not turn a normal call into a retry

"""Registering coevo's own litellm providers (``coevo-local`` and ``coevo-fake``)."""

from __future__ import annotations

from typing import Any

from coevo_tui.llm import fake_provider, local_provider
from coevo_tui.llm.config import FAKE_PROVIDER, LOCAL_PROVIDER


def register_providers(litellm: Any) -> None:
    """Add both providers to ``litellm.custom_provider_map`` (once). Neither loads anything
    heavy here: the local model is read on its first call."""
    known = {item["provider"] for item in litellm.custom_provider_map}
    for name, module in ((LOCAL_PROVIDER, local_provider), (FAKE_PROVIDER, fake_provider)):
        if name not in known:
            litellm.custom_provider_map.append(
                {"provider": name, "custom_handler": module.make_handler(litellm)})
    litellm.utils.custom_llm_setup()

"""Choosing the model: precedence, api_base prefixes, the offline default, status text."""

from __future__ import annotations

import subprocess
import sys

import pytest

from coevo_tui.domain.errors import UserError
from coevo_tui.llm import config
from coevo_tui.llm.config import (
    LOCAL_MODEL,
    ModelChoice,
    ModelNotConfigured,
    model_status,
    resolve_model,
)


def test_option_beats_project_beats_environment() -> None:
    env = {"COEVO_MODEL": "env-model"}
    assert resolve_model("opt", "proj", env=env) == ModelChoice("opt", None, "option")
    assert resolve_model(None, "proj", env=env) == ModelChoice("proj", None, "project")
    assert resolve_model(None, None, env=env) == ModelChoice("env-model", None, "environment")
    assert resolve_model("  ", "", env=env).source == "environment"


def test_the_offline_model_is_the_default_only_when_installed(monkeypatch) -> None:
    monkeypatch.setattr(config, "local_model_installed", lambda: True)
    choice = resolve_model(env={})
    assert (choice.model, choice.source, choice.is_local_demo) == (LOCAL_MODEL, "default", True)
    assert "tiny offline demo model" in choice.describe()
    monkeypatch.setattr(config, "local_model_installed", lambda: False)
    with pytest.raises(ModelNotConfigured, match="^no model configured: pass --model"):
        resolve_model(env={})
    assert model_status(env={}) == "no model configured (use --model or COEVO_MODEL)"


def test_an_api_base_calls_plain_names_through_the_openai_client() -> None:
    base = "http://127.0.0.1:8000/v1"
    assert resolve_model("llama3", api_base=base, env={}).model == "openai/llama3"
    assert resolve_model("meta-llama/Llama-3.1-8B", api_base=base,
                         env={}).model == "openai/meta-llama/Llama-3.1-8B"
    assert resolve_model("ollama/llama3.2", api_base=base, env={}).model == "ollama/llama3.2"
    assert resolve_model("openai/x", api_base=base, env={}).model == "openai/x"
    env = {"COEVO_API_BASE": base, "COEVO_MODEL": "qwen"}
    assert resolve_model(env=env) == ModelChoice("openai/qwen", base, "environment")
    assert resolve_model("gpt-4o-mini", env={}).model == "gpt-4o-mini"  # no base: unchanged
    assert model_status("qwen", api_base=base, env={}) == f"openai/qwen at {base}"


def test_an_api_base_needs_a_model_name() -> None:
    with pytest.raises(UserError, match="needs a model name"):
        resolve_model(api_base="http://127.0.0.1:8000/v1", env={})


def test_importing_the_model_layer_does_not_import_litellm() -> None:
    code = ("import sys, coevo_tui.llm, coevo_tui.llm.runner, coevo_tui.commands.run\n"
            "print('litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"

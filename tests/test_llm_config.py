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
    monkeypatch.setattr(config, "qwen_model_installed", lambda: False)  # SmolLM2 only
    choice = resolve_model(env={})
    assert (choice.model, choice.source, choice.is_local_demo) == (LOCAL_MODEL, "default", True)
    assert "tiny offline demo model" in choice.describe()
    monkeypatch.setattr(config, "local_model_installed", lambda: False)
    with pytest.raises(ModelNotConfigured, match="^no model configured: pass --model"):
        resolve_model(env={})
    assert model_status(env={}) == "no model configured (use --model or COEVO_MODEL)"


def test_the_qwen_model_is_the_default_when_its_file_is_installed(monkeypatch) -> None:
    monkeypatch.setattr(config, "local_model_installed", lambda: True)
    monkeypatch.setattr(config, "qwen_model_installed", lambda: True)
    choice = resolve_model(env={})
    assert (choice.model, choice.source, choice.is_local_demo) == (
        "coevo-local/qwen2.5-coder-1.5b", "default", True)
    assert choice.describe() == ("Qwen2.5-Coder-1.5B (small offline model on this machine;"
                                 " far weaker than a hosted model)")
    # Named explicitly, either offline model is described the same way.
    assert resolve_model("coevo-local/smollm2", env={}).describe().startswith(
        "SmolLM2-135M (tiny offline demo model")
    assert "not one coevo knows" in resolve_model("coevo-local/x", env={}).describe()


def test_which_offline_model_is_installed_is_read_from_the_files(monkeypatch,
                                                                 tmp_path) -> None:
    from coevo_tui.llm import local_models

    monkeypatch.setenv("COEVO_MODEL_CACHE", str(tmp_path))  # nothing joined there
    monkeypatch.setattr(local_models, "runtime_installed", lambda: True)
    monkeypatch.setattr(local_models, "part_paths", lambda file: None)
    monkeypatch.setattr(local_models, "is_ready", lambda model, env=None: model.key == "smollm2")
    assert config.local_model_installed() and not config.qwen_model_installed()
    assert config.default_local_model() == "coevo-local/smollm2"
    monkeypatch.setattr(local_models, "is_ready", lambda model, env=None: True)
    assert config.default_local_model() == "coevo-local/qwen2.5-coder-1.5b"
    monkeypatch.setattr(local_models, "runtime_installed", lambda: False)  # no engine
    assert not config.local_model_installed()


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


# ---------------------------------------------------------------------- credentials in URLs
@pytest.mark.parametrize(("url", "shown"), [
    ("http://user:PASSWORD@host:8000/v1", "http://[redacted]@host:8000/v1"),
    ("http://user@host/v1", "http://[redacted]@host/v1"),
    ("https://u:p%40ss@host/v1?api-version=2024-02-01",
     "https://[redacted]@host/v1?api-version=2024-02-01"),
    ("http://host/v1?api_key=SECRET&model=x", "http://host/v1?api_key=[redacted]&model=x"),
    ("http://host/v1?key=S1&token=S2&access_token=S3&X-Api-Key=S4&sig=S5",
     "http://host/v1?key=[redacted]&token=[redacted]&access_token=[redacted]"
     "&X-Api-Key=[redacted]&sig=[redacted]"),
    ("http://host:8000/v1", "http://host:8000/v1"),
    ("http://host/v1?api-version=1", "http://host/v1?api-version=1"),
    ("http://u:SECRET@[::1/v1", "[redacted]"),  # not parseable: nothing of it is shown
])
def test_redact_url_hides_user_info_and_secret_query_values(url: str, shown: str) -> None:
    assert config.redact_url(url) == shown
    assert bool(config.url_credentials(url)) == (shown != url)


def test_redact_urls_finds_urls_inside_a_message() -> None:
    text = ("Cannot connect to http://bob:PASSWORD@10.0.0.1:8000/v1/chat/completions; "
            "see https://example.org/help?token=SECRET.")
    assert config.redact_urls(text) == (
        "Cannot connect to http://[redacted]@10.0.0.1:8000/v1/chat/completions; "
        "see https://example.org/help?token=[redacted]")
    assert config.redact_urls("no url here") == "no url here"


@pytest.mark.parametrize(("option", "env", "start"), [
    ("http://user:PASSWORD@127.0.0.1:8000/v1", {},
     "--api-base http://[redacted]@127.0.0.1:8000/v1 has credentials in it (user:password);"),
    (None, {"COEVO_API_BASE": "http://127.0.0.1:8000/v1?api_key=PASSWORD"},
     "COEVO_API_BASE http://127.0.0.1:8000/v1?api_key=[redacted] has credentials in it"
     " (api_key);"),
])
def test_an_api_base_with_credentials_is_refused_in_one_line_without_the_secret(
        option: str | None, env: dict[str, str], start: str) -> None:
    with pytest.raises(config.CredentialsInUrl) as info:
        resolve_model("llama3", api_base=option, env=env)
    message = str(info.value)
    assert isinstance(info.value, UserError) and info.value.exit_status == 2
    assert message.startswith(start)
    assert "PASSWORD" not in message and "\n" not in message
    assert "export the key instead" in message
    # The status bar's text says the same, and never raises.
    assert model_status("llama3", api_base=option, env=env) == message
    # Without a model name, the other error does not show the secret either.
    with pytest.raises(UserError) as info:
        resolve_model(api_base=option, env=env)
    assert "PASSWORD" not in str(info.value)


def test_describe_redacts_an_api_base_built_by_hand() -> None:
    choice = ModelChoice("openai/x", "http://u:PASSWORD@host/v1?token=SECRET")
    assert choice.describe() == "openai/x at http://[redacted]@host/v1?token=[redacted]"

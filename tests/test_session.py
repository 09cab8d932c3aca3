"""The Session: one rule for the model under test and the assistant model, one model
client for every caller, the one place a Runner is built, credentials refused before the
project is opened."""

from __future__ import annotations

from pathlib import Path

import pytest

from coevo_tui.domain.errors import ProjectFileError, UserError
from coevo_tui.llm.config import CredentialsInUrl
from coevo_tui.session import Session
from coevo_tui.store import Store


async def _project(path: Path, *, model: str | None = None,
                   assistant: str | None = None) -> Path:
    async with await Store.open(path) as store:
        await store.settings.update(model=model, assistant_model=assistant)
    return path


async def test_the_assistant_model_is_the_option_then_the_project_then_the_environment_then_the_model_under_test(  # noqa: E501
        project_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COEVO_MODEL", raising=False)
    monkeypatch.delenv("COEVO_ASSISTANT_MODEL", raising=False)
    await _project(project_path, model="gpt-4o-mini", assistant="project-assistant")
    async with await Session.open(project_path, assistant_model="option-assistant") as session:
        assert session.assistant_choice().model == "option-assistant"
        assert session.assistant_choice().source == "option"
    monkeypatch.setenv("COEVO_ASSISTANT_MODEL", "env-assistant")
    async with await Session.open(project_path) as session:
        assert session.assistant_choice().model == "project-assistant"
    await _project_settings(project_path, assistant=None)
    async with await Session.open(project_path) as session:
        assert session.assistant_choice().model == "env-assistant"
    monkeypatch.delenv("COEVO_ASSISTANT_MODEL")
    async with await Session.open(project_path) as session:
        # Nothing names an assistant: the model under test assists itself.
        assert session.assistant_choice() == session.model_choice()
        assert session.model_choice().model == "gpt-4o-mini"


async def _project_settings(path: Path, **changes: str | None) -> None:
    async with await Store.open(path) as store:
        await store.settings.update(assistant_model=changes.get("assistant"))


async def test_the_model_under_test_is_the_option_then_the_project_then_the_environment(
        project_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COEVO_MODEL", "env-model")
    await _project(project_path, model="project-model")
    async with await Session.open(project_path, model="option-model") as session:
        assert (session.model_choice().model, session.model_choice().source) == (
            "option-model", "option")
        assert session.configured_model() == "option-model"
    async with await Session.open(project_path) as session:
        assert session.model_choice().model == "project-model"
    await _project(project_path, model=None)
    async with await Session.open(project_path) as session:
        assert session.model_choice().model == "env-model"


async def test_every_runner_shares_the_sessions_one_client(project_path: Path,
                                                          monkeypatch) -> None:
    monkeypatch.setenv("COEVO_MODEL", "coevo-fake/echo")
    async with await Session.open(project_path) as session:
        first, second = session.runner(), session.runner(session.assistant_choice())
        assert first.client is second.client is session.client
        replaced = session.use_client(concurrency=3)
        assert session.runner().client is replaced and replaced.concurrency == 3


async def test_credentials_in_the_api_base_are_refused_before_the_project_is_opened(
        tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "new.db"
    with pytest.raises(CredentialsInUrl) as refused:
        await Session.open(path, api_base="http://user:hunter22@127.0.0.1:9/v1")
    assert "hunter22" not in str(refused.value)
    assert not path.exists()  # nothing was created
    monkeypatch.setenv("COEVO_API_BASE", "http://127.0.0.1:9/v1?api_key=hunter22")
    with pytest.raises(CredentialsInUrl):
        await Session.open(path)
    assert not path.exists()


async def test_open_existing_refuses_a_missing_project_without_creating_it(
        tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(ProjectFileError, match="no such project file; nothing was run"):
        await Session.open_existing(path, missing="nothing was run")
    assert not path.exists()


async def test_no_model_is_one_clear_error_and_no_configured_model(
        project_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("COEVO_MODEL", raising=False)
    monkeypatch.setattr("coevo_tui.llm.config.local_model_installed", lambda: False)
    async with await Session.open(project_path) as session:
        with pytest.raises(UserError, match="no model configured"):
            session.model_choice()
        assert session.configured_model() is None

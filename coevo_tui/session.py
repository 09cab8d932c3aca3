"""An open project with its models: what the TUI and every headless command stand on.

Why one object: the command line and the App used to open the store, choose the model and
build model clients each in their own way, so the TUI held several clients (and so several
concurrency bounds) and a choice made in one place could differ from another. A `Session`
makes those decisions once:

- it opens the project (`Store`), read-only when asked;
- it resolves the **model under test** (`--model`, the project's model, ``COEVO_MODEL``,
  then the offline model) and the **assistant model** (``--assistant-model``, the
  project's assistant model, ``COEVO_ASSISTANT_MODEL``, then the model under test), each
  by one rule (`llm/config.py`);
- it owns the process's one `ModelClient`, so every call (panes, runs, the assistant)
  shares one concurrency bound, and it wires the runner in one place (`runner`).

No Textual here: the App holds a Session (screens reach it as ``self.session``) and the
headless commands open one with ``async with await Session.open(path, ...)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coevo_tui.domain.errors import ProjectFileError, UserError, shown_name
from coevo_tui.domain.model import Project
from coevo_tui.llm.config import ModelChoice, check_api_base, resolve_model
from coevo_tui.store import Store
from coevo_tui.store.project_file import check_project_file, read_only_reason

if TYPE_CHECKING:
    from coevo_tui.llm.client import ModelClient, RetryPolicy
    from coevo_tui.llm.runner import Runner

DEFAULT_CONCURRENCY = 8


class Session:
    """An open project plus the models it calls. Build with `Session.open` (or wrap a
    store you opened yourself: `Session(store, project)`); close with `close()`."""

    def __init__(self, store: Store, project: Project, *, model: str | None = None,
                 api_base: str | None = None, assistant_model: str | None = None,
                 client: ModelClient | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.store = store
        self.project = project
        self.model_override = model
        self.api_base_override = api_base
        self.assistant_override = assistant_model
        self._client = client
        self._env = env

    @classmethod
    async def open(cls, path: Path | str, *, model: str | None = None,
                   api_base: str | None = None, assistant_model: str | None = None,
                   read_only: bool | None = None, client: ModelClient | None = None
                   ) -> Session:
        """Open the project at `path`, creating it if it does not exist (see `Store.open`
        for what is refused). `read_only` None decides from the file: a project coevo
        cannot write (a read-only file, folder or mount) opens read-only, to be looked at."""
        path = Path(path)
        _check_api_bases(api_base)  # refused before anything is opened
        if read_only is None:
            read_only = path.exists() and read_only_reason(path) is not None
        store = await Store.open(path, read_only=read_only)
        try:
            project = await store.settings.get()
        except BaseException:
            await store.close()
            raise
        return cls(store, project, model=model, api_base=api_base,
                   assistant_model=assistant_model, client=client)

    @classmethod
    async def open_existing(cls, path: Path | str, *, reading: bool = False,
                            missing: str = "nothing was changed", model: str | None = None,
                            api_base: str | None = None, assistant_model: str | None = None,
                            client: ModelClient | None = None) -> Session:
        """Open a project that must exist (every headless command but import and demo).

        A missing file is one line ("PATH: no such project file; `missing`") and is not
        created; a file that is not a coevo project is refused before SQLite touches it.
        `reading`: the command only reads, so a project coevo cannot write is opened
        read-only instead of refused."""
        path = Path(path)
        _check_api_bases(api_base)
        if not path.exists():
            raise ProjectFileError(f"{shown_name(path)}: no such project file; {missing}")
        check_project_file(path)
        store = await (Store.open_to_read(path) if reading else Store.open(path))
        try:
            project = await store.settings.get()
        except BaseException:
            await store.close()
            raise
        return cls(store, project, model=model, api_base=api_base,
                   assistant_model=assistant_model, client=client)

    async def close(self) -> None:
        await self.store.close()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def path(self) -> Path:
        return self.store.path

    @property
    def read_only(self) -> bool:
        return bool(getattr(self.store, "read_only", False))

    async def reload_project(self) -> Project:
        """Read the project's settings again (after they were changed)."""
        self.project = await self.store.settings.get()
        return self.project

    # ------------------------------------------------------------------ models
    @property
    def params(self) -> dict[str, Any]:
        """The model parameters of the project (temperature, max_tokens, ...), a copy."""
        return dict(self.project.params)

    def model_choice(self) -> ModelChoice:
        """The model under test: --model, the project's model, COEVO_MODEL, then the
        offline model. Raises ModelNotConfigured (a UserError) when there is none."""
        return resolve_model(self.model_override, self.project.model, self.api_base_override,
                             self._env)

    def configured_model(self) -> str | None:
        """The model under test when one is configured (--model, the project's model,
        COEVO_MODEL); None when only the offline fallback would answer, or nothing. The
        comparison and labelling rules prefer this model's answers (services/)."""
        try:
            choice = self.model_choice()
        except UserError:
            return None
        return None if choice.source == "default" else choice.model

    def assistant_choice(self) -> ModelChoice:
        """The assistant model: --assistant-model, the project's assistant model,
        COEVO_ASSISTANT_MODEL, then the model under test (same api_base rules)."""
        value = self._assistant_setting()
        if value is not None:
            env = os.environ if self._env is None else self._env
            return resolve_model(value, None, self.api_base_override, env)
        return self.model_choice()

    def assistant_configured(self) -> bool:
        """Whether an assistant model was chosen on purpose (--assistant-model, the
        project's assistant model, COEVO_ASSISTANT_MODEL) rather than falling back to the
        model under test: the TUI judges a run's answers unasked only then."""
        return self._assistant_setting() is not None

    def _assistant_setting(self) -> str | None:
        env = os.environ if self._env is None else self._env
        for value in (self.assistant_override, self.project.assistant_model,
                      env.get("COEVO_ASSISTANT_MODEL")):
            if value and value.strip():
                return value
        return None

    @property
    def client(self) -> ModelClient:
        """The process's one model client (made on first use; importing it does not
        import litellm, which loads on the first call)."""
        if self._client is None:
            from coevo_tui.llm.client import ModelClient

            self._client = ModelClient(concurrency=DEFAULT_CONCURRENCY)
        return self._client

    def use_client(self, *, concurrency: int | None = None, timeout: float | None = None,
                   retry: RetryPolicy | None = None) -> ModelClient:
        """Replace the client before any call (the headless commands' --concurrency and
        COEVO_TIMEOUT / COEVO_MAX_ATTEMPTS settings)."""
        from coevo_tui.llm.client import ModelClient

        kwargs: dict[str, Any] = {}
        if concurrency is not None:
            kwargs["concurrency"] = concurrency
        if timeout is not None:
            kwargs["timeout"] = timeout
        if retry is not None:
            kwargs["retry"] = retry
        self._client = ModelClient(**kwargs)
        return self._client

    def runner(self, choice: ModelChoice | None = None,
               params: Mapping[str, Any] | None = None) -> Runner:
        """The runner for `choice` (default: the model under test) with the project's
        parameters, on the session's one client. The one place a Runner is built."""
        from coevo_tui.llm.runner import Runner

        return Runner(self.store, self.client, choice or self.model_choice(),
                      self.params if params is None else params)


def _check_api_bases(api_base: str | None) -> None:
    """Refuse an api_base carrying credentials (the option's, else the environment's) in
    one line before the project is opened; `resolve_model` checks again when choosing."""
    if api_base and api_base.strip():
        check_api_base(api_base.strip(), "--api-base")
    else:
        check_api_base((os.environ.get("COEVO_API_BASE") or "").strip() or None,
                       "COEVO_API_BASE")

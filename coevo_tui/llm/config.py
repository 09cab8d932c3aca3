"""Which model to call, and how to describe it, without importing litellm.

Precedence (first that is set wins):

1. ``--model`` on the command line (or the TUI's model override),
2. the project's setting (``Project.model``),
3. the ``COEVO_MODEL`` environment variable,
4. an offline model run in-process (llm/local_models.py): ``coevo-local/qwen2.5-coder-1.5b``
   if its file is installed (``./dev demo``), else ``coevo-local/smollm2`` if that is
   (``./dev test`` installs it).

``--api-base`` (or ``COEVO_API_BASE``) points at any OpenAI-compatible server (vLLM, LM
Studio, llama.cpp server, Ollama's /v1, a proxy). A model name without a provider prefix is
then called as ``openai/<name>``, which is how litellm addresses OpenAI-compatible servers;
write ``ollama/llama3.2`` or ``hosted_vllm/...`` to pick another litellm provider. Keys come
from the environment only (e.g. ``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``).

An api_base carrying credentials (``http://user:password@host/v1``, ``?api_key=...``) is
refused up front (`CredentialsInUrl`): litellm cannot send them (its HTTP clients refuse a
URL's user and password next to the key's Authorization header, and a query string breaks
the endpoint's path), and coevo would otherwise show them in its header and status bar.
Every place that shows an api_base shows `redact_url(api_base)`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from coevo_tui.domain.errors import UserError

LOCAL_PROVIDER = "coevo-local"
QWEN_MODEL = "coevo-local/qwen2.5-coder-1.5b"  # the demo's model
SMOLLM2_MODEL = "coevo-local/smollm2"  # tiny: the tests' model, the demo's fallback
LOCAL_MODEL = SMOLLM2_MODEL  # the offline model that is always installed with the tests
FAKE_PROVIDER = "coevo-fake"
FAKE_MODEL = "coevo-fake/echo"

# litellm providers that take an api_base and so may appear as prefixes with --api-base.
# Any other "x/y" name is a model name on an OpenAI-compatible server (e.g. a Hugging Face
# id like "meta-llama/Llama-3.1-8B-Instruct" served by vLLM) and gets "openai/" in front.
_API_BASE_PROVIDERS = (
    "openai", "text-completion-openai", "custom_openai", "openai_like", "azure", "azure_ai",
    "ollama", "ollama_chat", "hosted_vllm", "vllm", "lm_studio", "llamafile", "anthropic",
    "huggingface", "together_ai", "groq", "deepseek", "mistral", "openrouter", "xai",
    "fireworks_ai", "perplexity", "litellm_proxy", "gemini", "vertex_ai", "bedrock",
    "databricks", "cohere", "cohere_chat", LOCAL_PROVIDER, FAKE_PROVIDER,
)


# Query parameters whose value is a secret: api_key, key, token, access_token, sig, ...
_SECRET_PARAM = re.compile(r"key|token|secret|passw|pwd|auth|sig|credential|session", re.I)
# A URL inside free text (an error message): scheme://, then up to whitespace or a quote.
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")
REDACTED = "[redacted]"


def url_credentials(url: str) -> list[str]:
    """What in `url` is a credential: "user:password" (any user info) and the names of
    secret-looking query parameters; empty when there is none."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a broken IPv6 host: judge the authority by hand
        authority = url.partition("://")[2].partition("/")[0]
        return ["user:password"] if "@" in authority else []
    found = ["user:password"] if "@" in parts.netloc else []
    found += [name for name, _ in parse_qsl(parts.query, keep_blank_values=True)
              if _SECRET_PARAM.search(name)]
    return found


def redact_url(url: str) -> str:
    """`url` with its user info and the values of secret-looking query parameters replaced
    by ``[redacted]`` (``http://[redacted]@host/v1?api_key=[redacted]&v=2``); a URL without
    credentials comes back unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED  # unparseable: show nothing of it rather than risk a secret
    netloc = parts.netloc
    if "@" in netloc:
        netloc = REDACTED + "@" + netloc.rpartition("@")[2]
    query = parts.query
    if query and any(_SECRET_PARAM.search(name) for name, _ in
                     parse_qsl(query, keep_blank_values=True)):
        pieces = []
        for piece in query.split("&"):
            name, sep, _ = piece.partition("=")
            if _SECRET_PARAM.search(name):
                piece = f"{name}={quote(REDACTED, safe='[]')}"
            pieces.append(piece)
        query = "&".join(pieces)
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_urls(text: str) -> str:
    """`text` with `redact_url` applied to every URL in it (for error messages)."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


class CredentialsInUrl(UserError):
    """An api_base with a user, a password or a secret query parameter in it."""

    def __init__(self, where: str, url: str) -> None:
        super().__init__(
            f"{where} {redact_url(url)} has credentials in it ({', '.join(url_credentials(url))});"
            " coevo does not send credentials from a URL: remove them and export the key"
            " instead (OPENAI_API_KEY for an OpenAI-compatible server)")


def check_api_base(api_base: str | None, where: str = "--api-base") -> None:
    """Raise CredentialsInUrl (one line, the secret not in it) if `api_base` carries
    credentials; `where` names the setting it came from."""
    if api_base and url_credentials(api_base):
        raise CredentialsInUrl(where, api_base)


class ModelNotConfigured(UserError):
    """No model is configured and the offline demo model is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "no model configured: pass --model (e.g. --model gpt-4o-mini with OPENAI_API_KEY"
            " set), set COEVO_MODEL, save a model in the project, or install the offline demo"
            " model with ./dev install (pip install -r requirements/local.txt)"
        )


@dataclass(frozen=True)
class ModelChoice:
    """The model calls go to: a litellm model string, an optional api_base, and where the
    choice came from ("option", "project", "environment" or "default")."""

    model: str
    api_base: str | None = None
    source: str = "option"

    @property
    def provider(self) -> str | None:
        """The litellm provider prefix if the string has one ("openai", "coevo-local")."""
        head, sep, _ = self.model.partition("/")
        return head if sep else None

    @property
    def is_local_demo(self) -> bool:
        """True for an offline model run in-process (small: the UI must say so plainly)."""
        return self.provider == LOCAL_PROVIDER

    @property
    def is_fake(self) -> bool:
        return self.provider == FAKE_PROVIDER

    def describe(self) -> str:
        """One short phrase for the status bar and the run header (an api_base's credentials
        redacted)."""
        if self.is_local_demo:
            return _describe_local(self.model)
        text = self.model
        if self.api_base:
            text += f" at {redact_url(self.api_base)}"
        return text


def _describe_local(model: str) -> str:
    from coevo_tui.llm import local_models

    try:
        entry = local_models.model_for(model)
    except UserError:
        return f"{model} (offline model; not one coevo knows)"
    return f"{entry.title} ({entry.note})"


def qwen_model_installed() -> bool:
    """Whether the demo's Qwen model can run here: the engine, and its verified file in
    the cache or its parts installed (checked without importing either)."""
    from coevo_tui.llm import local_models

    return local_models.is_installed(local_models.QWEN)


def local_model_installed() -> bool:
    """Whether an offline model can run here (the engine and at least one model's file;
    checked without importing them)."""
    from coevo_tui.llm import local_models

    return any(local_models.is_installed(model) for model in local_models.MODELS.values())


def default_local_model() -> str:
    """The offline model used when none is configured: the Qwen model if it is
    installed, else SmolLM2."""
    return QWEN_MODEL if qwen_model_installed() else SMOLLM2_MODEL


def litellm_model_name(model: str, api_base: str | None) -> str:
    """The litellm model string to call: with an api_base, a name without a known provider
    prefix is called through litellm's OpenAI-compatible client ("openai/<name>")."""
    model = model.strip()
    if api_base:
        head, sep, _ = model.partition("/")
        if not sep or head not in _API_BASE_PROVIDERS:
            return f"openai/{model}"
    return model


def resolve_model(option: str | None = None, project_model: str | None = None,
                  api_base: str | None = None, env: Mapping[str, str] | None = None,
                  ) -> ModelChoice:
    """Choose the model (see the module docstring for the order).

    Raises ModelNotConfigured (a UserError, one clear line) when nothing is set and the
    offline demo model is not installed, and CredentialsInUrl when the api_base carries
    credentials.
    """
    env = os.environ if env is None else env
    base = (api_base or "").strip() or None
    check_api_base(base, "--api-base")
    if base is None:
        base = (env.get("COEVO_API_BASE") or "").strip() or None
        check_api_base(base, "COEVO_API_BASE")
    for value, source in ((option, "option"), (project_model, "project"),
                          (env.get("COEVO_MODEL"), "environment")):
        if value and value.strip():
            return ModelChoice(litellm_model_name(value, base), base, source)
    if base:
        raise UserError(f"--api-base {redact_url(base)} needs a model name: pass --model or set"
                        " COEVO_MODEL")
    if local_model_installed():
        return ModelChoice(default_local_model(), None, "default")
    raise ModelNotConfigured()


def model_status(option: str | None = None, project_model: str | None = None,
                 api_base: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """Status-bar text for the model choice; never raises (says when nothing is set, or
    what is wrong with the setting)."""
    try:
        return resolve_model(option, project_model, api_base, env).describe()
    except ModelNotConfigured:
        return "no model configured (use --model or COEVO_MODEL)"
    except UserError as exc:
        return str(exc)

"""Embeddings through litellm, for the near-duplicate check of generated cases: optional,
and off unless an embedding model is configured.

Configured from the environment only (it is a property of the machine's providers, not
of a project):

    COEVO_EMBEDDING_MODEL      a litellm embedding model ("text-embedding-3-small",
                               "ollama/nomic-embed-text", ...); unset: off
    COEVO_EMBEDDING_API_BASE   an OpenAI-compatible server for it (credentials refused)
    COEVO_EMBEDDING_THRESHOLD  cosine similarity from which two inputs are duplicates
                               (default 0.92)

With it set, a generated case is also dropped when its embedding is that close to an
existing case's (paraphrases the text comparison misses). A failing embedding call never
fails the batch: the check falls back to text alone and the batch reports it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from coevo_tui.domain.diversity import DEFAULT_COSINE_THRESHOLD
from coevo_tui.domain.errors import UserError
from coevo_tui.llm.config import check_api_base, litellm_model_name
from coevo_tui.llm.litellm_import import load_litellm_async

MODEL_VARIABLE = "COEVO_EMBEDDING_MODEL"
API_BASE_VARIABLE = "COEVO_EMBEDDING_API_BASE"
THRESHOLD_VARIABLE = "COEVO_EMBEDDING_THRESHOLD"
BATCH = 100  # texts per embedding request
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class EmbeddingChoice:
    """The embedding model, its server and the duplicate threshold."""

    model: str
    api_base: str | None = None
    threshold: float = DEFAULT_COSINE_THRESHOLD


def embedding_choice(env: Mapping[str, str] | None = None) -> EmbeddingChoice | None:
    """The configured embedding model, or None (off). UserError (one line) for a bad
    threshold or an api_base with credentials in it."""
    env = os.environ if env is None else env
    model = (env.get(MODEL_VARIABLE) or "").strip()
    if not model:
        return None
    api_base = (env.get(API_BASE_VARIABLE) or "").strip() or None
    check_api_base(api_base, API_BASE_VARIABLE)
    raw = (env.get(THRESHOLD_VARIABLE) or "").strip()
    try:
        threshold = float(raw) if raw else DEFAULT_COSINE_THRESHOLD
    except ValueError:
        raise UserError(f"{THRESHOLD_VARIABLE}={raw!r} is not a number") from None
    if not 0 < threshold <= 1:
        raise UserError(f"{THRESHOLD_VARIABLE} must be above 0 and at most 1")
    return EmbeddingChoice(litellm_model_name(model, api_base), api_base, threshold)


async def embed(choice: EmbeddingChoice, texts: Sequence[str]
                ) -> tuple[list[list[float]] | None, str | None]:
    """The embeddings of `texts` in order, or (None, one line saying why not)."""
    from coevo_tui.llm.client import redact_secrets

    litellm = await load_litellm_async()
    vectors: list[list[float]] = []
    try:
        for start in range(0, len(texts), BATCH):
            chunk = list(texts[start:start + BATCH])
            kwargs: dict[str, object] = {"model": choice.model, "input": chunk,
                                         "timeout": TIMEOUT_S}
            if choice.api_base:
                kwargs["api_base"] = choice.api_base
            async with asyncio.timeout(TIMEOUT_S):
                response = await litellm.aembedding(**kwargs)
            data = sorted(response.data, key=lambda d: _field(d, "index"))
            vectors += [list(_field(d, "embedding")) for d in data]
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure: the text check stays
        line = " ".join(str(exc).split())[:200] or type(exc).__name__
        return None, f"embeddings from {choice.model} failed ({redact_secrets(line)})"
    if len(vectors) != len(texts):
        return None, f"embeddings from {choice.model}: {len(vectors)} for {len(texts)} texts"
    return vectors, None


def _field(item: object, name: str) -> object:
    return item[name] if isinstance(item, Mapping) else getattr(item, name)

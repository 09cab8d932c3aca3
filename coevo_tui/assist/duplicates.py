"""Whether a generated input nearly repeats one already there: by normalised text always
(domain/diversity.py), and by embedding when an embedding model is configured
(llm/embeddings.py): cosine similarity catches the paraphrases text misses.

The embeddings of the existing inputs are taken once per batch, for the most recent
`RECENT` of them (every new item is compared with those and with the batch's earlier
items); a failing embedding call turns the embedding check off for the batch and is
reported, while the text check goes on."""

from __future__ import annotations

from collections.abc import Sequence

from coevo_tui.domain.diversity import NearDuplicates, VectorNearDuplicates
from coevo_tui.llm.embeddings import EmbeddingChoice, embed

RECENT = 500


class DuplicateFilter:
    """The inputs a new one must not nearly repeat. Build with `await
    DuplicateFilter.build(texts, choice)`; `await check(text)`, then `add(text)` for an
    item kept. `problems` lists what went wrong with the embeddings."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.text = NearDuplicates(texts)
        self.vectors: VectorNearDuplicates | None = None
        self.choice: EmbeddingChoice | None = None
        self.problems: list[str] = []
        self._checked: dict[str, list[float]] = {}

    @classmethod
    async def build(cls, texts: Sequence[str], choice: EmbeddingChoice | None
                    ) -> DuplicateFilter:
        found = cls(texts)
        if choice is None:
            return found
        recent = list(texts[-RECENT:])
        vectors, error = await embed(choice, recent) if recent else ([], None)
        if vectors is None:
            found.problems.append(f"{error}; compared by text only")
            return found
        found.choice = choice
        found.vectors = VectorNearDuplicates(choice.threshold)
        for text, vector in zip(recent, vectors):
            found.vectors.add(text, vector)
        return found

    async def check(self, text: str) -> str | None:
        """The input `text` nearly repeats (text first, then embedding), or None."""
        duplicate = self.text.check(text)
        if duplicate is not None or self.vectors is None or self.choice is None:
            return duplicate
        vectors, error = await embed(self.choice, [text])
        if vectors is None:
            self.problems.append(f"{error}; compared by text only from here")
            self.vectors = None
            return None
        self._checked[text] = vectors[0]
        return self.vectors.check(vectors[0])

    def add(self, text: str) -> None:
        """Remember a kept item, so later ones are compared with it too."""
        self.text.add(text)
        vector = self._checked.pop(text, None)
        if self.vectors is not None and vector is not None:
            self.vectors.add(text, vector)

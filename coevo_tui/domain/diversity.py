"""Near duplicates among generated cases (issue 10, point 3; the paper's own limit: its
generated examples lacked diversity).

A candidate that nearly repeats an existing case, a rejected input or an earlier item of
the same batch adds nothing but review work, so it is dropped and counted. "Nearly" is
measured on normalised text (`normalise`: Unicode compatibility forms folded, case
folded, punctuation and symbols dropped, whitespace collapsed) with the words put in
order, by rapidfuzz's normalised Indel similarity (0 to 100; 100 is identical): so "gg
ez, uninstall" and "Uninstall. GG EZ!!" are the same case, while "kys" and "kys (the
song)" are not. `threshold` (default 90) is the similarity from which a text counts as a
duplicate.

With an embedding model configured (`llm/embeddings.py`), `VectorNearDuplicates` does
the same on embeddings by cosine similarity, which also catches paraphrases.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Sequence

from rapidfuzz import fuzz, process

DEFAULT_THRESHOLD = 90.0
DEFAULT_COSINE_THRESHOLD = 0.92


def normalise(text: str) -> str:
    """`text` as compared: NFKC, case folded, letters, digits and marks kept (any script),
    everything else a space, whitespace collapsed. A text with no letter or digit (only
    emoji, say) keeps its symbols, so that it is not equal to every other such text."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(ch if unicodedata.category(ch)[0] in "LNM" else " " for ch in folded)
    words = kept.split()
    return " ".join(words) if words else " ".join(folded.split())


def _key(text: str) -> str:
    # Words in order: a reordered sentence is the same case (token-sort matching, with
    # the sorting done once per text rather than once per comparison).
    return " ".join(sorted(normalise(text).split()))


class NearDuplicates:
    """The texts a new one must not nearly repeat. `check(text)` names the text it
    nearly duplicates (or None); `add(text)` adds one (an item kept)."""

    def __init__(self, existing: Iterable[str] = (), threshold: float = DEFAULT_THRESHOLD
                 ) -> None:
        self.threshold = threshold
        self._texts: list[str] = []
        self._keys: list[str] = []
        self._exact: dict[str, int] = {}
        for text in existing:
            self.add(text)

    def __len__(self) -> int:
        return len(self._texts)

    def add(self, text: str) -> None:
        """Remember `text` (an existing case, a rejected input, an item kept)."""
        key = _key(text)
        self._exact.setdefault(key, len(self._texts))
        self._texts.append(text)
        self._keys.append(key)

    def check(self, text: str) -> str | None:
        """The remembered text `text` nearly duplicates (the most similar one), or None."""
        key = _key(text)
        exact = self._exact.get(key)
        if exact is not None:
            return self._texts[exact]
        if not self._keys:
            return None
        found = process.extractOne(key, self._keys, scorer=fuzz.ratio, processor=None,
                                   score_cutoff=self.threshold)
        return None if found is None else self._texts[found[2]]

    def similarity(self, a: str, b: str) -> float:
        """How alike two texts are as `check` measures it (0 to 100)."""
        return float(fuzz.ratio(_key(a), _key(b)))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0 for a zero vector)."""
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


class VectorNearDuplicates:
    """`NearDuplicates` on embeddings: a vector within `threshold` cosine similarity of a
    remembered one is a near duplicate of its text."""

    def __init__(self, threshold: float = DEFAULT_COSINE_THRESHOLD) -> None:
        self.threshold = threshold
        self._texts: list[str] = []
        self._vectors: list[tuple[list[float], float]] = []

    def __len__(self) -> int:
        return len(self._texts)

    def add(self, text: str, vector: Sequence[float]) -> None:
        values = [float(x) for x in vector]
        self._texts.append(text)
        self._vectors.append((values, math.sqrt(sum(x * x for x in values))))

    def check(self, vector: Sequence[float]) -> str | None:
        """The remembered text whose vector is most similar to `vector`, if it is at
        least `threshold`; else None."""
        values = [float(x) for x in vector]
        norm = math.sqrt(sum(x * x for x in values))
        if not norm:
            return None
        best, best_score = None, self.threshold
        for index, (other, other_norm) in enumerate(self._vectors):
            if not other_norm:
                continue
            score = sum(x * y for x, y in zip(values, other)) / (norm * other_norm)
            if score >= best_score:
                best, best_score = index, score
        return None if best is None else self._texts[best]

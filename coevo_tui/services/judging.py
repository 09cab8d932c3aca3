"""How far the judge can be trusted: judge-human agreement per version (percent, Cohen's
kappa, the 3x3 confusion counts) over the answers that have both a label and a judge
verdict (the pure computation is domain/agreement.py; the pairs come from
`store.judgements.pairs`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from coevo_tui.domain.agreement import Agreement, agreement

if TYPE_CHECKING:
    from coevo_tui.store import Store


async def agreement_per_version(store: Store, model: str | None = None
                                ) -> dict[int, Agreement]:
    """Version id -> agreement over that version's answers (of `model`, the model under
    test; None: any model), for every version, oldest first (n = 0 where nothing was
    both judged and labelled)."""
    return {version.id: agreement(await store.judgements.pairs(version.id, model))
            for version in await store.versions.all()}

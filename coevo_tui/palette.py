"""The command palette's one provider: every action bound on the current screen.

It reads the same bindings the footer and the help screen read (`Screen.active_bindings`,
after `check_action` and the keymap), so a new binding on a screen is in the palette with no
extra code, and an action that does not apply right now is not offered.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode
from textual.screen import Screen


@dataclass(frozen=True)
class BoundAction:
    """One action the user can take on a screen: its description, key and where it runs."""

    description: str
    key_display: str
    action: str
    namespace: DOMNode
    binding_id: str | None
    tooltip: str


def bound_actions(screen: Screen[object]) -> list[BoundAction]:
    """Every enabled, described binding of `screen`, one entry per action with all its keys
    (e.g. `q, ^q  Quit`), in the order the bindings are declared."""
    app = screen.app
    found: dict[tuple[int, str], BoundAction] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        if not active.enabled or not binding.description or binding.system:
            continue
        marker = (id(active.node), binding.action)
        key = app.get_key_display(binding)
        earlier = found.get(marker)
        if earlier is not None:
            found[marker] = replace(earlier, key_display=f"{earlier.key_display}, {key}",
                                    binding_id=earlier.binding_id or binding.id,
                                    tooltip=earlier.tooltip or binding.tooltip)
            continue
        found[marker] = BoundAction(
            description=binding.description,
            key_display=key,
            action=binding.action,
            namespace=active.node,
            binding_id=binding.id,
            tooltip=binding.tooltip,
        )
    return list(found.values())


class ScreenActionsProvider(Provider):
    """Offers every action of the screen the palette was opened on."""

    def _actions(self) -> list[BoundAction]:
        return bound_actions(self.screen)

    def _run(self, action: BoundAction) -> None:
        self.app.call_later(self.app.run_action, action.action, action.namespace)

    def _help(self, action: BoundAction) -> str:
        help_text = f"key: {action.key_display}"
        if action.tooltip:
            help_text = f"{action.tooltip} ({help_text})"
        return help_text

    async def discover(self) -> Hits:
        for action in self._actions():
            yield DiscoveryHit(action.description, partial(self._run, action),
                               help=self._help(action))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for action in self._actions():
            score = matcher.match(action.description)
            if score > 0:
                yield Hit(score, matcher.highlight(action.description),
                          partial(self._run, action), text=action.description,
                          help=self._help(action))

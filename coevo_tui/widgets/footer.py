"""The footer every screen shows: Textual's `Footer`, compact, and on terminals narrower than
100 columns without the `^p palette` hint, so that the screen's keys fit at 80 columns
(`?` help and the palette still list everything).

Textual's footer rebuilds all its keys (removes and mounts a widget per key) whenever a
screen says its bindings changed. Most such changes only dim or undim keys already shown
(on Label, `r` when moving between a labelled and an unlabelled case): `CoevoFooter` then
updates those keys in place, rebuilds only when the keys themselves change, and does not
schedule a second rebuild while one is on its way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

if TYPE_CHECKING:
    from textual.screen import Screen

#: Below this width the footer drops the palette hint to make room for keys.
WIDE = 100

# One key as the footer shows it: key, key display, description, action; and enabled.
_Key = tuple[str, str, str, str, bool]


class CoevoFooter(Footer):
    def __init__(self) -> None:
        super().__init__(compact=True)
        self._rebuild_pending = False  # a rebuild is scheduled: it reads the newest keys

    def compose(self) -> ComposeResult:
        self._rebuild_pending = False
        yield from super().compose()

    async def on_resize(self, event: events.Resize) -> None:
        wide = event.size.width >= WIDE
        if wide != self.show_command_palette:
            self.show_command_palette = wide
            await self.recompose()

    def bindings_changed(self, screen: Screen) -> None:
        ours = screen is self.screen and self.is_attached and screen.app.app_focus
        if ours and self._bindings_ready and (self._rebuild_pending
                                              or self._update_in_place()):
            return
        super().bindings_changed(screen)  # schedules a rebuild after the next refresh
        self._rebuild_pending = ours

    def _wanted_keys(self) -> list[_Key] | None:
        """The keys `compose` would show now, in its order (the first binding of each
        action); None when binding groups are involved (left to `compose`)."""
        active = self.screen.active_bindings
        first_of_action: dict[str, _Key] = {}
        for _node, binding, enabled, _tooltip in active.values():
            if not binding.show:
                continue
            if binding.group is not None:
                return None
            first_of_action.setdefault(binding.action, (
                binding.key, self.app.get_key_display(binding), binding.description,
                binding.action, enabled))
        wanted = list(first_of_action.values())
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            palette = active.get(self.app.COMMAND_PALETTE_BINDING)
            if palette is not None:
                _node, binding, enabled, _tooltip = palette
                wanted.append((binding.key, self.app.get_key_display(binding),
                               binding.description, binding.action, enabled))
        return wanted

    def _update_in_place(self) -> bool:
        """Dim or undim the keys shown when nothing else changed; False when the keys
        themselves changed (the footer is then rebuilt)."""
        wanted = self._wanted_keys()
        if wanted is None:
            return False
        shown = [child for child in self.children if isinstance(child, FooterKey)]
        if len(shown) != len(self.children) or len(shown) != len(wanted):
            return False
        for widget, (key, display, description, action, _enabled) in zip(shown, wanted):
            if (widget.key, widget.key_display, widget.description, widget.action) != (
                    key, display, description, action):
                return False
        for widget, (*_, enabled) in zip(shown, wanted):
            if widget._disabled == enabled:  # its state changed: what compose would give
                widget._disabled = not enabled
                widget.set_class(not enabled, "-disabled")
        return True

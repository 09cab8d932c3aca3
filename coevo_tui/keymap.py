"""Remappable keys: every binding carries an id, and a keymap (binding id -> keys) overrides it.

The ids are `<screen>.<action>` (`cases.add`, `label.good`) or `app.<action>` for keys that
work everywhere (`app.quit`, `app.help`). A user remaps keys with the environment variable
``COEVO_KEYMAP``, entries separated by `;`, alternatives for one binding by `,`::

    COEVO_KEYMAP="cases.add=n; app.quit=ctrl+q,q; cases.archive=delete"

Textual applies the keymap to every binding with a matching id (posting's `set_keymap`), so
the footer, the help screen and the command palette all show the remapped key. No key list
is kept here: the bindings declared on the App and the screens are the only source.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from coevo_tui.domain.errors import UserError

KEYMAP_ENV = "COEVO_KEYMAP"

_BINDING_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
# A Textual key: letters, digits, punctuation names, modifiers joined by '+'.
_KEY = re.compile(r"^[A-Za-z0-9_+\-]+$|^[^\s,;=]$")


def parse_keymap(text: str, *, source: str = KEYMAP_ENV) -> dict[str, str]:
    """Parse `"id=key[,key]; id=key"` into {binding id: "key,key"}.

    Raises UserError naming the bad entry, so `coevo PATH` refuses a typo with one line
    instead of silently ignoring it.
    """
    keymap: dict[str, str] = {}
    for raw in text.split(";"):
        entry = raw.strip()
        if not entry:
            continue
        binding_id, sep, keys = entry.partition("=")
        binding_id, keys = binding_id.strip(), keys.strip()
        if not sep or not binding_id or not keys:
            raise UserError(f"{source}: {entry!r} is not of the form binding.id=key")
        if not _BINDING_ID.match(binding_id):
            raise UserError(f"{source}: {binding_id!r} is not a binding id like cases.add")
        key_list = [k.strip() for k in keys.split(",")]
        for key in key_list:
            if not key or not _KEY.match(key):
                raise UserError(f"{source}: {key!r} is not a key name (for {binding_id})")
        keymap[binding_id] = ",".join(key_list)
    return keymap


def keymap_from_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The user's keymap from ``COEVO_KEYMAP`` (empty when unset)."""
    environ = os.environ if environ is None else environ
    return parse_keymap(environ.get(KEYMAP_ENV, ""))

"""Keys: every binding has an id, a keymap file can rebind it, and help is read from the bindings.

A keymap file is a JSON object of binding id → keys, e.g. `{"view.tint": "ctrl+y", "chat.stop": "escape,f9"}`.
`emolab chat --keymap FILE` names one; otherwise `$EMOLAB_KEYMAP`, else `keymap.json` in the user's
config directory (`~/.config/emolab` on Linux), is used when it exists.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from textual.binding import Binding, BindingsMap
from textual.keys import format_key

from emolab.core.documents import read_json
from emolab.core.errors import EmolabError

KEYMAP_FILE = "keymap.json"


@dataclass(frozen=True)
class KeyRow:
    """One action as help and the palette show it: all its keys, what it does."""

    keys: str
    action: str
    description: str  # the footer's short label
    explanation: str  # one sentence: the binding's tooltip

    @property
    def command(self) -> str:
        """The action without its namespace: `app.quit` and `quit` are one command."""
        return self.action.removeprefix("app.")


def key_label(binding: Binding) -> str:
    """`ctrl+n` → Ctrl+N, `escape` → Esc, `shift+left` → Shift+←, `n` → n."""
    modifiers, key = binding.parse_key()
    name = format_key(key)
    if len(name) > 1:
        name = name.capitalize()
    elif modifiers:
        name = name.upper()  # Ctrl+N, as menus write it; a plain letter stays as typed
    return "+".join([*(modifier.capitalize() for modifier in modifiers), name])


def key_rows(bindings: BindingsMap, keymap: dict[str, str] | None = None) -> list[KeyRow]:
    """The bindings (rebound by `keymap`) that explain themselves, one row per action, in order."""
    order = {(binding.action, binding.id): None for _, binding in bindings}  # a rebound key keeps its place
    bindings = bindings.copy()
    if keymap:
        bindings.apply_keymap(keymap)
    grouped: dict[tuple[str, str | None], list[Binding]] = {}
    for _, binding in bindings:
        if binding.tooltip:
            grouped.setdefault((binding.action, binding.id), []).append(binding)
    grouped = {name: grouped[name] for name in order if name in grouped}
    return [
        KeyRow(
            " / ".join(dict.fromkeys(key_label(b) for b in group)),
            group[0].action,
            group[0].description,
            group[0].tooltip,
        )
        for group in grouped.values()
    ]


def binding_ids(bindings: Iterable[Binding]) -> set[str]:
    return {binding.id for binding in bindings if binding.id}


def default_keymap_path() -> Path | None:
    """$EMOLAB_KEYMAP, else the user's keymap.json if there is one."""
    if os.environ.get("EMOLAB_KEYMAP"):
        return Path(os.environ["EMOLAB_KEYMAP"])
    import platformdirs

    path = platformdirs.user_config_path("emolab") / KEYMAP_FILE
    return path if path.is_file() else None


def read_keymap(path: str | Path, known: set[str]) -> dict[str, str]:
    """A keymap file, checked: every id must name a binding, every value be keys."""
    data = read_json(path, "keymap")
    if not isinstance(data, dict) or not all(isinstance(keys, str) and keys.strip() for keys in data.values()):
        raise EmolabError(f'{path}: a keymap is a JSON object of binding id → keys, such as {{"view.tint": "ctrl+y"}}')
    unknown = sorted(set(data) - known)
    if unknown:
        raise EmolabError(f"{path}: no binding has the id {unknown[0]!r} (ids: {', '.join(sorted(known))})")
    return {binding_id: keys.replace(" ", "") for binding_id, keys in data.items()}

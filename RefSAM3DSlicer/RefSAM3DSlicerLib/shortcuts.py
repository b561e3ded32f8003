"""Keyboard shortcuts of the interactive loop, as user-configurable settings.

Single keys work like SlicerNNInteractive's and the Segment Editor's: bound to the main window while the
module is shown, they act in the slice views, but never while a text box has the focus (Qt gives typed
letters to the text box first). Undo also has
Ctrl+Z, active only while the RefSAM3D panel has the focus, so Slicer's other Ctrl+Z users are untouched.

A main-window shortcut takes its key away from the views, so the keys the slice and 3D views use themselves
(``VIEW_KEYS``) are never bound: e.g. "b" is the slice views' previous slice, so the box is drawn with X.
"""
from __future__ import annotations

ACTIONS = {  # action -> (default key, what it does)
    "include": ("I", "place include (+) clicks"),
    "exclude": ("E", "place exclude (-) clicks"),
    "box": ("X", "draw a box"),
    "undo": ("Z", "undo the last click or step"),
    "new_object": ("N", "finish this segment; the next text or click starts a new one"),
}
PANEL_UNDO = "Ctrl+Z"
_RESERVED = {"ctrl+z", "ctrl+return", "ctrl+enter", "esc"}  # bound by the panel itself
# Keys Slicer's views handle without a modifier (vtkMRMLSliceIntersectionWidget: f/b next/previous slice, g/t label
# and foreground opacity, v slice visibility, r reset view, arrows, [ ] { } volumes; vtkMRMLCameraWidget: r, +/-,
# arrows, Home/End/PgDown/Ins; vtkSlicerMarkupsWidget over a point: s snap, Del/Backspace delete).
VIEW_KEYS = frozenset({"b", "f", "g", "r", "s", "t", "v", "shift+v", "left", "right", "up", "down", "[", "]", "{", "}",
                       "+", "-", "home", "end", "pgdown", "pgup", "ins", "insert", "del", "delete", "backspace"})


def default_shortcuts() -> dict[str, str]:
    return {action: key for action, (key, _) in ACTIONS.items()}


def validated_shortcuts(shortcuts) -> dict[str, str]:
    """Every action gets a key: unknown actions are dropped; empty, duplicate, reserved keys and the views' own keys
    fall back to the default."""
    result = default_shortcuts()
    if not isinstance(shortcuts, dict):
        return result
    used: set[str] = set()
    for action in ACTIONS:
        key = shortcuts.get(action)
        key = " ".join(str(key).split()) if key is not None else ""
        if key and key.lower() not in used and key.lower() not in _RESERVED | VIEW_KEYS:
            result[action] = key
        used.add(result[action].lower())
    if len(used) < len(ACTIONS):  # a user key collided with another action's default: back to all defaults
        return default_shortcuts()
    return result


def describe_shortcuts(shortcuts: dict[str, str]) -> str:
    """One line for tooltips and the help text, e.g. 'I: place include (+) clicks, ...'."""
    shortcuts = validated_shortcuts(shortcuts)
    return ", ".join(f"{shortcuts[a]}: {text}" for a, (_, text) in ACTIONS.items()) + f", {PANEL_UNDO}: undo (panel)"


def format_shortcuts(shortcuts: dict[str, str]) -> str:
    """'include=I, exclude=E, ...' for the settings text box."""
    shortcuts = validated_shortcuts(shortcuts)
    return ", ".join(f"{action}={shortcuts[action]}" for action in ACTIONS)


def parse_shortcuts(text: str) -> dict[str, str]:
    """The settings text box back to a mapping; unknown or malformed parts are ignored (then validated)."""
    found = {}
    for part in (text or "").split(","):
        action, _, key = part.partition("=")
        if action.strip() in ACTIONS and key.strip():
            found[action.strip()] = key.strip()
    return validated_shortcuts(found)

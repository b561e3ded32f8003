"""User preferences that outlive a Slicer session: model, device or server, thresholds, clean-up, prompt history.

The values live in one dataclass so the Widget, the Logic and the tests agree on names and defaults.
They persist through whatever store fits: Slicer's QSettings inside the app (passed in as a plain
object with value()/setValue(), so this file never imports Qt) or a JSON file elsewhere. A damaged or
hand-edited entry falls back to its default instead of breaking the module. The server token is one of these
preferences (Slicer keeps them in the user's settings file), never a scene parameter; it is not shown by ``repr`` and
a log line about it never includes its value.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .shortcuts import default_shortcuts, validated_shortcuts

log = logging.getLogger(__name__)

# The zoo default (RefSAM3DLib.zoo.catalogue.DEFAULT_MODEL), repeated so that this module imports without the backend.
DEFAULT_MODEL = "refsam3d-lite"
DEVICES = ("auto", "cuda", "cpu")
COMPUTE = ("local", "server")  # this computer's model, or a RefSAM3D server (refsam3d serve)
SECRETS = ("server_token",)  # never written to a log line
MODALITIES = ("auto", "CT", "MR")
MAX_RECENT_PROMPTS = 30


@dataclass
class RefSAM3DSettings:
    model: str = DEFAULT_MODEL  # a model-zoo name or a checkpoint file
    device: str = "auto"
    compute: str = "local"  # "local": the model runs in Slicer; "server": prompts go to server_url
    server_url: str = ""  # e.g. http://gpu-server:8765
    server_token: str = field(default="", repr=False)  # the content of the server's --token-file (Slicer's settings)
    modality: str = "auto"  # auto: the engine tells CT from MR by intensities
    threshold: float = 0.5  # probability above which a voxel is inside
    presence_threshold: float = 0.5  # below this a text prompt is reported "not found"
    largest_component: bool = False
    fill_holes: bool = False
    min_size_ml: float = 0.0
    clear_points_after_segment: bool = True  # unused since the click loop (a new text always starts without clicks)
    undo_depth: int = 10
    supersede_clicks: bool = False  # a new click cancels a running refinement instead of queueing behind it
    recent_prompts: list[str] = field(default_factory=list)
    shortcuts: dict[str, str] = field(default_factory=default_shortcuts)  # action -> key (shortcuts.py)

    def validated(self) -> RefSAM3DSettings:
        """A copy with every out-of-range value replaced by its default (and a log line saying so)."""
        default = RefSAM3DSettings()
        good = RefSAM3DSettings(**asdict(self))
        checks = {
            "model": lambda v: isinstance(v, str) and v.strip() != "",
            "device": lambda v: v in DEVICES,
            "compute": lambda v: v in COMPUTE,
            "server_url": lambda v: isinstance(v, str) and len(v) < 2048,
            "server_token": lambda v: isinstance(v, str) and len(v) < 4096 and all(32 < ord(c) < 127 for c in v),
            "modality": lambda v: v in MODALITIES,
            "threshold": lambda v: _is_number(v) and 0.0 < v < 1.0,
            "presence_threshold": lambda v: _is_number(v) and 0.0 <= v <= 1.01,
            "min_size_ml": lambda v: _is_number(v) and v >= 0.0,
            "undo_depth": lambda v: isinstance(v, int) and 1 <= v <= 100,
            "recent_prompts": lambda v: isinstance(v, list) and all(isinstance(p, str) for p in v),
        }
        for name, ok in checks.items():
            if not ok(getattr(good, name)):
                log.warning("RefSAM3D setting %s=%s is not valid; using %r", name, _shown(name, getattr(good, name)),
                            getattr(default, name))
                setattr(good, name, getattr(default, name))
        good.recent_prompts = good.recent_prompts[:MAX_RECENT_PROMPTS]
        good.shortcuts = validated_shortcuts(good.shortcuts)
        return good

    def remember_prompt(self, text: str) -> None:
        """Most recent first, no duplicates: feeds the prompt box's completion."""
        text = " ".join(text.split())
        if text:
            self.recent_prompts = [text] + [p for p in self.recent_prompts if p.lower() != text.lower()]
            self.recent_prompts = self.recent_prompts[:MAX_RECENT_PROMPTS]


def _shown(name: str, value) -> str:
    return "(hidden)" if name in SECRETS else repr(value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _coerce(name: str, raw, default):
    """Turn a stored value (QSettings gives strings on some platforms) back into the field's type."""
    if isinstance(default, bool):
        return raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, list):
        if isinstance(raw, str):
            return json.loads(raw) if raw.strip() else []
        return list(raw)
    if isinstance(default, dict):
        if isinstance(raw, str):
            return json.loads(raw) if raw.strip() else {}
        return dict(raw)
    return str(raw)


def settings_from_dict(values: dict) -> RefSAM3DSettings:
    result = RefSAM3DSettings()
    for f in fields(RefSAM3DSettings):
        if f.name not in values or values[f.name] is None:
            continue
        try:
            setattr(result, f.name, _coerce(f.name, values[f.name], getattr(result, f.name)))
        except (TypeError, ValueError) as error:
            log.warning("RefSAM3D setting %s=%s cannot be read (%s); using the default", f.name,
                        _shown(f.name, values[f.name]), error if f.name not in SECRETS else type(error).__name__)
    return result.validated()


class JsonSettingsStore:
    """Settings in a JSON file (outside Slicer, and in tests)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> RefSAM3DSettings:
        if not self.path.is_file():
            return RefSAM3DSettings()
        try:
            values = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            log.warning("cannot read RefSAM3D settings %s (%s); using defaults", self.path, error)
            return RefSAM3DSettings()
        return settings_from_dict(values if isinstance(values, dict) else {})

    def save(self, settings: RefSAM3DSettings) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(self.path.suffix + ".tmp")
        temporary.write_text(json.dumps(asdict(settings.validated()), indent=2), encoding="utf-8")
        temporary.replace(self.path)


class QSettingsStore:
    """Settings in Slicer's application settings under ``RefSAM3D/``; ``qsettings`` is a qt.QSettings."""

    def __init__(self, qsettings, prefix: str = "RefSAM3D/") -> None:
        self.qsettings = qsettings
        self.prefix = prefix

    def load(self) -> RefSAM3DSettings:
        values = {}
        for f in fields(RefSAM3DSettings):
            key = self.prefix + f.name
            if self.qsettings.contains(key):
                values[f.name] = self.qsettings.value(key)
        return settings_from_dict(values)

    def save(self, settings: RefSAM3DSettings) -> None:
        for name, value in asdict(settings.validated()).items():
            self.qsettings.setValue(self.prefix + name, json.dumps(value) if isinstance(value, (list, dict)) else value)


class MemorySettingsStore:
    """Keeps settings for the lifetime of the object only (scripts that must not touch user preferences)."""

    def __init__(self, settings: RefSAM3DSettings | None = None) -> None:
        self._settings = settings or RefSAM3DSettings()

    def load(self) -> RefSAM3DSettings:
        return RefSAM3DSettings(**asdict(self._settings)).validated()

    def save(self, settings: RefSAM3DSettings) -> None:
        self._settings = RefSAM3DSettings(**asdict(settings))

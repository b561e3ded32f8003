"""What a user asks for: text and/or clicks and a box in RAS millimetres, optionally refining a result."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import PromptError

MAX_TEXT_CHARACTERS = 200  # a structure name, not a report


@dataclass
class Prompt:
    text: str | None = None
    points: list[tuple[float, float, float]] = field(default_factory=list)  # RAS mm
    point_labels: list[bool] = field(default_factory=list)  # True = positive (include), False = negative
    box: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None  # two RAS corners
    previous: object | None = None  # a SegmentResult of this session, or a bool mask on the volume grid
    name: str | None = None  # display name override

    def __post_init__(self) -> None:
        if self.text is not None:
            raw = str(self.text)
            if any(not ch.isprintable() and not ch.isspace() for ch in raw):
                raise PromptError(f"text prompt {raw[:40]!r} holds control characters; type plain words, e.g. 'liver'")
            self.text = " ".join(raw.split())
            if not self.text:
                raise PromptError("empty text prompt; type what to segment, e.g. 'liver'")
            if len(self.text) > MAX_TEXT_CHARACTERS:
                raise PromptError(f"text prompt is {len(self.text)} characters long; name one structure in at most "
                                  f"{MAX_TEXT_CHARACTERS} characters, e.g. 'left kidney'")
        if self.points and not self.point_labels:
            self.point_labels = [True] * len(self.points)
        if len(self.points) != len(self.point_labels):
            raise PromptError(f"{len(self.points)} points but {len(self.point_labels)} point labels")
        if self.text is None and not self.points and self.box is None:
            raise PromptError("a prompt needs text, a point or a box")

    @property
    def has_clicks(self) -> bool:
        return bool(self.points) or self.box is not None

    def points_array(self) -> np.ndarray:
        return np.asarray(self.points, dtype=np.float64).reshape(-1, 3)

    def box_corners(self) -> np.ndarray | None:
        return None if self.box is None else np.asarray(self.box, dtype=np.float64).reshape(2, 3)

    def describe(self) -> str:
        parts = []
        if self.text:
            parts.append(repr(self.text))
        if self.points:
            pos = sum(self.point_labels)
            parts.append(f"{pos} positive / {len(self.points) - pos} negative clicks")
        if self.box is not None:
            parts.append("a box")
        return " + ".join(parts)

"""From a model-grid probability map to what the user gets: a named, coloured, coded mask on the
original voxel grid, with its volume, presence and (optionally) probability."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage

from ..io.segments import SegmentOutput
from .mask_bounds import mask_box
from .postprocess import PostProcessing
from .profiling import stage
from .prompts import Prompt


@dataclass
class SegmentResult(SegmentOutput):
    session_token: int | None = None  # which session made it (a later prompt may refine it there)
    refinement_id: int | None = None  # the session's handle to the model map behind it (copies keep it)
    timings: dict[str, float] = field(default_factory=dict)
    note: str = ""  # for the user: why a structure was not found, or what prompt would help


def build_result(prompt: Prompt, probability: torch.Tensor, presence: float, threshold: float,
                 post: PostProcessing, space, volume, return_probability: bool,
                 session_token: int) -> tuple[SegmentResult, np.ndarray]:
    """-> the result and the post-processed model-grid probability (the session keeps it for refinement)."""
    d, h, w = space.model_shape
    found = presence >= threshold if (prompt.text and not prompt.has_clicks) else True
    with stage("post-process"):
        prob = probability[:d, :h, :w].float()
        model_voxel_ml = float(np.prod(space.spacing_mm)) / 1000.0
        prob_np = post.apply(prob.cpu().numpy(), model_voxel_ml) if found else np.zeros_like(prob.cpu().numpy())
        hits = np.argwhere(prob_np >= post.threshold * 0.5) if found else np.zeros((0, 3))
    mask = np.zeros(volume.geometry.shape, dtype=bool)
    full_prob = None
    if len(hits):
        box = tuple(slice(int(lo), int(hi) + 1) for lo, hi in zip(hits.min(0), hits.max(0)))
        with stage("resample back"):
            original = space.to_original(torch.from_numpy(prob_np), box)
        with stage("threshold"):
            mask = original >= post.threshold
        if return_probability:
            full_prob = original
    if found and prompt.text and not mask.any():
        found = False
    if return_probability and full_prob is None:
        full_prob = np.zeros(volume.geometry.shape, dtype=np.float32)
    result = _result(prompt, mask, presence, found, volume, full_prob, session_token)
    return result, prob_np


def build_mask_result(prompt: Prompt, mask: np.ndarray, found: bool, presence: float, post: PostProcessing,
                      volume, return_probability: bool, session_token: int) -> SegmentResult:
    """A result from a mask already on the user's grid (the delineation stage): post-processing applies there."""
    mask = np.asarray(mask, dtype=bool)
    if found and mask.any() and (post.largest_component or post.fill_holes or post.min_size_ml > 0):
        with stage("post-process"):  # on the mask's bounding box: a whole clinical CT would cost seconds
            box = mask_box(mask, margin=1)
            kept = post.apply(mask[box].astype(np.float32), volume.geometry.voxel_volume_ml) >= post.threshold
            kept = _with_clicks_honoured(mask[box], kept, prompt, volume.geometry, box)
            mask = np.zeros(mask.shape, dtype=bool)  # calloc: untouched pages cost nothing (zeros_like writes 78 MB)
            mask[box] = kept
    found = bool(found and mask.any())
    if not found:
        mask = np.zeros(volume.geometry.shape, dtype=bool)
    probability = mask.astype(np.float32) if return_probability else None
    return _result(prompt, mask, presence, found, volume, probability, session_token)


def _with_clicks_honoured(before: np.ndarray, after: np.ndarray, prompt: Prompt, geometry,
                          box: tuple[slice, ...]) -> np.ndarray:
    """Post-processing never undoes a click: the piece of the mask an include click is on stays, however small
    (an include click on a structure the stage would not grow -- the heart under a click in the aortic root --
    left a 9-voxel piece that the minimum size removed, and the click fell outside its result), and an exclude
    click's voxel stays out (hole filling does not put it back)."""
    points = prompt.points_array()
    if not len(points):
        return after
    lo = np.asarray([b.start for b in box])
    cells = np.round(geometry.ras_to_ijk(points)).astype(int) - lo
    inside = np.all((cells >= 0) & (cells < np.asarray(before.shape)), axis=1)
    pieces = None
    for cell, include, within in zip(cells, prompt.point_labels, inside):
        if not within:
            continue
        cell = tuple(cell)
        if not include:
            after[cell] = False
        elif before[cell] and not after[cell]:
            if pieces is None:
                pieces, _ = ndimage.label(before)
            after |= pieces == pieces[cell]
    return after


def _result(prompt: Prompt, mask: np.ndarray, presence: float, found: bool, volume, probability,
            session_token: int) -> SegmentResult:
    """Name, colour and codes from the prompt (text: its concept; clicks only: a generic segment)."""
    from ..vocab.matcher import resolve

    if prompt.text:
        match = resolve(prompt.text)
        name, terminology, color, concept = match.display_name, match.terminology, match.color, (
            match.concept.id if match.concept else None)
    else:
        from ..vocab.concepts import color_for_text, generic_terminology

        name = prompt.name or "Segment"
        terminology, color, concept = generic_terminology(name), color_for_text(name), None
    if prompt.name:
        name = prompt.name
    with stage("threshold"):
        volume_ml = float(mask.sum()) * volume.geometry.voxel_volume_ml
    return SegmentResult(
        name=name, mask=mask, color=color, terminology=terminology, prompt=prompt.text, concept_id=concept,
        presence=float(presence), found=bool(found), volume_ml=volume_ml,
        algorithm_type="SEMIAUTOMATIC" if prompt.has_clicks else "AUTOMATIC", probability=probability,
        session_token=session_token)

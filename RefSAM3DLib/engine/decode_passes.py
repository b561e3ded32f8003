"""The decoder side of a session: prompts decoded over windows and blended into whole-volume maps.

Two passes. The text pass decodes every window for every text prompt and blends them with a Gaussian
weight, each window's mask gated by its own presence score. The click pass decodes the windows
centred on clicks or a box, with the current result as the dense (previous-mask) prompt, and blends
each into that result with a flat-top weight, so a click refines locally instead of restarting.
Full-resolution windows are consumed batch by batch, so memory stays bounded on large volumes.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .profiling import stage
from .progress import report
from .prompts import Prompt
from .sliding_window import Start, flat_top_weight, gaussian_weight, window_slices


@dataclass
class Job:
    prompt: int
    start: Start
    coords: np.ndarray  # (N, 3) window-relative model voxels
    labels: np.ndarray  # (N,)
    mask_input: torch.Tensor | None = None  # the previous-mask prompt at the model's mask-input size


def presence_gate(presence: float, threshold: float, ramp: float = 0.2) -> float:
    """Weight of a window's mask by its presence score: 1 at or above the threshold, 0 well below it.

    A window that does not believe the structure is in view should not add a (hallucinated) mask, but a
    window that does must keep its full probability, so the gate is flat above the threshold.
    """
    if presence >= threshold:
        return 1.0
    return max(0.0, 1.0 - (threshold - presence) / ramp)


class DecodePasses:
    def __init__(self, predictor, cache, geometry, grid_shape: tuple[int, int, int]) -> None:
        self.predictor = predictor
        self.cache = cache  # WindowCache
        self.geometry = geometry  # PromptGeometry
        self.grid_shape = grid_shape
        self.window = tuple(predictor.model.config.window_size)
        self.mask_input_size = tuple(predictor.model.config.mask_input_size)

    # ------------------------------------------------------------------ decoding
    def decode(self, jobs: list[Job], prompts: list[Prompt], consume, progress, cancel, done: int,
               total: int) -> None:
        """Decode every job and hand (job, probability window, presence) to ``consume`` batch by batch."""
        order = sorted(range(len(jobs)), key=lambda i: jobs[i].mask_input is None)
        groups = [list(g) for _, g in itertools.groupby(order, key=lambda i: jobs[i].mask_input is None)]
        for group in groups:
            for batch, (probs, presence) in self.predictor.map_batches(
                    group, "decode", lambda m, b: self._decode_batch(m, [jobs[i] for i in b], prompts),
                    lambda: self.cache.sync(cancel)):
                with stage("blend"):
                    for r, i in enumerate(batch):
                        consume(jobs[i], probs[r], float(presence[r]))
                done += len(batch)
                report(progress, done, total, "decoding prompts")

    def _decode_batch(self, model, bj: list[Job], prompts: list[Prompt]) -> tuple[torch.Tensor, torch.Tensor]:
        with stage("decode"):
            return self._decode_batch_work(model, bj, prompts)

    def _decode_batch_work(self, model, bj: list[Job], prompts: list[Prompt]) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.predictor.device
        stages = [torch.stack([self.cache.stages(j.start)[k] for j in bj]) for k in range(4)]
        images = torch.stack([self.cache.window_image(j.start) for j in bj])[:, None]
        n = max(len(j.labels) for j in bj)
        coords = labels = mask_input = None
        if n:
            coords = torch.zeros(len(bj), n, 3)
            labels = torch.full((len(bj), n), -1, dtype=torch.long)
            for r, j in enumerate(bj):
                coords[r, : len(j.labels)] = torch.from_numpy(j.coords).float()
                labels[r, : len(j.labels)] = torch.from_numpy(j.labels).long()
            coords, labels = coords.to(device), labels.to(device)
        if bj[0].mask_input is not None:
            mask_input = torch.stack([j.mask_input for j in bj]).to(device)
        features, has_text = model.encode_text([prompts[j.prompt].text for j in bj])
        out = model.decode(stages, images, features, has_text, coords, labels, mask_input)
        return torch.sigmoid(out.logits.float())[:, 0], torch.sigmoid(out.presence_logits.float())

    def mask_prompt(self, probability: torch.Tensor, start: Start) -> torch.Tensor | None:
        """A probability map's window as the decoder's previous-mask prompt (None where it is empty)."""
        window = probability[window_slices(start, self.window)]
        if float(window.max()) < 0.05:
            return None
        logits = torch.logit(window.clamp(1e-4, 1 - 1e-4))[None, None]
        return F.adaptive_avg_pool3d(logits, self.mask_input_size)[0]

    # ------------------------------------------------------------------ the two passes
    def text_pass(self, ids, windows, prompts, clicks, boxes, threshold, gating: bool, probability, presence,
                  progress, cancel, done, total) -> None:
        """Every window x every text prompt, Gaussian-blended; presence = the most confident window."""
        device = self.predictor.device
        with stage("blend"):
            weight = gaussian_weight(self.window, device=device)
            norm = torch.zeros(self.grid_shape, device=device)
            for start in windows:
                norm[window_slices(start, self.window)] += weight
            sums = {i: torch.zeros(self.grid_shape, device=device) for i in ids}
        best = {i: 0.0 for i in ids}
        with stage("prompt prep"):
            jobs = [Job(i, start, *self.geometry.in_window(start, clicks[i], boxes[i])) for start in windows
                    for i in ids]

        def accumulate(job: Job, prob: torch.Tensor, pres: float) -> None:
            gate = presence_gate(pres, threshold) if gating else 1.0
            sums[job.prompt][window_slices(job.start, self.window)] += weight * prob.to(device) * gate
            best[job.prompt] = max(best[job.prompt], pres)

        self.decode(jobs, prompts, accumulate, progress, cancel, done, total)
        with stage("blend"):
            for i in ids:
                probability[i] = sums[i] / norm.clamp(min=1e-6)
                presence[i] = best[i]

    def click_pass(self, focus, prompts, clicks, boxes, previous, probability, progress, cancel, done,
                   total) -> None:
        """Windows centred on the clicks / box, decoded with the current result as the dense prompt and
        blended into it with a flat-top weight: the refined window wins everywhere but its rim."""
        device = self.predictor.device
        jobs = []
        with stage("prompt prep"):
            for i, starts in focus.items():
                base = probability.get(i, previous[i])
                for start in starts:
                    c, lab = self.geometry.in_window(start, clicks[i], boxes[i])
                    mask_input = self.mask_prompt(base, start) if base is not None else None
                    jobs.append(Job(i, start, c, lab, mask_input))
        rim = flat_top_weight(self.window, device=device)

        def blend(job: Job, prob: torch.Tensor, _presence: float) -> None:
            base = probability.get(job.prompt, previous[job.prompt])
            base = torch.zeros(self.grid_shape, device=device) if base is None else base.clone()
            region = window_slices(job.start, self.window)
            base[region] = base[region] * (1 - rim.to(base.device)) + prob.to(base.device) * rim.to(base.device)
            probability[job.prompt] = base

        self.decode(jobs, prompts, blend, progress, cancel, done, total)

"""One axial slice, one or more prompts -> masks on the slice's own pixels, with the decoder's IoU estimate.

Prompts arrive in slice pixels (row, col) and leave as masks of the whole slice; the view (whole slice or a
zoomed region) and the intensity window are the caller's choice, the embedding comes from the session's
store. Several prompts on the same slice are decoded as one batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .slice_embeddings import SliceEmbeddings
from .slice_intensity import IntensityWindow
from .slice_view import View


@dataclass
class SliceMask:
    mask: np.ndarray  # bool (rows, cols): the whole slice
    iou: float  # the decoder's own estimate of the mask's IoU with the object (LiteMedSAM's IoU head)
    logits: np.ndarray | None = None  # float32 on ``region`` of the slice, when asked for
    region: tuple[slice, slice] | None = None


@dataclass
class SlicePrompt:
    box: np.ndarray | None = None  # (r0, c0, r1, c1) inclusive slice pixels
    points: np.ndarray | None = None  # (N, 2) (row, col)
    labels: np.ndarray | None = None  # (N,) 1 include, 0 exclude


class SliceSegmenter:
    def __init__(self, net, embeddings: SliceEmbeddings) -> None:
        self.net = net
        self.embeddings = embeddings
        self.shape = embeddings.slices.shape[1:]
        self.decoded = 0

    def segment(self, z: int, view: View, window: IntensityWindow, prompts: list[SlicePrompt],
                multimask: bool = False, keep_logits: bool = False) -> list[list[SliceMask]]:
        """-> per prompt, its masks (one, or three with ``multimask``), best first by the IoU head."""
        embedding = self.embeddings.get(z, view, window)
        with_box = [p for p in prompts if p.box is not None]
        if with_box and len(with_box) != len(prompts):  # the decoder batches prompts of the same form
            return [self.segment(z, view, window, [p], multimask, keep_logits)[0] for p in prompts]
        boxes = points = labels = None
        if with_box:
            boxes = torch.tensor(np.stack([view.box_to_input(p.box) for p in prompts]), dtype=torch.float32)
        counts = [0 if p.points is None else len(p.points) for p in prompts]
        if max(counts):
            if len(set(counts)) > 1:
                return [self.segment(z, view, window, [p], multimask, keep_logits)[0] for p in prompts]
            points = torch.tensor(np.stack([view.to_input(p.points)[:, ::-1] for p in prompts]).copy(),
                                  dtype=torch.float32)
            labels = torch.tensor(np.stack([np.asarray(p.labels) for p in prompts]), dtype=torch.int64)
        device = embedding.device
        out = self.net.decode(embedding.expand(len(prompts), -1, -1, -1),
                              boxes=None if boxes is None else boxes.to(device),
                              points=None if points is None else points.to(device),
                              point_labels=None if labels is None else labels.to(device), multimask=multimask)
        self.decoded += len(prompts)
        results = []
        for b in range(len(prompts)):
            masks = []
            for k in torch.argsort(out.iou[b], descending=True).tolist():
                region, logits = view.logits_to_slice(out.logits[b, k].cpu(), self.shape)
                full = np.zeros(self.shape, dtype=bool)
                full[region] = logits > 0
                masks.append(SliceMask(full, float(out.iou[b, k]), logits if keep_logits else None, region))
            results.append(masks)
        return results

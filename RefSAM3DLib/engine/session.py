"""A Session owns one volume in model space and everything cached for it.

``predictor.open(volume)`` resamples and normalises the volume once (``model_image``); window
embeddings are computed at most once (``window_cache``), so a new prompt or a click on the same
volume costs only the text/prompt path and the decoder (``decode_passes``). Prompts are put on the
model grid and checked by ``prompt_geometry``; results are built by ``results``. Text prompts tile
the whole volume; clicks and boxes work in windows centred on them and blend into the previous
result, so a click refines locally instead of rerunning the volume.

Refinement state stays here: the model-grid probability behind each of the last results this session
returned is kept under an opaque handle (``SegmentResult.refinement_id``; copies of a result keep it), so
``Prompt(previous=result)`` refines from the model's own map while the public result carries no model data.
"""
from __future__ import annotations

import itertools
import time
from collections import OrderedDict

import numpy as np
import torch

from ..anatomy import AnatomyPrior
from ..io.segments import SegmentOutput
from ..io.volume import Volume
from .anatomy_guidance import fuse_with_prior, guide_prompts
from .click_constraints import apply_click_constraints
from .decode_passes import DecodePasses, presence_gate  # noqa: F401  (presence_gate: public re-export)
from .errors import PromptError
from .intensity import detect_modality
from .model_image import outside_air, prepare_model_image
from .model_space import ModelSpace
from .postprocess import PostProcessing
from .profiling import stage
from .progress import check_cancel, report
from .prompt_geometry import PromptGeometry
from .prompts import Prompt
from .results import SegmentResult, build_result
from .sliding_window import Start, grid_windows
from .window_cache import WindowCache

REFINEMENT_MEMORY = 32  # model maps kept per session (a 150 x 128 x 128 map is 5 MB)


class Session:
    def __init__(self, predictor, volume: Volume, modality: str | None = None) -> None:
        self.predictor = predictor
        self.volume = volume
        cfg = predictor.model.config
        self.config = cfg
        self.window = tuple(cfg.window_size)
        self.space = ModelSpace.build(volume.geometry, cfg.spacing_mm,
                                      cfg.window_size[1] if cfg.fit_in_plane else None)
        with stage("modality"):
            self.modality = (modality or volume.modality or detect_modality(volume.array)).upper()
        if self.modality == "MRI":
            self.modality = "MR"
        self.token = id(self)
        image = prepare_model_image(volume.array, self.space, cfg, self.modality, predictor.device)
        self.cache = WindowCache(predictor, image)
        self._outside: np.ndarray | None = None
        self.geometry = PromptGeometry(volume, self.space, cfg, tuple(image.shape), self.modality, self._outside_air)
        self.passes = DecodePasses(predictor, self.cache, self.geometry, tuple(image.shape))
        self._refinement: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._handles = itertools.count(1)
        self.anatomy = AnatomyPrior(volume, self.modality)  # fitted on the first text prompt that needs it

    # ------------------------------------------------------------------ what callers and tests look at
    @property
    def image(self) -> torch.Tensor:
        return self.cache.image

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """The padded model grid the windows live on."""
        return tuple(self.cache.image.shape)  # type: ignore[return-value]

    @property
    def encoded_windows(self) -> int:
        return self.cache.encoded_windows

    @property
    def slices(self):
        """The lite model's per-slice feature store (None for the ViT model)."""
        return self.cache.slices

    def volume_windows(self) -> list[Start]:
        return grid_windows(self.grid_shape, self.window, self.predictor.overlap)

    def encode(self, starts: list[Start], progress=None, cancel=None, done: int = 0, total: int | None = None) -> None:
        self.cache.encode(starts, progress, cancel, done, total)

    def clear_cache(self) -> None:
        self.cache.clear()

    def model_probability(self, result: SegmentResult) -> torch.Tensor | None:
        """The model-grid probability (float16, CPU) behind a recent result of this session, or None."""
        if result.session_token != self.token or result.refinement_id is None:
            return None
        return self._refinement.get(result.refinement_id)

    # ------------------------------------------------------------------ helpers
    def _outside_air(self) -> np.ndarray:
        if self._outside is None:
            with stage("outside-air check"):
                self._outside = outside_air(self.image)
        return self._outside

    def _remember(self, result: SegmentResult, probability: np.ndarray) -> None:
        """Keep the model map of the last ``REFINEMENT_MEMORY`` results (older ones refine from their mask)."""
        result.refinement_id = next(self._handles)
        with stage("keep map"):
            self._refinement[result.refinement_id] = torch.from_numpy(probability).half()
        while len(self._refinement) > REFINEMENT_MEMORY:
            self._refinement.popitem(last=False)

    def _previous_probability(self, previous) -> torch.Tensor | None:
        if previous is None:
            return None
        prob = self.model_probability(previous) if isinstance(previous, SegmentResult) else None
        if prob is not None:
            prob = prob.float()
        else:
            mask = previous.mask if isinstance(previous, SegmentOutput) else np.asarray(previous)
            if tuple(mask.shape) != tuple(self.volume.geometry.shape):
                raise PromptError(f"previous mask shape {tuple(mask.shape)} does not match the volume "
                                  f"{tuple(self.volume.geometry.shape)}")
            prob = self.space.mask_to_model(mask.astype(bool))
        full = torch.zeros(self.grid_shape)
        d, h, w = prob.shape
        full[:d, :h, :w] = prob.cpu()
        return full.to(self.predictor.device)

    # ------------------------------------------------------------------ the main entry point
    def segment(self, prompts: Prompt | list[Prompt], progress=None, cancel=None,
                postprocessing: PostProcessing | None = None, return_probability: bool = False,
                presence_threshold: float | None = None) -> list[SegmentResult]:
        """Segment one or more prompts; prompts given together share encoder and decoder batches."""
        t0 = time.perf_counter()
        asked = [prompts] if isinstance(prompts, Prompt) else list(prompts)
        if not asked:
            raise PromptError("no prompts given")
        prompts, hints = (guide_prompts(asked, self.anatomy, progress, cancel) if self.predictor.anatomy_prior
                          else (asked, [None] * len(asked)))
        not_in_scan = {i for i, h in enumerate(hints) if h is not None and h.state == "outside"}
        post = postprocessing or PostProcessing()
        threshold = self.predictor.presence_threshold if presence_threshold is None else presence_threshold
        clicks = [self.geometry.points(p) for p in prompts]
        boxes = [self.geometry.box(p) for p in prompts]
        with stage("previous map"):
            previous = [self._previous_probability(p.previous) for p in prompts]

        # whole-volume pass for text prompts that do not refine an earlier result by clicks
        global_ids = [i for i, p in enumerate(prompts)
                      if p.text and i not in not_in_scan and not (previous[i] is not None and p.has_clicks)]
        windows = self.volume_windows() if global_ids else []
        focus = {i: self.geometry.focus_windows(clicks[i][0], boxes[i]) for i, p in enumerate(prompts)
                 if p.has_clicks}
        focus_starts = [s for starts in focus.values() for s in starts]
        to_encode = [s for s in dict.fromkeys(windows + focus_starts) if s not in self.cache]
        total = len(to_encode) + len(windows) * len(global_ids) + len(focus_starts)
        self.cache.encode(to_encode, progress, cancel, 0, total)
        done = len(to_encode)
        t_encode = time.perf_counter()

        probability: dict[int, torch.Tensor] = {}
        presence = {i: 1.0 for i in range(len(prompts))}
        for i in not_in_scan:  # the fitted reference puts the structure outside this scan
            probability[i] = torch.zeros(self.grid_shape, device=self.predictor.device)
            presence[i] = 0.0
        if global_ids:
            self.passes.text_pass(global_ids, windows, prompts, clicks, boxes, threshold,
                                  self.predictor.presence_gating, probability, presence, progress, cancel, done, total)
            done += len(windows) * len(global_ids)
        if focus:
            self.passes.click_pass(focus, prompts, clicks, boxes, previous, probability, progress, cancel, done,
                                   total)
        with stage("click constraints"):
            for i, p in enumerate(prompts):
                if len(clicks[i][0]):
                    probability[i] = apply_click_constraints(probability[i], clicks[i][0], clicks[i][1], bool(p.text),
                                                             post.threshold)
            for i, box in enumerate(boxes):
                if box is not None:
                    keep = torch.zeros(self.grid_shape, dtype=torch.bool, device=self.predictor.device)
                    lo = np.floor(box[0] - 1).astype(int).clip(0)
                    hi = np.ceil(box[1] + 2).astype(int)
                    keep[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
                    probability[i] = probability[i] * keep
        with stage("anatomy fusion"):
            for i, hint in enumerate(hints):
                if hint is not None and hint.state == "located":
                    probability[i] = fuse_with_prior(probability[i], previous[i], self.space.spacing_mm)
        check_cancel(cancel)
        t_decode = time.perf_counter()
        results = []
        for i, p in enumerate(asked):
            result, model_prob = build_result(p, probability[i], presence[i], threshold, post, self.space,
                                              self.volume, return_probability, self.token)
            self._remember(result, model_prob)
            results.append(result)
        t_end = time.perf_counter()
        for r in results:
            r.timings = {"encode_s": t_encode - t0, "decode_s": t_decode - t_encode, "output_s": t_end - t_decode,
                         "total_s": t_end - t0}
        report(progress, total, total, "done")
        return results


__all__ = ["Session", "SegmentResult", "presence_gate"]

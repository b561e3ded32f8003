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

from ..io.segments import SegmentOutput
from ..io.volume import Volume
from .click_constraints import apply_click_constraints
from .decode_passes import DecodePasses, presence_gate  # noqa: F401  (presence_gate: public re-export)
from .delineate import DelineationRequest, DelineationStage
from .errors import PromptError
from .host_memory import release_freed_memory
from .intensity import detect_modality
from .locate import LocateStage
from .model_image import outside_air, prepare_model_image
from .model_space import ModelSpace
from .postprocess import PostProcessing
from .profiling import stage
from .progress import check_cancel, report
from .prompt_geometry import PromptGeometry
from .prompts import Prompt
from .results import SegmentResult, build_mask_result, build_result
from .sliding_window import Start, grid_windows
from .stage_inputs import region_prompt
from .window_cache import WindowCache

REFINEMENT_MEMORY = 32  # model maps kept per session (a 150 x 128 x 128 map is 5 MB)

# What a text-only answer of the network's own text path says when it finds nothing: on every case measured
# (lesions, MR organs; model card) that path misses what is there far more often than a click or a box does.
NETWORK_TEXT_NOT_FOUND = ("no reference scan labels this and the network's text path found nothing; if it is "
                          "there, place a click on it or draw a box around it")
NETWORK_AFTER_LOCATE = ("{reason}, and the network's text path found nothing; if it is there, place a click on it or "
                        "draw a box around it")


class Session:
    def __init__(self, predictor, volume: Volume, modality: str | None = None,
                 leave_out_references: tuple[str, ...] | None = None) -> None:
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
        self._cache: WindowCache | None = None  # the network's model-space image and windows: built on first use
        self._outside: np.ndarray | None = None
        self._refinement: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._handles = itertools.count(1)
        leave_out = predictor.leave_out_references if leave_out_references is None else leave_out_references
        self.locate = LocateStage(volume, self.modality, leave_out=tuple(leave_out))
        self._delineation: DelineationStage | None = None

    # ------------------------------------------------------------------ the two image paths, built when needed
    @property
    def cache(self) -> WindowCache:
        """The network's path: the volume resampled into model space, window embeddings (a box or a click that
        the delineation stage answers never needs it)."""
        if self._cache is None:
            cfg = self.config
            image = prepare_model_image(self.volume.array, self.space, cfg, self.modality, self.predictor.device)
            self._cache = WindowCache(self.predictor, image)
            self.geometry = PromptGeometry(self.volume, self.space, cfg, tuple(image.shape), self.modality,
                                           self._outside_air)
            self.passes = DecodePasses(self.predictor, self._cache, self.geometry, tuple(image.shape))
        return self._cache

    @property
    def delineation(self) -> DelineationStage | None:
        """The delineation stage (boxes, clicks): the pretrained 2D decoder on the slices a prompt visits."""
        if self._delineation is None and self.predictor.delineation:
            self._delineation = DelineationStage(self.predictor.slice_sam, self.volume, self.modality,
                                                 self.predictor.device, amp=self.predictor.slice_bf16)
        return self._delineation

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
        """Segment one or more prompts; prompts given together share encoder and decoder batches.

        Boxes and clicks (with or without text) go to the delineation stage when the model has one. Text alone
        goes to the locate stage when the reference CTs know the structure: outside the scan -> "not found",
        located -> the delineation stage draws it from the region; otherwise (a lesion, an MR, a structure no
        reference labels) the network answers, with its presence verdict."""
        try:
            return self._segment(prompts, progress, cancel, postprocessing, return_probability, presence_threshold)
        finally:
            release_freed_memory()  # freed blocks were kept for reuse while the prompt ran (``host_memory``)

    def _segment(self, prompts, progress, cancel, postprocessing, return_probability, presence_threshold):
        asked = [prompts] if isinstance(prompts, Prompt) else list(prompts)
        if not asked:
            raise PromptError("no prompts given")
        post = postprocessing or PostProcessing()
        results: dict[int, SegmentResult] = {}
        network: list[int] = []
        located_reason: dict[int, str] = {}  # why the references could not answer (they know the structure)
        for i, prompt in enumerate(asked):
            if prompt.has_clicks and self.delineation is not None:
                results[i] = self._delineate(prompt, progress, cancel, post, return_probability)
                continue
            region = self._locate(prompt, progress, cancel) if not prompt.has_clicks else None
            if region is None or region.state == "unknown":
                network.append(i)
                if region is not None and region.reason:
                    located_reason[i] = region.reason
            elif region.state == "outside":
                results[i] = self._not_found(prompt, post, return_probability, region.reason)
            elif self.delineation is not None:
                results[i] = self._delineate_region(prompt, region, progress, cancel, post, return_probability)
            else:
                results[i] = self._network_in_region(prompt, region, progress, cancel, post, return_probability)
        if network:
            for i, r in zip(network, self._segment_network([asked[i] for i in network], progress, cancel, post,
                                                           return_probability, presence_threshold)):
                if not r.found and not asked[i].has_clicks:
                    r.note = (NETWORK_AFTER_LOCATE.format(reason=located_reason[i]) if i in located_reason
                              else NETWORK_TEXT_NOT_FOUND)
                results[i] = r
        return [results[i] for i in range(len(asked))]

    # ------------------------------------------------------------------ locate -> delineate
    def _locate(self, prompt: Prompt, progress, cancel):
        """Where a text prompt points, when the references can say (None: not a question for them)."""
        if not (prompt.text and self.predictor.anatomy_prior and self.modality == "CT"):
            return None
        if not self.locate.knows(prompt.text):
            return None
        if self.locate.needs_fitting(prompt.text):
            report(progress, 0, 1, "fitting the reference CTs")
        with stage("locate"):
            return self.locate.locate(prompt.text, progress, cancel)

    def _not_found(self, prompt: Prompt, post: PostProcessing, return_probability: bool,
                   reason: str) -> SegmentResult:
        result = build_mask_result(prompt, np.zeros(self.volume.geometry.shape, bool), False, 0.0, post,
                                   self.volume, return_probability, self.token)
        result.note = reason
        return result

    def _delineate_region(self, prompt: Prompt, region, progress, cancel, post: PostProcessing,
                          return_probability: bool) -> SegmentResult:
        stage_ = self.delineation
        outcome, mask, timings = self._run_delineation(
            lambda: stage_.run_region(region_prompt(region, stage_.slices), cancel), progress, cancel)
        result = build_mask_result(prompt, mask, outcome.found, region.confidence if outcome.found else 0.0, post,
                                   self.volume, return_probability, self.token)
        if not result.found:
            result.note = outcome.reason
        result.timings = timings
        report(progress, 1, 1, "done")
        return result

    def _run_delineation(self, run, progress, cancel):
        """``run()`` on the delineation stage, its slice encodings reported and cancellable -> (outcome, the mask
        on the volume grid, timings)."""
        t0 = time.perf_counter()
        stage_ = self.delineation
        report(progress, 0, 1, "delineating")
        with stage("delineate"):
            encode_progress = _EncodeProgress(progress, cancel)
            stage_.embeddings.on_encode = encode_progress
            try:
                outcome = run()
            finally:
                stage_.embeddings.on_encode = None
        check_cancel(cancel)
        t_decode = time.perf_counter()
        with stage("back to the volume grid"):
            mask = stage_.slices.mask_to_volume(outcome.mask)
        t_end = time.perf_counter()
        return outcome, mask, {"encode_s": 0.0, "decode_s": t_decode - t0, "output_s": t_end - t_decode,
                               "total_s": t_end - t0, "slices_encoded": float(encode_progress.count)}

    def _network_in_region(self, prompt: Prompt, region, progress, cancel, post: PostProcessing,
                           return_probability: bool) -> SegmentResult:
        """Without a delineation stage: the network decodes the located region's box (no text: its text path does
        not generalise), and the result keeps the user's prompt for its name and codes."""
        corners = self.volume.geometry.ijk_to_ras(np.stack([region.lo_ijk, region.hi_ijk]))
        guided = Prompt(box=(tuple(corners[0]), tuple(corners[1])), name=prompt.name)
        decoded, = self._segment_network([guided], progress, cancel, post, False, None)
        return build_mask_result(prompt, decoded.mask, decoded.found, region.confidence, post, self.volume,
                                 return_probability, self.token)

    def _delineate(self, prompt: Prompt, progress, cancel, post: PostProcessing,
                   return_probability: bool) -> SegmentResult:
        stage_ = self.delineation
        points = prompt.points_array()
        check_points_inside(self.volume, points)
        zrc = stage_.slices.from_ras(points) if len(points) else np.zeros((0, 3))
        labels = np.asarray([1 if p else 0 for p in prompt.point_labels], dtype=int)
        stage_.check_include_clicks(zrc, labels)
        box = None
        if prompt.box is not None:
            corners = prompt.box_corners()
            if not self.volume.geometry.contains_ras(corners.mean(0, keepdims=True)).all():
                raise PromptError("the box centre is outside the volume; draw the box on the image")
            box = tuple(stage_.slices.from_ras(corners))
        previous = self._previous_mask(prompt.previous)
        presence, reason = 1.0, ""
        region = self._locate(prompt, progress, cancel) if prompt.text else None
        if region is not None and region.state == "outside":  # the text's verdict; the clicks draw the shape
            presence, reason = 0.0, region.reason
        outcome, mask, timings = self._run_delineation(
            lambda: stage_.run(DelineationRequest(box, zrc, labels, previous), cancel), progress, cancel)
        found = outcome.found and presence > 0
        result = build_mask_result(prompt, mask, found, presence if found else 0.0, post, self.volume,
                                   return_probability, self.token)
        if not result.found:
            result.note = reason or outcome.reason
        result.timings = timings
        report(progress, 1, 1, "done")
        return result

    def _previous_mask(self, previous) -> np.ndarray | None:
        """The previous result as a (z, row, col) mask for the delineation stage."""
        if previous is None:
            return None
        mask = previous.mask if isinstance(previous, SegmentOutput) else np.asarray(previous)
        if tuple(mask.shape) != tuple(self.volume.geometry.shape):
            raise PromptError(f"previous mask shape {tuple(mask.shape)} does not match the volume "
                              f"{tuple(self.volume.geometry.shape)}")
        return self.delineation.slices.mask_from_volume(mask.astype(bool))

    def _segment_network(self, asked: list[Prompt], progress, cancel, post: PostProcessing,
                         return_probability: bool, presence_threshold: float | None) -> list[SegmentResult]:
        """Text prompts (and, without a delineation stage, boxes and clicks) through the RefSAM3D network."""
        t0 = time.perf_counter()
        self.cache  # noqa: B018  (builds the model-space image on first use)
        prompts = asked
        threshold = self.predictor.presence_threshold if presence_threshold is None else presence_threshold
        clicks = [self.geometry.points(p) for p in prompts]
        boxes = [self.geometry.box(p) for p in prompts]
        with stage("previous map"):
            previous = [self._previous_probability(p.previous) for p in prompts]

        # whole-volume pass for text prompts that do not refine an earlier result by clicks
        global_ids = [i for i, p in enumerate(prompts)
                      if p.text and not (previous[i] is not None and p.has_clicks)]
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


class _EncodeProgress:
    """Counts slices the delineation stage encodes, reports them, and honours Cancel between them."""

    def __init__(self, progress, cancel) -> None:
        self.progress, self.cancel, self.count = progress, cancel, 0

    def __call__(self, n: int) -> None:
        self.count += n
        report(self.progress, self.count, self.count + 1, f"encoding slices ({self.count})")
        check_cancel(self.cancel)


def check_points_inside(volume: Volume, points: np.ndarray) -> None:
    if len(points):
        inside = volume.geometry.contains_ras(points)
        if not inside.all():
            bad = points[~inside][0]
            raise PromptError(f"point ({bad[0]:.1f}, {bad[1]:.1f}, {bad[2]:.1f}) mm RAS is outside the volume "
                              f"({volume.geometry.describe()}); click inside the image")

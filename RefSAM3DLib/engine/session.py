"""A Session owns one volume in model space and its cached window embeddings.

``predictor.open(volume)`` resamples and normalises the volume once; the image encoder runs at most
once per window and its four stage maps are kept, so a new prompt or a click on the same volume
costs only the text/prompt path and the decoder. Text prompts tile the whole volume; clicks and
boxes work in windows centred on them and blend into the previous result, so a click refines
locally instead of rerunning the volume.
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..io.segments import SegmentOutput
from ..io.volume import Volume
from .click_constraints import apply_click_constraints
from .errors import Cancelled, PromptError
from .intensity import detect_modality, normalize
from .model_space import ModelSpace
from .postprocess import PostProcessing
from .prompts import Prompt
from .slice_cache import SliceFeatureStore
from .sliding_window import Start, contains, flat_top_weight, focus_window, gaussian_weight, grid_windows, window_slices


@dataclass
class SegmentResult(SegmentOutput):
    model_probability: torch.Tensor | None = None  # (D, H, W) float16 on the CPU: the next click's context
    session_token: int | None = None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class _Job:
    prompt: int
    start: Start
    coords: np.ndarray  # (N, 3) window-relative model voxels
    labels: np.ndarray  # (N,)
    mask_input: torch.Tensor | None = None  # (1, 4d, 4h, 4w) low-resolution logits


class Session:
    def __init__(self, predictor, volume: Volume, modality: str | None = None) -> None:
        self.predictor = predictor
        self.volume = volume
        cfg = predictor.model.config
        self.config = cfg
        self.window = tuple(cfg.window_size)
        self.space = ModelSpace.build(volume.geometry, cfg.spacing_mm,
                                      cfg.window_size[1] if cfg.fit_in_plane else None)
        self.modality = (modality or volume.modality or detect_modality(volume.array)).upper()
        if self.modality == "MRI":
            self.modality = "MR"
        self.token = id(self)
        self.encoded_windows = 0  # how many windows went through the image encoder (tests count this)
        self._cache: dict[Start, list[torch.Tensor]] = {}
        self.image = self._prepare_image()
        self.slices = SliceFeatureStore(predictor.model, self.image) if cfg.is_lite else None

    # ------------------------------------------------------------------ model-space image
    def _prepare_image(self) -> torch.Tensor:
        array = np.asarray(self.volume.array)
        if array.dtype not in (np.float32, np.float64, np.int16, np.int32, np.int64, np.uint8, np.int8):
            array = array.astype(np.float32)
        raw = torch.from_numpy(np.ascontiguousarray(array)).to(self.predictor.device).float()
        image = normalize(self.space.to_model(raw), self.modality, self.config.ct_window_hu,
                          self.config.mr_percentiles)
        pads = [max(0, w - s) for s, w in zip(image.shape, self.window)]
        if any(pads):
            image = F.pad(image, (0, pads[2], 0, pads[1], 0, pads[0]), value=-1.0)
        return image.contiguous()

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """The padded model grid the windows live on."""
        return tuple(self.image.shape)  # type: ignore[return-value]

    def volume_windows(self) -> list[Start]:
        return grid_windows(self.grid_shape, self.window, self.predictor.overlap)

    def _window_image(self, start: Start) -> torch.Tensor:
        return self.image[window_slices(start, self.window)]

    # ------------------------------------------------------------------ encoder (cached)
    def encode(self, starts: list[Start], progress=None, cancel=None, done: int = 0, total: int | None = None) -> None:
        """Run the image encoder on the windows that are not cached yet (lite: slices first, each at most once)."""
        missing = [s for s in dict.fromkeys(starts) if s not in self._cache]
        total = total or len(missing)
        if self.slices is not None and missing:
            self._encode_slices(missing, progress, cancel)

        def run(model, batch):
            if self.slices is not None:
                maps = [self.slices.window(s[0], s[0] + self.window[0]) for s in batch]
                return model.lift_slices([torch.cat([m[k] for m in maps]) for k in range(4)])
            x = torch.stack([self._window_image(s) for s in batch])[:, None]
            return model.encode_image(x)

        for batch, stages in self.predictor.map_batches(missing, "encode", run, lambda: self._sync(cancel)):
            for i, s in enumerate(batch):
                self._cache[s] = [st[i].detach() for st in stages]
            self.encoded_windows += len(batch)
            done += len(batch)
            _report(progress, done, total, "encoding image windows")

    def _encode_slices(self, starts: list[Start], progress, cancel) -> None:
        """Lite model: the frozen 2D encoder on every slice the windows need that is not stored yet."""
        needed = [z for s in starts for z in range(s[0], s[0] + self.window[0])]
        todo = len([z for z in dict.fromkeys(needed) if not self.slices.done[z]])
        count = [0]

        def on_batch(n: int) -> None:
            count[0] += n
            _report(progress, count[0], todo, "encoding slices")
            self._sync(cancel)

        self._sync(cancel)
        with torch.no_grad(), torch.autocast(self.predictor.device.type, dtype=torch.bfloat16,
                                             enabled=self.predictor.amp):
            self.slices.ensure(needed, on_batch)

    def _sync(self, cancel) -> None:
        """Between batches: honour cancel, and follow the model if it fell back to the CPU."""
        _check(cancel)
        device = self.predictor.device
        if self.image.device != device:
            self.image = self.image.to(device)
            self._cache = {k: [t.to(device) for t in v] for k, v in self._cache.items()}
            if self.slices is not None:
                self.slices.to(device)

    def clear_cache(self) -> None:
        self._cache.clear()
        if self.slices is not None:
            self.slices = SliceFeatureStore(self.predictor.model, self.image)

    # ------------------------------------------------------------------ decoder
    def _decode(self, jobs: list[_Job], prompts: list[Prompt], consume, progress, cancel, done: int,
                total: int) -> None:
        """Decode every job (window x prompt) and hand each (job, probability window, presence) to ``consume``
        as soon as its batch is done, so only one batch of full-resolution windows is ever held."""
        order = sorted(range(len(jobs)), key=lambda i: jobs[i].mask_input is None)
        groups = [list(g) for _, g in itertools.groupby(order, key=lambda i: jobs[i].mask_input is None)]
        for group in groups:
            for batch, (probs, presence) in self.predictor.map_batches(
                    group, "decode", lambda m, b: self._decode_batch(m, [jobs[i] for i in b], prompts),
                    lambda: self._sync(cancel)):
                for r, i in enumerate(batch):
                    consume(jobs[i], probs[r], float(presence[r]))
                done += len(batch)
                _report(progress, done, total, "decoding prompts")

    def _decode_batch(self, model, bj: list[_Job], prompts: list[Prompt]) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.predictor.device
        stages = [torch.stack([self._cache[j.start][k] for j in bj]) for k in range(4)]
        images = torch.stack([self._window_image(j.start) for j in bj])[:, None]
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

    # ------------------------------------------------------------------ prompts -> model grid
    def _model_points(self, prompt: Prompt) -> tuple[np.ndarray, np.ndarray]:
        pts = prompt.points_array()
        if len(pts):
            inside = self.volume.geometry.contains_ras(pts)
            if not inside.all():
                bad = pts[~inside][0]
                raise PromptError(f"point ({bad[0]:.1f}, {bad[1]:.1f}, {bad[2]:.1f}) mm RAS is outside the volume "
                                  f"({self.volume.geometry.describe()}); click inside the image")
        coords = self.space.ras_to_model(pts) if len(pts) else np.zeros((0, 3))
        labels = np.asarray([1 if p else 0 for p in prompt.point_labels], dtype=np.int64)
        if self.modality == "CT" and len(pts):
            outside = self._outside_air()
            cell = np.clip(np.round(coords).astype(int), 0, np.asarray(outside.shape) - 1)
            air = (labels == 1) & outside[tuple(cell.T)]
            if air.any():
                bad = pts[air][0]
                raise PromptError(f"the include click at ({bad[0]:.1f}, {bad[1]:.1f}, {bad[2]:.1f}) mm RAS is in the air "
                                  f"outside the body; click inside the structure you want")
        return coords, labels

    def _outside_air(self) -> np.ndarray:
        """CT: air connected to the edge of the scan (outside the body; lungs and bowel gas are enclosed)."""
        if getattr(self, "_outside", None) is None:
            from scipy import ndimage

            air = (self.image <= -0.999).cpu().numpy()  # below the CT window's lower bound (about -160 HU)
            air = ndimage.binary_opening(air, iterations=1)
            components, _ = ndimage.label(air)
            # in-plane edges only: lungs may reach the first or last slice of a scan, never the side of it
            edge = np.unique(np.concatenate([components[:, [0, -1]].ravel(), components[:, :, [0, -1]].ravel()]))
            self._outside = np.isin(components, edge[edge > 0])
        return self._outside

    def _model_box(self, prompt: Prompt) -> np.ndarray | None:
        corners = prompt.box_corners()
        if corners is None:
            return None
        if not self.volume.geometry.contains_ras(corners.mean(0, keepdims=True)).all():
            raise PromptError("the box centre is outside the volume; draw the box on the image")
        model = self.space.ras_to_model(corners)
        lo, hi = model.min(0), model.max(0)
        valid = np.asarray(self.space.model_shape) - 1
        return np.stack([np.clip(lo, 0, valid), np.clip(hi, 0, valid)])

    def _previous_probability(self, previous) -> torch.Tensor | None:
        if previous is None:
            return None
        if isinstance(previous, SegmentResult) and previous.session_token == self.token \
                and previous.model_probability is not None:
            prob = previous.model_probability.float()
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

    def _mask_prompt(self, probability: torch.Tensor, start: Start) -> torch.Tensor | None:
        window = probability[window_slices(start, self.window)]
        if float(window.max()) < 0.05:
            return None
        logits = torch.logit(window.clamp(1e-4, 1 - 1e-4))[None, None]
        return F.adaptive_avg_pool3d(logits, self.config.mask_input_size)[0]

    # ------------------------------------------------------------------ the main entry point
    def segment(self, prompts: Prompt | list[Prompt], progress=None, cancel=None,
                postprocessing: PostProcessing | None = None, return_probability: bool = False,
                presence_threshold: float | None = None) -> list[SegmentResult]:
        """Segment one or more prompts; prompts given together share encoder and decoder batches."""
        t0 = time.perf_counter()
        prompts = [prompts] if isinstance(prompts, Prompt) else list(prompts)
        if not prompts:
            raise PromptError("no prompts given")
        post = postprocessing or PostProcessing()
        threshold = self.predictor.presence_threshold if presence_threshold is None else presence_threshold
        clicks = [self._model_points(p) for p in prompts]
        boxes = [self._model_box(p) for p in prompts]
        previous = [self._previous_probability(p.previous) for p in prompts]

        # 1. whole-volume pass for text prompts that do not refine an earlier result by clicks
        global_ids = [i for i, p in enumerate(prompts) if p.text and not (previous[i] is not None and p.has_clicks)]
        windows = self.volume_windows() if global_ids else []
        focus = {i: self._focus_windows(clicks[i][0], boxes[i]) for i, p in enumerate(prompts) if p.has_clicks}
        focus_starts = [s for starts in focus.values() for s in starts]
        to_encode = [s for s in dict.fromkeys(windows + focus_starts) if s not in self._cache]
        total = len(to_encode) + len(windows) * len(global_ids) + len(focus_starts)
        self.encode(to_encode, progress, cancel, 0, total)
        done = len(to_encode)
        t_encode = time.perf_counter()

        probability: dict[int, torch.Tensor] = {}
        presence = {i: 1.0 for i in range(len(prompts))}
        if global_ids:
            self._text_pass(global_ids, windows, prompts, clicks, boxes, threshold, probability, presence,
                            progress, cancel, done, total)
            done += len(windows) * len(global_ids)
        if focus:
            self._click_pass(focus, prompts, clicks, boxes, previous, probability, progress, cancel, done, total)
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
        _check(cancel)
        t_decode = time.perf_counter()
        results = [self._finish(i, p, probability[i], presence[i], threshold, post, return_probability)
                   for i, p in enumerate(prompts)]
        t_end = time.perf_counter()
        for r in results:
            r.timings = {"encode_s": t_encode - t0, "decode_s": t_decode - t_encode, "output_s": t_end - t_decode,
                         "total_s": t_end - t0}
        _report(progress, total, total, "done")
        return results

    def _text_pass(self, ids, windows, prompts, clicks, boxes, threshold, probability, presence, progress,
                   cancel, done, total) -> None:
        """Every window x every text prompt, blended with a Gaussian weight; presence = the most confident window.

        A window's mask counts fully when its presence score clears the threshold and fades out below it.
        """
        device = self.predictor.device
        weight = gaussian_weight(self.window, device=device)
        norm = torch.zeros(self.grid_shape, device=device)
        for start in windows:
            norm[window_slices(start, self.window)] += weight
        sums = {i: torch.zeros(self.grid_shape, device=device) for i in ids}
        best = {i: 0.0 for i in ids}
        jobs = [_Job(i, start, *self._clicks_in(start, clicks[i], boxes[i])) for start in windows for i in ids]

        def accumulate(job: _Job, prob: torch.Tensor, pres: float) -> None:
            gate = presence_gate(pres, threshold) if self.predictor.presence_gating else 1.0
            sums[job.prompt][window_slices(job.start, self.window)] += weight * prob.to(device) * gate
            best[job.prompt] = max(best[job.prompt], pres)

        self._decode(jobs, prompts, accumulate, progress, cancel, done, total)
        for i in ids:
            probability[i] = sums[i] / norm.clamp(min=1e-6)
            presence[i] = best[i]

    def _click_pass(self, focus, prompts, clicks, boxes, previous, probability, progress, cancel, done,
                    total) -> None:
        """Windows centred on the clicks / box: decoded with the current result as a dense prompt and blended
        into it with a flat-top weight, so the refined window wins everywhere but its rim."""
        device = self.predictor.device
        jobs = []
        for i, starts in focus.items():
            base = probability.get(i, previous[i])
            for start in starts:
                c, lab = self._clicks_in(start, clicks[i], boxes[i])
                mask_input = self._mask_prompt(base, start) if base is not None else None
                jobs.append(_Job(i, start, c, lab, mask_input))
        rim = flat_top_weight(self.window, device=device)

        def blend(job: _Job, prob: torch.Tensor, _presence: float) -> None:
            base = probability.get(job.prompt, previous[job.prompt])
            base = torch.zeros(self.grid_shape, device=device) if base is None else base.clone()
            region = window_slices(job.start, self.window)
            base[region] = base[region] * (1 - rim.to(base.device)) + prob.to(base.device) * rim.to(base.device)
            probability[job.prompt] = base

        self._decode(jobs, prompts, blend, progress, cancel, done, total)

    # ------------------------------------------------------------------ helpers
    def _focus_windows(self, coords: np.ndarray, box: np.ndarray | None) -> list[Start]:
        snap = max(1, self.config.patch_size * 2)
        centres = []
        if box is not None:
            size = box[1] - box[0] + 1
            if np.all(size <= np.asarray(self.window)):
                centres.append((box[0] + box[1]) / 2)
            else:
                sub = grid_windows(tuple(int(np.ceil(s)) for s in size), self.window, 0.25)
                centres += [box[0] + np.asarray(s) + np.asarray(self.window) / 2 for s in sub]
        starts: list[Start] = [focus_window(c, self.grid_shape, self.window, snap) for c in centres]
        remaining = list(coords)
        while remaining:
            start = focus_window(remaining[0], self.grid_shape, self.window, snap)
            starts.append(start)
            inside = contains(start, self.window, np.asarray(remaining))
            remaining = [c for c, keep in zip(remaining, inside) if not keep]
        return list(dict.fromkeys(starts))

    def _clicks_in(self, start: Start, clicks: tuple[np.ndarray, np.ndarray],
                   box: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        coords, labels = clicks
        inside = contains(start, self.window, coords) if len(coords) else np.zeros(0, dtype=bool)
        c = coords[inside] - np.asarray(start)
        lab = labels[inside]
        if box is not None:
            lo = np.asarray(start)
            hi = lo + np.asarray(self.window) - 1
            if np.all(box[1] >= lo) and np.all(box[0] <= hi):
                corners = np.stack([np.maximum(box[0], lo), np.minimum(box[1], hi)]) - lo
                c = np.concatenate([c, corners])
                lab = np.concatenate([lab, [2, 3]])
        return c.reshape(-1, 3), lab.astype(np.int64)

    def _finish(self, index: int, prompt: Prompt, probability: torch.Tensor, presence: float, threshold: float,
                post: PostProcessing, return_probability: bool) -> SegmentResult:
        from ..vocab.matcher import resolve

        d, h, w = self.space.model_shape
        prob = probability[:d, :h, :w].float()
        found = presence >= threshold if (prompt.text and not prompt.has_clicks) else True
        model_voxel_ml = float(np.prod(self.config.spacing_mm)) / 1000.0
        prob_np = post.apply(prob.cpu().numpy(), model_voxel_ml) if found else np.zeros_like(prob.cpu().numpy())
        mask = np.zeros(self.volume.geometry.shape, dtype=bool)
        full_prob = None
        hits = np.argwhere(prob_np >= post.threshold * 0.5) if found else np.zeros((0, 3))
        if len(hits):
            box = tuple(slice(int(lo), int(hi) + 1) for lo, hi in zip(hits.min(0), hits.max(0)))
            original = self.space.to_original(torch.from_numpy(prob_np), box)
            mask = original >= post.threshold
            if return_probability:
                full_prob = original
        if found and prompt.text and not mask.any():
            found = False
        if return_probability and full_prob is None:
            full_prob = np.zeros(self.volume.geometry.shape, dtype=np.float32)
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
        return SegmentResult(
            name=name, mask=mask, color=color, terminology=terminology, prompt=prompt.text, concept_id=concept,
            presence=float(presence), found=bool(found),
            volume_ml=float(mask.sum()) * self.volume.geometry.voxel_volume_ml,
            algorithm_type="SEMIAUTOMATIC" if prompt.has_clicks else "AUTOMATIC",
            probability=full_prob, model_probability=torch.from_numpy(prob_np).half(), session_token=self.token)


def presence_gate(presence: float, threshold: float, ramp: float = 0.2) -> float:
    """Weight of a window's mask by its presence score: 1 at or above the threshold, 0 well below it.

    A window that does not believe the structure is in view should not add a (hallucinated) mask, but a
    window that does must keep its full probability, so the gate is flat above the threshold.
    """
    if presence >= threshold:
        return 1.0
    return max(0.0, 1.0 - (threshold - presence) / ramp)


def _check(cancel) -> None:
    if cancel is None:
        return
    flag = cancel.is_set() if hasattr(cancel, "is_set") else cancel()
    if flag:
        raise Cancelled("cancelled by the user; nothing was changed")


def _report(progress, done: int, total: int, message: str) -> None:
    if progress is not None:
        progress(min(1.0, done / max(total, 1)), message)

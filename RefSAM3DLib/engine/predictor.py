"""RefSAM3DPredictor: a model on a device, ready to open volumes (SAM's predictor, for 3D volumes).

    predictor = RefSAM3DPredictor.from_pretrained()  # the bundled default model
    session = predictor.open(volume)                      # cached window embeddings
    liver, = session.segment(Prompt(text="liver"))
    refined, = session.segment(Prompt(points=[(x, y, z)], previous=liver))

It owns the device policy: bf16 autocast on a GPU, fp32 on the CPU, window batches sized to the
device, and on CUDA out-of-memory a smaller batch and finally the CPU -- never a crash.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch

from ..io.checks import check_volume
from ..io.volume import Volume
from ..modeling.checkpoint import load_refsam3d, read_checkpoint
from ..modeling.refsam3d import RefSAM3D
from ..modeling.slice_sam_weights import load_slice_sam
from .host_memory import keep_freed_memory
from .session import Session

log = logging.getLogger(__name__)


def pick_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {str(device)!r} was requested but no CUDA GPU is available; choose cpu or auto")
    return device


def native_bf16(device: torch.device) -> bool:
    """Whether bfloat16 matrix work runs natively on ``device`` (CUDA; a CPU with AVX-512 BF16 or AMX): there
    the slice encoder runs in bfloat16 -- twice as fast on this project's 2-core CPU, at the same Dice
    (benchmarks/RESULTS.md) -- and elsewhere in float32, where emulated bfloat16 would only be slower."""
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


class RefSAM3DPredictor:
    def __init__(self, model: RefSAM3D, device: str | torch.device = "auto", overlap: float | None = None,
                 batch_size: int | None = None, presence_threshold: float = 0.5, presence_gating: bool = True,
                 metadata: dict | None = None, anatomy_prior: bool = True, slice_stride: int | None = None,
                 slice_sam=None, delineation: bool = True, leave_out_references: tuple[str, ...] = (),
                 slice_bf16: bool | None = None) -> None:
        self.device = pick_device(device)
        if self.device.type == "cpu":
            keep_freed_memory()  # a fifth of a box's time went to page faults of the encoder's freed tensors
        self.model = model.eval().to(self.device)
        # the delineation stage's network (pretrained LiteMedSAM; its TinyViT is the lite model's own): boxes and
        # clicks go to it -- on new patients it beats the trained 3D decoder by a wide margin (model card)
        self.slice_sam = slice_sam.to(self.device) if slice_sam is not None else None
        self.delineation = bool(delineation) and self.slice_sam is not None
        # the slice encoder (about a second per slice on two CPU cores) in bfloat16 where the hardware has it
        self.slice_bf16 = native_bf16(self.device) if slice_bf16 is None else bool(slice_bf16)
        # lite windows cover whole slices, so overlap only acts in depth, where a quarter suffices
        self.overlap = overlap if overlap is not None else (0.25 if model.config.is_lite else 0.5)
        self.presence_threshold = presence_threshold
        self.presence_gating = presence_gating
        # text prompts for structures the shipped reference CTs label are located by registering them (CT only)
        self.anatomy_prior = anatomy_prior
        self.leave_out_references = tuple(leave_out_references)  # evaluation on a reference's own scan
        # lite: encode every other slice and give the slices between the mean of their neighbours' features; on the
        # held-out CT Dice moved by at most 0.01 (text, 1 click, box; 7 structures) for half the encoding time
        self.slice_stride = (2 if model.config.is_lite else 1) if slice_stride is None else int(slice_stride)
        if self.slice_stride not in (1, 2):
            raise ValueError(f"slice_stride must be 1 or 2, got {slice_stride}")
        self.metadata = dict(metadata or {})
        self.batch_size = {"encode": batch_size or self._default_batch(), "decode": batch_size or self._default_batch()}
        self.fell_back_to_cpu = False

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path | None = None, device: str = "auto",
                        **kwargs) -> "RefSAM3DPredictor":
        from ..zoo.catalogue import DEFAULT_MODEL
        from ..zoo.resolve import resolve_model

        name_or_path = DEFAULT_MODEL if name_or_path is None else name_or_path

        path = resolve_model(str(name_or_path))
        model, metadata = load_refsam3d(path)
        slice_sam = load_slice_sam(read_checkpoint(path), model, str(path))
        return cls(model, device=device, metadata=metadata, slice_sam=slice_sam, **kwargs)

    def _default_batch(self) -> int:
        if self.device.type != "cuda":
            return 2
        free, _ = torch.cuda.mem_get_info(self.device)
        voxels = float(torch.tensor(self.model.config.window_size).prod())
        per_window = voxels * 4 * 64  # bytes: decoder maps dominate (~32 bf16 channels, x2 for temporaries)
        return int(max(1, min(16, free * 0.5 // per_window)))

    @property
    def amp(self) -> bool:
        return self.device.type == "cuda"

    # ------------------------------------------------------------------ batching with OOM fallback
    def map_batches(self, items: Sequence, kind: str, fn: Callable[[RefSAM3D, list], object],
                    before_batch: Callable[[], None] | None = None) -> Iterator[tuple[list, object]]:
        """Yield (batch, fn(model, batch)) over ``items`` under the device's precision.

        On CUDA out-of-memory the same items are retried with half the batch size, and when a single
        item does not fit, the model moves to the CPU and work continues there (logged, never a crash).
        """
        items = list(items)
        i = 0
        while i < len(items):
            if before_batch is not None:
                before_batch()
            batch = items[i:i + self.batch_size[kind]]
            try:
                with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    out = fn(self.model, batch)
            except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
                if not _is_oom(exc):
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if self.batch_size[kind] > 1:
                    self.batch_size[kind] = max(1, self.batch_size[kind] // 2)
                    log.warning("out of memory; %s batch size reduced to %d", kind, self.batch_size[kind])
                elif self.device.type != "cpu":
                    log.warning("out of GPU memory even for one window; continuing on the CPU (slower)")
                    self._move_to_cpu()
                else:
                    raise
                continue
            yield batch, out
            i += len(batch)

    def _move_to_cpu(self) -> None:
        self.device = torch.device("cpu")
        self.model.to(self.device)
        if self.slice_sam is not None:
            self.slice_sam.to(self.device)
        self.fell_back_to_cpu = True

    # ------------------------------------------------------------------ sessions
    def open(self, volume: Volume, modality: str | None = None,
             leave_out_references: tuple[str, ...] | None = None) -> Session:
        """A session on ``volume``; ``VolumeReadError`` first if its data cannot be segmented (NaN, bad spacing).
        ``leave_out_references``: reference CTs the locate stage must not use (evaluating on one of them)."""
        check_volume(volume)
        return Session(self, volume, modality, leave_out_references)

"""Batch from the panel: the current prompts over every loaded volume, or every frame of a sequence.

Each volume (frame) gets its own new segmentation; a volume that fails (not a scalar volume, a click
outside it, a model error) is reported and skipped, and the run goes on. The run is a small state machine
driven from the main thread like the interactive loop -- ``start()``, then ``poll()`` from a timer (the
model work stays on the worker thread, so Slicer never freezes), ``cancel()`` at any time (the running
volume writes nothing, later ones are not started) -- or ``run()`` for scripts and tests.

A sequence frame is segmented through a temporary volume node that shares the frame's voxels (no copy);
it is removed when the frame is done, and the frame's segmentation keeps the frame's geometry.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .errors import InputError


@dataclass
class BatchSource:
    """One thing to segment: ``acquire()`` gives a volume node in the scene, ``release()`` cleans up."""

    name: str
    acquire: object  # () -> volume node
    release: object = None  # (volume node) -> None


@dataclass
class BatchOutcome:
    done: list[tuple[str, object, object]] = field(default_factory=list)  # (name, segmentation node, outcome)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (name, one-line reason)
    skipped_not_found: list[str] = field(default_factory=list)  # names where nothing was found
    cancelled: bool = False
    seconds: float = 0.0

    @property
    def message(self) -> str:
        parts = [f"Batch: {len(self.done)} segmented"]
        if self.skipped_not_found:
            parts.append(f"{len(self.skipped_not_found)} with nothing found")
        if self.failed:
            parts.append(f"{len(self.failed)} failed ({'; '.join(f'{n}: {m}' for n, m in self.failed)})")
        if self.cancelled:
            parts.append("cancelled")
        return ", ".join(parts) + f" in {self.seconds:.1f} s."


def volume_sources(volume_nodes) -> list[BatchSource]:
    return [BatchSource(node.GetName(), lambda node=node: node) for node in volume_nodes]


def loaded_volumes(scene) -> list:
    """Every scalar (grayscale) volume in the scene, in the order they were added (label maps excluded)."""
    nodes = []
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
        node = scene.GetNthNodeByClass(index, "vtkMRMLScalarVolumeNode")
        if not node.IsA("vtkMRMLLabelMapVolumeNode") and not node.GetHideFromEditors():
            nodes.append(node)
    return nodes


def sequence_sources(sequence_node, scene) -> list[BatchSource]:
    """One source per frame of a volume sequence (named '<sequence> [<index value>]')."""
    sources = []
    for index in range(sequence_node.GetNumberOfDataNodes()):
        value = sequence_node.GetNthIndexValue(index)
        name = f"{sequence_node.GetName()} [{value}]"

        def acquire(index=index, name=name):
            frame = sequence_node.GetNthDataNode(index)
            if frame is None or not frame.IsA("vtkMRMLScalarVolumeNode"):
                raise InputError(f"frame {index} of '{sequence_node.GetName()}' is not a scalar volume")
            node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
            node.SetAndObserveImageData(frame.GetImageData())  # shared, not copied
            node.CopyOrientation(frame)
            return node

        sources.append(BatchSource(name, acquire, lambda node: scene.RemoveNode(node)))
    return sources


class BatchRun:
    def __init__(self, logic, sources: list[BatchSource], text: str | None = None, positive_points=None,
                 negative_points=None, roi=None, progress_callback=None) -> None:
        if not sources:
            raise InputError("no volumes to segment; load volumes (or a sequence) first")
        logic.build_prompts(text, positive_points, negative_points, roi)  # refuse an empty prompt before starting
        self.logic = logic
        self.sources = list(sources)
        self.prompt = {"text": text, "positive_points": positive_points, "negative_points": negative_points,
                       "roi": roi}
        self.progress_callback = progress_callback  # (index, total, name, fraction, message) -> None
        self.outcome = BatchOutcome()
        self._index = 0
        self._running = None  # (pending, source, volume node)
        self._started = None
        self._cancelled = False

    @property
    def finished(self) -> bool:
        return self._started is not None and self._running is None and (
            self._cancelled or self._index >= len(self.sources))

    @property
    def progress(self) -> tuple[int, int, str, float]:
        if self._running is None:
            return self._index, len(self.sources), "", 0.0
        return self._index, len(self.sources), self._running[1].name, self._running[0].progress[0]

    def start(self) -> None:
        if self.logic.busy:
            raise InputError("RefSAM3D is still working on a prompt; wait for it or press Cancel")
        self._started = time.perf_counter()
        self.poll()

    def cancel(self) -> None:
        self._cancelled = True
        self.outcome.cancelled = True
        self.logic.cancel()

    def poll(self) -> bool:
        """Main thread: finish a done volume, start the next; True while the run goes on."""
        while True:
            if self._running is not None:
                if not self._running[0].done():
                    self._notify()
                    return True
                self._finish_running()
            if self._cancelled or self._index >= len(self.sources):
                self.outcome.seconds = time.perf_counter() - self._started
                return False
            self._start(self.sources[self._index])

    def run(self, pump_events=None, poll_seconds: float = 0.05) -> BatchOutcome:
        self.start()
        while self.poll():
            self._running[0].wait(poll_seconds)
            if pump_events is not None:
                pump_events()
        return self.outcome

    # ------------------------------------------------------------------ internals
    def _start(self, source: BatchSource) -> None:
        node = None
        try:
            node = source.acquire()
            pending = self.logic.start_segmentation(node, None, **self.prompt)
        except Exception as error:  # noqa: BLE001 - one bad volume must not stop the batch
            self._fail(source, node, error)
            return
        self._running = (pending, source, node)
        self._notify()

    def _finish_running(self) -> None:
        pending, source, node = self._running
        self._running = None
        try:
            result = self.logic.finish_segmentation(pending)
        except Exception as error:  # noqa: BLE001
            self._fail(source, node, error)
            return
        self._index += 1
        if result.cancelled:
            self.outcome.cancelled = True
        elif result.segmentation_node is None:
            self.outcome.skipped_not_found.append(source.name)
        else:
            result.segmentation_node.SetName(f"{source.name} RefSAM3D")
            self.outcome.done.append((source.name, result.segmentation_node, result))
        self._release(source, node)

    def _fail(self, source: BatchSource, node, error: Exception) -> None:
        from RefSAM3DLib.errors import RefSAM3DError

        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        if not isinstance(error, RefSAM3DError):
            message = f"{type(error).__name__}: {message}"
        self.outcome.failed.append((source.name, message))
        self._index += 1
        self._release(source, node)

    @staticmethod
    def _release(source: BatchSource, node) -> None:
        if source.release is not None and node is not None:
            source.release(node)

    def _notify(self) -> None:
        if self.progress_callback is not None and self._running is not None:
            fraction, message = self._running[0].progress
            self.progress_callback(self._index, len(self.sources), self._running[1].name, fraction, message)

"""The interactive loop: text makes a new segment, then every click or box refines THAT segment at once.

``InteractiveLoop`` sits on top of the Logic and keeps, per object being segmented, its prompt text, its
clicks and box, and the segment they produce. Each interaction starts one step on the worker thread with
all of the object's clicks and the segment's last result fed back (``Prompt(previous=...)``), so the
cached session makes a click cost only the windows around it. Nothing blocks: an interaction arriving
while a step runs is queued, and when the step ends every queued click is merged into the next step, so
no click is lost and a burst of clicks costs one step. With ``supersede=True`` a new click or box on the
object being refined instead cancels the running refinement (it writes nothing) and the next step runs with
all clicks, the cancelled step's included -- the newest state is reached sooner when steps are slow.
"New object" closes the current object; clicks without text start a click-only object. Undo takes back the newest queued interaction, else the newest
step (its segment voxels via the Logic's undo, and the clicks of that step from the object).

The Widget only forwards events (``add_click`` from a placed markup, ``start_text`` from the prompt box)
and calls ``poll()`` from a timer; scripts and tests call ``wait()``.
"""
from __future__ import annotations

import logging
import time
from copy import deepcopy
from dataclasses import dataclass, field

from .errors import InputError
from .logic import split_prompt_text

log = logging.getLogger(__name__)


@dataclass
class Click:
    ras: tuple[float, float, float]
    positive: bool = True


@dataclass
class LoopObject:
    """One object being segmented: what the user said about it and where its result lives."""

    volume_node: object
    segmentation_node: object | None
    text: str | None = None
    clicks: list[Click] = field(default_factory=list)
    box: tuple | None = None
    segment_id: str | None = None  # None until a step wrote its first result

    @property
    def name(self) -> str:
        if self.segment_id and self.segmentation_node is not None:
            segment = self.segmentation_node.GetSegmentation().GetSegment(self.segment_id)
            if segment is not None:
                return segment.GetName()
        return self.text or "click-only object"

    def state(self) -> dict:
        return {"text": self.text, "clicks": deepcopy(self.clicks), "box": self.box, "segment_id": self.segment_id,
                "segmentation_node": self.segmentation_node}

    def restore(self, state: dict) -> None:
        self.text, self.clicks, self.box = state["text"], deepcopy(state["clicks"]), state["box"]
        self.segment_id, self.segmentation_node = state["segment_id"], state["segmentation_node"]


@dataclass
class _Interaction:
    kind: str  # "text", "click", "box", "new"
    volume_node: object = None
    segmentation_node: object = None
    text: str | None = None
    click: Click | None = None
    box: tuple | None = None


@dataclass
class _HistoryEntry:
    undo_step: object  # the Logic's UndoStep this loop step pushed
    loop_object: LoopObject
    before: dict  # the object's state before the step


@dataclass
class StepReport:
    """What one finished step did, for the status line."""

    loop_object: LoopObject
    outcome: object | None  # SegmentationOutcome, or None when the step failed
    seconds: float
    message: str
    error: bool = False


class InteractiveLoop:
    def __init__(self, logic, status_callback=None, step_callback=None, supersede: bool = False) -> None:
        self.logic = logic
        self.supersede = supersede
        self.status_callback = status_callback  # (text) -> None
        self.step_callback = step_callback  # (StepReport) -> None, after every finished step
        self.current: LoopObject | None = None
        self._queue: list[_Interaction] = []
        self._running: list | None = None  # [PendingSegmentation, LoopObject, state before, start time, superseded]
        self._orphan = None  # the PendingSegmentation of a step whose scene was closed: ends silently
        self._history: list[_HistoryEntry] = []
        self.reports: list[StepReport] = []

    # ------------------------------------------------------------------ what the user does
    def start_text(self, volume_node, segmentation_node, text: str) -> None:
        """A typed prompt: new segment(s); the last one becomes the object later clicks refine."""
        if not split_prompt_text(text):
            raise InputError("type what to segment (e.g. 'left kidney'), or place a click for a click-only object")
        self._submit(_Interaction("text", volume_node, segmentation_node, text=text))

    def add_click(self, volume_node, segmentation_node, ras, positive: bool = True) -> None:
        """An include (positive) or exclude click in world RAS mm: refines the current object at once."""
        click = Click(tuple(float(c) for c in ras), bool(positive))
        self._submit(_Interaction("click", volume_node, segmentation_node, click=click))

    def set_box(self, volume_node, segmentation_node, corners) -> None:
        """A box (two opposite RAS corners) for the current object: refines it at once."""
        low, high = (tuple(float(c) for c in corner) for corner in corners)
        self._submit(_Interaction("box", volume_node, segmentation_node, box=(low, high)))

    def new_object(self) -> None:
        """Finish the current object; the next text or click starts another segment."""
        self._submit(_Interaction("new"))

    def undo(self, scene=None) -> str:
        """Take back the newest queued interaction, else the newest step; returns the status text."""
        if self._queue:
            dropped = self._queue.pop()
            return self._status(f"Removed the queued {dropped.kind} (not run yet).")
        if self.busy:
            raise InputError("a step is running; wait for it (or Cancel) before undoing")
        message = self.logic.undo(scene)
        undone = self.logic.undo_stack.last_undone
        if undone is not None and self._history and self._history[-1].undo_step is undone:
            entry = self._history.pop()
            entry.loop_object.restore(entry.before)
            self.current = entry.loop_object
        return self._status(message)

    def cancel(self) -> None:
        """Stop the running step (nothing is written); queued clicks stay in the object for the next step."""
        self.logic.cancel()

    def reset(self) -> None:
        """The scene was closed: cancel the running step, which then ends without writing or reporting, and forget
        the queued interactions, the objects and what can be undone. A prompt given meanwhile queues behind the
        cancelled step (it is not refused) and runs as soon as that step has stopped."""
        if self._running is not None:
            self._orphan = self._running[0]
            self.logic.cancel()
        self._queue.clear()
        self._history.clear()
        self.current = None
        self.logic.forget_scene()

    # ------------------------------------------------------------------ progress
    @property
    def busy(self) -> bool:
        return self._running is not None

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def progress(self) -> tuple[float, str]:
        return self._running[0].progress if self._running else (1.0, "idle")

    def poll(self) -> bool:
        """Main thread: finish a done step and start the next queued one; True while work remains."""
        while True:
            if self._running is not None:
                if not self._running[0].done():
                    return True
                self._finish_running()
            if not self._queue:
                return False
            self._start_next()  # consumes at least one queued interaction, so this loop ends

    def wait(self, pump_events=None, poll_seconds: float = 0.02) -> None:
        """Run until the queue is empty (scripts, tests, batch)."""
        while self.poll():
            self._running[0].wait(poll_seconds)
            if pump_events is not None:
                pump_events()

    # ------------------------------------------------------------------ internals
    def _submit(self, interaction: _Interaction) -> None:
        self._queue.append(interaction)
        if self._running is None:
            self.poll()  # start at once when idle (a synchronous worker even finishes here)
        elif self.supersede and interaction.kind in ("click", "box") and self._supersedable(interaction):
            self._running[4] = True
            self.logic.cancel()

    def _supersedable(self, interaction: _Interaction) -> bool:
        """Only a refinement of the same object is cancelled for a newer click; a text step always finishes."""
        pending, obj, before = self._running[:3]
        return pending.replace_segment_id is not None and self._object_for(interaction, create=False) is obj

    def _object_for(self, interaction: _Interaction, create: bool = True) -> LoopObject | None:
        """The object a click/box belongs to: the current one on the same volume, else a new click-only one."""
        current = self.current
        segmentation = interaction.segmentation_node
        if current is not None and current.volume_node is interaction.volume_node and (
                segmentation is None or current.segmentation_node in (None, segmentation)):
            return current
        if not create:
            return None
        self.current = LoopObject(interaction.volume_node, segmentation)
        return self.current

    def _start_next(self) -> None:
        """Apply queued interactions to the objects and start ONE step for the object they changed."""
        target = None
        while self._queue:
            item = self._queue[0]
            if item.kind == "new":
                if target is not None:
                    break
                self._queue.pop(0)
                self.current = None
                continue
            if item.kind == "text":
                if target is not None:
                    break
                self._queue.pop(0)
                self.current = target = LoopObject(item.volume_node, item.segmentation_node, text=item.text)
                target_before = target.state()
                continue
            obj = self._object_for(item)
            if target is not None and obj is not target:
                break
            if target is None:
                target, target_before = obj, obj.state()
            self._queue.pop(0)
            if item.kind == "click":
                obj.clicks.append(item.click)
            else:
                obj.box = item.box
        if target is None:
            return
        self._start_step(target, target_before)

    def _start_step(self, obj: LoopObject, before: dict) -> None:
        positive = [c.ras for c in obj.clicks if c.positive]
        negative = [c.ras for c in obj.clicks if not c.positive]
        segment_id = obj.segment_id
        if segment_id is not None and (obj.segmentation_node is None
                                       or obj.segmentation_node.GetSegmentation().GetSegment(segment_id) is None):
            segment_id = obj.segment_id = None  # the user deleted it: the clicks make a new segment
        try:
            pending = self.logic.start_segmentation(
                obj.volume_node, obj.segmentation_node, text=obj.text if segment_id is None else
                (split_prompt_text(obj.text)[-1] if obj.text else None),
                positive_points=positive, negative_points=negative, roi=obj.box,
                replace_segment_id=segment_id, rename_replaced=False)
        except Exception as error:  # noqa: BLE001 - reported like a failed step, the loop keeps going
            self._report(obj, None, 0.0, str(error), error=True, exception=error)
            return
        self._running = [pending, obj, before, time.perf_counter(), False]  # last: superseded

    def _finish_running(self) -> None:
        pending, obj, before, started, superseded = self._running
        self._running = None
        if pending is self._orphan:
            self._orphan = None
            try:
                self.logic.finish_segmentation(pending)  # cancelled: writes nothing, frees the Logic for the next step
            except Exception:  # noqa: BLE001 - its scene is gone: nothing left to report to
                log.debug("a step of a closed scene ended with an error", exc_info=True)
            return
        try:
            outcome = self.logic.finish_segmentation(pending)
        except Exception as error:  # noqa: BLE001 - the clicks stay in the object; the next step retries them
            self._report(obj, None, time.perf_counter() - started, str(error), error=True, exception=error)
            return
        seconds = time.perf_counter() - started
        if outcome.segmentation_node is not None:
            obj.segmentation_node = outcome.segmentation_node
        if outcome.added_segment_ids:
            obj.segment_id = outcome.added_segment_ids[-1]
        newest = self.logic.undo_stack.newest
        if not outcome.cancelled and outcome.segment_ids and newest is not None:
            self._history.append(_HistoryEntry(newest, obj, before))
            del self._history[:-max(1, len(self.logic.undo_stack))]
        if outcome.cancelled and superseded:
            message = "Superseded by a newer click; refining with all clicks."
        elif outcome.cancelled:
            message = "Cancelled; nothing was changed (the clicks are kept for the next step)."
        elif outcome.replaced_segment_id:
            message = f"Refined '{obj.name}' ({self._describe(obj)}) in {seconds:.2f} s."
        else:
            message = outcome.message
        self._report(obj, outcome, seconds, message)

    @staticmethod
    def _describe(obj: LoopObject) -> str:
        include = sum(c.positive for c in obj.clicks)
        parts = [f"{include} include, {len(obj.clicks) - include} exclude click(s)"]
        if obj.box is not None:
            parts.append("a box")
        return " + ".join(parts)

    def _report(self, obj, outcome, seconds, message, error=False, exception=None) -> None:
        from RefSAM3DLib.errors import RefSAM3DError

        if exception is not None and not isinstance(exception, RefSAM3DError):
            log.error("RefSAM3D step failed", exc_info=exception)
            message = f"Step failed: {message}"
        report = StepReport(obj, outcome, seconds, message, error)
        self.reports.append(report)
        self._status(message)
        if self.step_callback is not None:
            self.step_callback(report)

    def _status(self, message: str) -> str:
        if self.status_callback is not None:
            self.status_callback(message)
        return message

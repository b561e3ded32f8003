"""The module's Logic: nodes and plain values in, segment IDs out, news through callbacks; no widgets.

One prompt is two halves so Slicer never freezes: ``start_segmentation`` (main thread) reads the nodes,
copies the voxels only when the worker has no session for them, and hands the model work to the worker
thread; ``finish_segmentation`` (main thread, once the job is done) writes the results into the scene.
``segment`` does both and waits, for scripts and tests. Every result becomes a NEW segment unless a
segment to replace is named; what a prompt changed is recorded for Undo; a cancelled or failed prompt
leaves the scene as it was. Refining a segment by clicks feeds the model its own last result for that
segment (exact probabilities, and its mask, kept compact between steps) as long as the segment's voxels are still
what RefSAM3D wrote; after an edit elsewhere (Segment Editor) the edited voxels are the starting point instead.

Where the model runs is a setting ("Compute on": this computer, or a RefSAM3D server): the worker hands each job to
the engine for the configured ``ComputeTarget``, and everything here -- the loop, undo, refinement, export, batch --
is the same for both.
"""
from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from concurrent.futures import CancelledError, Future
from dataclasses import replace

import numpy as np

from . import mrml_adapter as mrml
from .compute import ComputeTarget
from .errors import InputError
from .pending import PendingSegmentation, ProgressState, SegmentationOutcome
from .prompts_from_markups import box_from_roi, points_from_markups
from .segment_fingerprint import SegmentFingerprint, labelmap_mtime, mask_digest
from .settings import MemorySettingsStore, RefSAM3DSettings
from .undo import SegmentSnapshot, UndoStack, UndoStep
from .worker import ModelWorker

_PROMPT_SEPARATORS = re.compile(r"[;\n]+")
_REFINEMENT_MEMORY = 8  # how many segments keep the model's own probability for click refinement
_REFINEMENT_STATES = 12  # per segment: the last results, so a refinement after Undo still gets exact probabilities


def split_prompt_text(text: str | None) -> list[str]:
    """Several structures at once: one per line or separated by ';' ("liver; spleen")."""
    return [t.strip() for t in _PROMPT_SEPARATORS.split(text or "") if t.strip()]


class RefSAM3DLogic:
    def __init__(self, worker: ModelWorker | None = None, settings_store=None,
                 settings: RefSAM3DSettings | None = None) -> None:
        self.settings_store = settings_store or MemorySettingsStore()
        self.settings = (settings or self.settings_store.load()).validated()
        self.worker = worker or ModelWorker()
        self.worker.configure(self.compute_target(strict=False))
        self.undo_stack = UndoStack(self.settings.undo_depth)
        self._pending: PendingSegmentation | None = None
        # (segmentation ID, segment ID) -> [(fingerprint right after writing, light result)], newest last
        self._refinement: OrderedDict[tuple[str, str], list] = OrderedDict()

    # ------------------------------------------------------------------ settings
    def apply_settings(self, settings: RefSAM3DSettings, persist: bool = True) -> None:
        """Use new preferences from the next prompt on (a new model/device is loaded lazily)."""
        self.settings = settings.validated()
        self.worker.configure(self.compute_target(strict=False))
        self.undo_stack.set_depth(self.settings.undo_depth)
        if persist:
            self.settings_store.save(self.settings)

    def compute_target(self, strict: bool = True) -> ComputeTarget:
        """Where prompts run, from the settings; with ``strict`` an unusable server set-up is an InputError, else
        this computer is used meanwhile (the user may still be typing the address)."""
        try:
            return ComputeTarget.from_settings(self.settings)
        except InputError:
            if strict:
                raise
            return ComputeTarget(self.settings.model, self.settings.device)

    def check_server(self, timeout: float = 5.0) -> Future:
        """Ask the configured server who it is, on a thread of its own (also while a prompt runs); the Future gives
        one line ("RefSAM3D server 0.1.0 at http://...: model ... on cuda") or raises a one-line error."""
        from RefSAM3DLib.serving.client import ServerClient

        target = self.compute_target()
        if not target.remote:
            raise InputError("choose 'a RefSAM3D server' under Compute on, and enter its address")
        future: Future = Future()

        def ask() -> None:
            try:
                future.set_result(ServerClient(target.server_url, target.token or None, timeout=timeout).describe())
            except BaseException as error:  # noqa: BLE001 - delivered through the Future
                future.set_exception(error)

        threading.Thread(target=ask, name="RefSAM3D-check-server", daemon=True).start()
        return future

    def postprocessing(self):
        from RefSAM3DLib.engine.postprocess import PostProcessing

        s = self.settings
        return PostProcessing(threshold=s.threshold, largest_component=s.largest_component, fill_holes=s.fill_holes,
                              min_size_ml=s.min_size_ml)

    # ------------------------------------------------------------------ prompts
    def build_prompts(self, text: str | None = None, positive_points=None, negative_points=None, roi=None,
                      previous=None) -> list:
        """One Prompt per text (';' or new line separated); clicks and box join the last one."""
        from RefSAM3DLib.engine.prompts import Prompt

        texts = split_prompt_text(text)
        points, labels = points_from_markups(positive_points, negative_points)
        box = box_from_roi(roi)
        if not texts and not points and box is None:
            raise InputError("type what to segment (e.g. 'left kidney') or place a click or a box")
        prompts = [Prompt(text=t) for t in texts[:-1]]
        has_clicks = bool(points) or box is not None
        prompts.append(Prompt(text=texts[-1] if texts else None, points=points, point_labels=labels, box=box,
                              previous=previous if has_clicks else None))
        return prompts

    # ------------------------------------------------------------------ one prompt, in two halves
    @property
    def busy(self) -> bool:
        return self._pending is not None and not self._pending.done()

    def start_segmentation(self, volume_node, segmentation_node=None, text: str | None = None,
                           positive_points=None, negative_points=None, roi=None,
                           replace_segment_id: str | None = None, progress_callback=None,
                           cancel=None, rename_replaced: bool = True) -> PendingSegmentation:
        """Main thread: validate, collect the prompt, hand the model work to the worker; returns at once.

        ``rename_replaced=False`` (click refinement) keeps the replaced segment's name, colour and codes.
        """
        if self.busy:
            raise InputError("RefSAM3D is still working on the previous prompt; wait for it or press Cancel")
        self.worker.configure(self.compute_target())
        mrml.check_volume_node(volume_node)
        if segmentation_node is not None:
            mrml.check_segmentation_node(segmentation_node, volume_node)
        previous = None
        if replace_segment_id:
            previous = self._replacement_context(segmentation_node, replace_segment_id, volume_node)
        prompts = self.build_prompts(text, positive_points, negative_points, roi, previous)
        if replace_segment_id and len(prompts) > 1:
            raise InputError("replace one segment with one prompt at a time (remove the ';' or extra lines)")
        modality = None if self.settings.modality == "auto" else self.settings.modality
        key = self.worker.session_key(mrml.volume_fingerprint(volume_node), modality)
        volume = None if self.worker.has_session(key) else mrml.volume_from_node(volume_node, modality)
        pending = PendingSegmentation(volume_node, segmentation_node, prompts, key, replace_segment_id, None,
                                      ProgressState(progress_callback), threading.Event(), time.perf_counter(),
                                      external_cancel=cancel, rename_replaced=rename_replaced)
        self._pending = pending  # busy from now on, also while a synchronous worker runs the job inline
        try:
            pending.future = self.worker.segment(key, volume, prompts, progress=pending.progress_state,
                                                 cancel=lambda: pending.cancelled,
                                                 postprocessing=self.postprocessing(),
                                                 presence_threshold=self.settings.presence_threshold)
        except BaseException:
            self._pending = None  # e.g. the worker was shut down: not busy forever
            raise
        return pending

    def finish_segmentation(self, pending: PendingSegmentation, status_callback=None) -> SegmentationOutcome:
        """Main thread, after ``pending.done()``: write the results (or nothing, if cancelled or failed)."""
        from RefSAM3DLib.engine.errors import Cancelled

        if self._pending is pending:
            self._pending = None
        outcome = SegmentationOutcome(pending.segmentation_node)
        try:
            results = pending.future.result()
        except (Cancelled, CancelledError):
            results = None
        if results is None or pending.cancelled:
            outcome.cancelled = True
            return self._report(outcome, pending, "Cancelled; nothing was changed.", status_callback)
        if pending.volume_node.GetScene() is None:
            raise InputError("the volume was removed while segmenting; nothing was written")
        outcome.results = list(results)
        self._write_results(pending, results, outcome)
        return self._report(outcome, pending, None, status_callback)

    def segment(self, volume_node, segmentation_node=None, text: str | None = None, positive_points=None,
                negative_points=None, roi=None, replace_segment_id: str | None = None, progress_callback=None,
                status_callback=None, cancel=None, pump_events=None, poll_seconds: float = 0.05
                ) -> SegmentationOutcome:
        """Both halves, waiting in between; ``pump_events`` (e.g. slicer.app.processEvents) keeps a GUI alive."""
        pending = self.start_segmentation(volume_node, segmentation_node, text, positive_points, negative_points,
                                          roi, replace_segment_id, progress_callback, cancel)
        shown = None
        while not pending.wait(poll_seconds):
            if progress_callback is not None and pending.progress != shown:
                shown = pending.progress
                progress_callback(*shown)
            if pump_events is not None:
                pump_events()
        return self.finish_segmentation(pending, status_callback)

    def cancel(self) -> None:
        """Ask the running prompt to stop at the next window batch."""
        if self._pending is not None:
            self._pending.cancel()

    # ------------------------------------------------------------------ undo and model lifetime
    @property
    def can_undo(self) -> bool:
        return self.undo_stack.can_undo

    def undo(self, scene=None, status_callback=None) -> str:
        import slicer

        if self.busy:
            raise InputError("wait for the running prompt (or cancel it) before undoing")
        message = self.undo_stack.undo(scene or slicer.mrmlScene)
        if status_callback is not None:
            status_callback(message)
        return message

    def forget_scene(self) -> None:
        """The scene was closed: its steps cannot be undone and its segments need no refinement memory."""
        self.undo_stack.clear()
        self._refinement.clear()

    def release_model(self) -> None:
        self._refinement.clear()
        self.worker.release()

    def shutdown(self) -> None:
        self.cancel()
        self.worker.shutdown(wait=False)

    # ------------------------------------------------------------------ internals
    def _replacement_context(self, segmentation_node, segment_id: str, volume_node):
        """What the model should refine when clicks replace a segment: its own last probability when the
        segment still holds what RefSAM3D wrote and the session is still open, else the segment's current voxels."""
        if segmentation_node is None or segmentation_node.GetSegmentation().GetSegment(segment_id) is None:
            raise InputError("the segment to replace is not in the selected segmentation; pick it again")
        remembered = self._refinement.get((segmentation_node.GetID(), segment_id), [])
        modality = None if self.settings.modality == "auto" else self.settings.modality
        token = self.worker.session_token(self.worker.session_key(mrml.volume_fingerprint(volume_node), modality))
        mtime = labelmap_mtime(segmentation_node, segment_id)
        if remembered and remembered[-1][0].mtime == mtime:  # untouched since our last write: no read needed
            fingerprint, result, wire = remembered[-1]
            if result.session_token == token:
                return _restored(result, wire)
        current = mrml.read_mask(segmentation_node, segment_id, volume_node)
        digest = mask_digest(current)
        for fingerprint, result, wire in reversed(remembered):  # e.g. restored by Undo to an earlier result
            if fingerprint.digest == digest and result.session_token == token:
                return _restored(result, wire)
        return current if current.any() else None

    def _remember_for_refinement(self, segmentation_node, fingerprint: SegmentFingerprint, result) -> None:
        """Keep what refining needs: the result's handles, and its mask packed (a few kB instead of the full grid),
        because an engine may refine from the previous mask rather than from its own map."""
        from RefSAM3DLib.serving.mask_codec import encode_mask

        wire = getattr(result, "wire_mask", None) or encode_mask(result.mask)
        light = replace(result, mask=np.zeros((1, 1, 1), bool), probability=None)
        key = (segmentation_node.GetID(), fingerprint.segment_id)
        states = self._refinement.pop(key, [])
        states.append((fingerprint, light, wire))
        self._refinement[key] = states[-_REFINEMENT_STATES:]
        while len(self._refinement) > _REFINEMENT_MEMORY:
            self._refinement.popitem(last=False)

    def _write_results(self, pending: PendingSegmentation, results: list, outcome: SegmentationOutcome) -> None:
        volume_node = pending.volume_node
        segmentation_node = pending.segmentation_node
        to_write = [r for r in results if r.found and r.mask.any()]
        for result in results:
            if not (result.found and result.mask.any()):
                outcome.not_found.append(result.prompt or result.name)
                outcome.messages.append(_not_found_message(result, self.settings.presence_threshold))
        if not to_write:
            return
        created = segmentation_node is None
        if created:
            segmentation_node = volume_node.GetScene().AddNewNodeByClass(
                "vtkMRMLSegmentationNode", f"{volume_node.GetName()} segmentation")
            outcome.segmentation_node = segmentation_node
        mrml.prepare_segmentation_node(segmentation_node, volume_node)
        replaced = pending.replace_segment_id
        if replaced and segmentation_node.GetSegmentation().GetSegment(replaced) is None:
            raise InputError("the segment to replace was deleted while segmenting; nothing was written")
        step = UndoStep(segmentation_node.GetID(), pending.description, volume_node_id=volume_node.GetID())
        try:
            for result in to_write:
                if pending.replace_segment_id:
                    segment_id = pending.replace_segment_id
                    step.replaced.append(SegmentSnapshot.take(segmentation_node, segment_id))
                    mrml.replace_segment_with_result(segmentation_node, segment_id, volume_node, result,
                                                     rename=bool(result.prompt) and pending.rename_replaced)
                    outcome.replaced_segment_id = segment_id
                    verb = "Replaced"
                else:
                    segment_id = mrml.add_result_segment(segmentation_node, volume_node, result)
                    step.added_segment_ids.append(segment_id)
                    outcome.added_segment_ids.append(segment_id)
                    verb = "Added"
                fingerprint = SegmentFingerprint.take(segmentation_node, segment_id, result.mask)
                step.written[segment_id] = fingerprint
                self._remember_for_refinement(segmentation_node, fingerprint, result)
                name = segmentation_node.GetSegmentation().GetSegment(segment_id).GetName()
                outcome.messages.append(f"{verb} '{name}' ({result.volume_ml:.1f} mL).")
        except Exception:  # leave nothing half-written: revert this step, drop a segmentation made for it
            rollback = UndoStack()
            rollback.push(step)
            rollback.undo(segmentation_node.GetScene())
            if created:
                segmentation_node.GetScene().RemoveNode(segmentation_node)
                outcome.segmentation_node = None
            outcome.added_segment_ids.clear()
            outcome.replaced_segment_id = None
            raise
        self.undo_stack.push(step)

    def _report(self, outcome: SegmentationOutcome, pending: PendingSegmentation, message: str | None,
                status_callback) -> SegmentationOutcome:
        outcome.seconds = time.perf_counter() - pending.started
        if message:
            outcome.messages.append(message)
        if not outcome.cancelled:
            for prompt in pending.prompts:
                if prompt.text:
                    self.settings.remember_prompt(prompt.text)
            self.settings_store.save(self.settings)
            outcome.messages.append(f"({outcome.seconds:.1f} s on {self.worker.device_description})")
        if status_callback is not None:
            status_callback(outcome.message)
        return outcome


def _restored(light, wire):
    """A remembered result with its full mask again, as ``Prompt(previous=...)`` expects it."""
    from RefSAM3DLib.serving.mask_codec import decode_mask

    return replace(light, mask=decode_mask(wire))


def _not_found_message(result, presence_threshold: float) -> str:
    what = f"'{result.prompt}'" if result.prompt else "the clicked structure"
    note = getattr(result, "note", "")  # the engine's reason, or what prompt would help
    if note:
        return f"Not found: {what}: {note}; nothing was added."
    if result.prompt and result.presence is not None and result.presence < presence_threshold:
        return (f"Not found: {what} does not appear in this volume (presence {result.presence:.2f} < "
                f"{presence_threshold:.2f}); nothing was added.")
    return f"Not found: the model returned an empty mask for {what}; nothing was added."

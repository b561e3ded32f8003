"""RefSAM3D: type what to segment ("left kidney"), then click or draw a box to refine it, get a coded 3D segment.

This file holds only what needs the Slicer application: the module description, a thin Qt widget, the
Logic class Slicer expects (it inherits all behaviour from RefSAM3DSlicerLib.logic, which is tested
headless) and the in-app self-test. The widget forwards events to RefSAM3DSlicerLib: the interactive loop
(interaction.py: per-object state, queued clicks, undo), the prompt markups and their MRML events
(prompt_markups.py), export.py, batch.py, dependencies.py, and the panel flows of RefSAM3DSlicerUI (settings
and server check, dependency install, export and batch). Model
work never runs here: it goes to one persistent worker thread (which runs the model here or talks to a RefSAM3D
server, per "Compute on"), and a QTimer polls the loop, the batch, a server check or the pip process, so the panel
stays responsive and Cancel works.
"""
import logging
from dataclasses import replace

import qt
import slicer
from RefSAM3DSlicerLib import (
    InputError,
    ModelWorker,
    QSettingsStore,
    RefSAM3DLogic,
    RefSAM3DSettings,
    choices,
    dependencies,
)
from RefSAM3DSlicerLib.interaction import InteractiveLoop
from RefSAM3DSlicerLib.parameter_node import restore_selection, store_selection
from RefSAM3DSlicerLib.prompt_markups import BOX, EXCLUDE, INCLUDE, PromptMarkups
from RefSAM3DSlicerLib.shortcuts import PANEL_UNDO, describe_shortcuts, format_shortcuts
from RefSAM3DSlicerUI.compute_panel import ComputeSettingsMixin
from RefSAM3DSlicerUI.dependency_panel import DependencyInstallMixin
from RefSAM3DSlicerUI.outputs_panel import USER_ERRORS, OutputsMixin
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

try:
    from slicer.i18n import tr as _
    from slicer.i18n import translate
except ImportError:  # Slicer < 5.4
    def _(text):
        return text

    def translate(context, text):
        return text

log = logging.getLogger(__name__)
POLL_MILLISECONDS = 100
EXPORT_FORMATS = [("NIfTI label map (.nii.gz)", "nifti"), ("Slicer segmentation (.seg.nrrd)", "seg.nrrd"),
                  ("DICOM-SEG (.dcm)", "dicom-seg")]


class RefSAM3DSlicer(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("RefSAM3D")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["RefSAM3D developers"]
        self.parent.helpText = _("""
Segment anatomy and lesions in CT and MRI by <b>typing what you want</b> ("left kidney", "liver tumor"),
then refine it with <b>include/exclude clicks</b> and a <b>box</b>: every click updates the same segment at once.
<ol>
<li>Select the volume and a segmentation (or leave "Create new segmentation").</li>
<li>Type a structure and press Enter: a new, named, colour- and terminology-coded segment.
"Not found" means the model judged the structure absent: nothing is added.</li>
<li>Place include (I) / exclude (E) clicks or draw a box (X): the segment is refined after each one.
Clicks without text make a click-only segment. <b>New segment</b> (N) starts the next object.</li>
<li><b>Undo</b> (Z, or Ctrl+Z in this panel) takes back the last click or step. It refuses when the segment
was edited since (e.g. in the Segment Editor), so your edit is never lost.</li>
</ol>
Segments can be renamed, recoloured, hidden or deleted in the table, opened in the Segment Editor, exported
(NIfTI, .seg.nrrd, DICOM-SEG) and the current prompt can be run over all loaded volumes (Batch).
Shortcuts are set in Advanced. <b>Compute on</b> (Model and compute) sends the work to a RefSAM3D server
(<code>refsam3d serve</code> on a GPU machine) instead of this computer. PyTorch comes from the PyTorch extension; the first run offers to install the
other packages listed in Resources/requirements.txt. Needs Slicer 5.10 or newer. Not for clinical use.
See <a href="https://github.com/refsam3d/SlicerRefSAM3D">the project page</a>.
""")
        self.parent.acknowledgementText = _("""
RefSAM3D builds on Segment Anything (Kirillov et al., Meta AI, 2023) lifted to 3D, and on CLIP text
encoders (Radford et al., OpenAI, 2021); the method follows "RefSAM3D: Adapting SAM with Cross-modal
Reference for 3D Medical Image Segmentation" (Gao et al., 2024). Module design learned from
SlicerTotalSegmentator, SlicerMONAIAuto3DSeg, SlicerVoxTell and SlicerNNInteractive.
""")


class RefSAM3DSlicerWidget(ScriptedLoadableModuleWidget, VTKObservationMixin, ComputeSettingsMixin,
                           DependencyInstallMixin, OutputsMixin):
    """State and UI only: forwards clicks and buttons to the loop, batch and export of RefSAM3DSlicerLib."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.loop = None
        self.markups = None
        self._batch = None
        self._export = None
        self._pip = None
        self._pipQueue = []
        self._restartNeeded = []
        self._pollTimer = None
        self._serverCheck = None
        self._shortcuts = []

    # ------------------------------------------------------------------ set-up
    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/RefSAM3DSlicer.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = RefSAM3DSlicerLogic()
        self.loop = InteractiveLoop(self.logic, status_callback=self._setStatus, step_callback=self.onStepDone)
        self.markups = PromptMarkups(self.loop, self._selection, run=self._run, ready=self._dependenciesReady)
        self._pollTimer = qt.QTimer()
        self._pollTimer.setInterval(POLL_MILLISECONDS)
        self._pollTimer.connect("timeout()", self.onPoll)

        for label, value in choices.compute_choices():
            self.ui.computeComboBox.addItem(_(label), value)
        self.ui.deviceComboBox.addItems(list(choices.device_choices()))
        self.ui.modalityComboBox.addItems(["auto", "CT", "MR"])
        for choice in choices.model_choices():
            self.ui.modelComboBox.addItem(choice.name)
            self.ui.modelComboBox.setItemData(self.ui.modelComboBox.count - 1, choice.description, qt.Qt.ToolTipRole)
        for label, fmt in EXPORT_FORMATS:
            self.ui.exportFormatComboBox.addItem(label, fmt)
        self.ui.progressBar.setVisible(False)
        self.ui.batchProgressBar.setVisible(False)
        self._showSettings(self.logic.settings)
        self._updateCompleter()

        self.ui.segmentButton.connect("clicked(bool)", self.onSegment)
        self.ui.promptLineEdit.connect("returnPressed()", self.onSegment)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.undoButton.connect("clicked(bool)", self.onUndo)
        self.ui.newObjectButton.connect("clicked(bool)", self.onNewObject)
        self.ui.editInSegmentEditorButton.connect("clicked(bool)", self.onEditInSegmentEditor)
        self.ui.exportButton.connect("clicked(bool)", self.onExport)
        self.ui.batchButton.connect("clicked(bool)", self.onBatch)
        self.ui.batchCancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.browseModelButton.connect("clicked(bool)", self.onBrowseModel)
        self.ui.computeComboBox.connect("currentIndexChanged(int)", self.onPreferencesEdited)
        self.ui.serverUrlLineEdit.connect("editingFinished()", self.onPreferencesEdited)
        self.ui.serverTokenLineEdit.connect("editingFinished()", self.onPreferencesEdited)
        self.ui.checkServerButton.connect("clicked(bool)", self.onCheckServer)
        self.ui.installDependenciesButton.connect("clicked(bool)", self.onInstallDependencies)
        self.ui.unloadModelButton.connect("clicked(bool)", self.onUnloadModel)
        self.ui.shortcutsLineEdit.connect("editingFinished()", self.onPreferencesEdited)
        self.ui.supersedeCheckBox.connect("toggled(bool)", self.onPreferencesEdited)
        self.ui.inputVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onNodeSelectionChanged)
        self.ui.outputSegmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onNodeSelectionChanged)
        self._panelShortcut(("Ctrl+Return", "Ctrl+Enter"), self.onSegment)
        self._panelShortcut(("Esc",), self.onCancel)
        self._panelShortcut((PANEL_UNDO,), self.onUndo)
        self._bindShortcuts()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self._showDependencyStatus()
        self._updateButtons()

    def _panelShortcut(self, keys, callback):
        """Shortcuts active only while this panel (or a child) has the focus."""
        for key in keys:
            shortcut = qt.QShortcut(qt.QKeySequence(key), self.parent)
            shortcut.setContext(qt.Qt.WidgetWithChildrenShortcut)
            shortcut.connect("activated()", callback)
            shortcut.connect("activatedAmbiguously()", callback)  # e.g. an enabled application-wide Ctrl+Z

    def _unbindShortcuts(self):
        for shortcut in self._shortcuts:
            shortcut.setEnabled(False)
            shortcut.setParent(None)
        self._shortcuts = []

    def _bindShortcuts(self):
        """The configurable single keys, on the main window while this module is shown (like the Segment
        Editor's keys); a focused text box still receives its letters."""
        self._unbindShortcuts()
        self.ui.shortcutsLineEdit.text = format_shortcuts(self.logic.settings.shortcuts)
        self.ui.shortcutsLineEdit.toolTip = describe_shortcuts(self.logic.settings.shortcuts)
        if not self.parent.isEntered:
            return
        actions = {"include": lambda: self._startPlacing(INCLUDE), "exclude": lambda: self._startPlacing(EXCLUDE),
                   "box": lambda: self._startPlacing(BOX), "undo": self.onUndo, "new_object": self.onNewObject}
        window = slicer.util.mainWindow() or self.parent
        for action, key in self.logic.settings.shortcuts.items():
            shortcut = qt.QShortcut(qt.QKeySequence(key), window)
            shortcut.connect("activated()", actions[action])
            self._shortcuts.append(shortcut)

    def enter(self):
        self._ensurePromptNodes()
        self._bindShortcuts()

    def exit(self):
        self._unbindShortcuts()

    def cleanup(self):
        self.removeObservers()
        if self.markups is not None:
            self.markups.forget()
        self._unbindShortcuts()
        if self._pollTimer is not None:
            self._pollTimer.stop()
        if self._pip is not None:
            self._pip.cancel()
        if self.logic is not None:
            self.logic.shutdown()

    def onSceneEndClose(self, caller, event):
        """A running step is cancelled and ends without writing; the next prompt queues behind it, never refused."""
        self.loop.reset()
        self.markups.forget()
        if self.parent.isEntered:
            self._ensurePromptNodes()
        self._startPolling()

    # ------------------------------------------------------------------ scene <-> panel
    def _ensurePromptNodes(self):
        """The scene's include list, exclude list and box (made and observed by PromptMarkups) in the place widgets."""
        nodes = self.markups.ensure_nodes(self.logic.getParameterNode(), slicer.mrmlScene)
        for role, widget in self._placeWidgets().items():
            widget.setCurrentNode(nodes[role])
        multiple, single = (slicer.qSlicerMarkupsPlaceWidget.ForcePlaceMultipleMarkups,
                            slicer.qSlicerMarkupsPlaceWidget.ForcePlaceSingleMarkup)
        self.ui.positivePointsPlaceWidget.placeMultipleMarkups = multiple
        self.ui.negativePointsPlaceWidget.placeMultipleMarkups = multiple
        self.ui.boxPlaceWidget.placeMultipleMarkups = single  # one box per object
        # both stored nodes are read before either selector changes (selecting one stores the panel's pair)
        restore_selection(self.logic.getParameterNode(), self.ui.inputVolumeSelector.setCurrentNode,
                          self.ui.outputSegmentationSelector.setCurrentNode)

    def _placeWidgets(self):
        return {INCLUDE: self.ui.positivePointsPlaceWidget, EXCLUDE: self.ui.negativePointsPlaceWidget,
                BOX: self.ui.boxPlaceWidget}

    def onNodeSelectionChanged(self, node=None):
        segmentation = self.ui.outputSegmentationSelector.currentNode()
        store_selection(self.logic.getParameterNode(), self.ui.inputVolumeSelector.currentNode(), segmentation)
        self.ui.segmentationShow3DButton.setSegmentationNode(segmentation)
        self.ui.segmentsTableView.setSegmentationNode(segmentation)
        self._updateButtons()

    def _promptNode(self, role):
        return self.markups.nodes.get(role)

    def _startPlacing(self, role):
        """What the place widget's own button does (PromptMarkups clears a drawn box: the new one replaces it)."""
        self._placeWidgets()[role].setPlaceModeEnabled(True)

    # ------------------------------------------------------------------ settings
    def onPreferencesEdited(self, *_args):
        """Shortcuts, click behaviour and where to compute apply at once (other settings with the next Segment
        press); the server token is stored with Slicer's settings, never in the scene."""
        self.logic.apply_settings(self._settingsFromPanel())
        self._bindShortcuts()
        self._updateButtons()

    def _updateCompleter(self):
        completer = qt.QCompleter(choices.prompt_completions(self.logic.settings.recent_prompts),
                                  self.ui.promptLineEdit)
        completer.setCaseSensitivity(qt.Qt.CaseInsensitive)
        completer.setFilterMode(qt.Qt.MatchContains)
        self.ui.promptLineEdit.setCompleter(completer)

    # ------------------------------------------------------------------ the loop
    def _selection(self):
        return self.ui.inputVolumeSelector.currentNode(), self.ui.outputSegmentationSelector.currentNode()

    def _run(self, action):
        """Call into the Lib; user errors become the status line, anything else is logged as the bug it is."""
        self.loop.supersede = self.logic.settings.supersede_clicks
        try:
            action()
        except USER_ERRORS as error:
            self._setStatus(str(error), "error")
        except Exception as error:
            log.exception("RefSAM3D failed")
            self._setStatus(_("Failed: ") + str(error), "error")
        self._startPolling()

    def onSegment(self):
        if not self._dependenciesReady():
            return
        self.logic.apply_settings(self._settingsFromPanel())
        volume, segmentation = self._selection()
        self.markups.clear()  # a new text is a new object: its clicks start from none
        self._run(lambda: self.loop.start_text(volume, segmentation, self.ui.promptLineEdit.text))

    def onStepDone(self, report):
        outcome = report.outcome
        if outcome is not None and outcome.segmentation_node is not None:
            self.ui.outputSegmentationSelector.setCurrentNode(outcome.segmentation_node)
        self._setStatus(report.message, "error" if report.error else
                        "warning" if outcome is not None and (outcome.not_found or outcome.cancelled) else "ok")
        self._showCurrentObject()
        self._updateCompleter()

    def onUndo(self):
        self._run(lambda: self.loop.undo(slicer.mrmlScene))
        self.markups.show(self.loop.current)
        self._showCurrentObject()

    def onNewObject(self):
        self._run(self.loop.new_object)
        self.markups.clear()
        self._showCurrentObject()

    def onCancel(self):
        if self._batch is not None:
            self._batch.cancel()
        if self.loop.busy:
            self.loop.cancel()
        self._setStatus(_("Cancelling: stopping after the current batch of windows; nothing will be written."))

    def _showCurrentObject(self):
        current = self.loop.current
        self.ui.currentObjectLabel.text = (
            _("nothing yet: type a structure, or place a click for a click-only segment") if current is None else
            f"{current.name} ({len(current.clicks)} click(s){', a box' if current.box else ''})")

    # ------------------------------------------------------------------ polling
    def _startPolling(self):
        if not self._pollTimer.isActive():
            self._pollTimer.start()
        self._updateButtons()

    def onPoll(self):
        """Main thread, every POLL_MILLISECONDS: drive the loop, the batch, an export, a pip install; MRML writes
        happen here."""
        busy = False
        try:
            busy |= self.loop.poll()
        except Exception:
            log.exception("RefSAM3D loop failed")
        if self.loop.busy:
            fraction, message = self.loop.progress
            self.ui.progressBar.setValue(round(100 * fraction))
            queued = f" (+{self.loop.queued} queued)" if self.loop.queued else ""
            self.ui.progressBar.setFormat(f"{message} %p%{queued}")
        if self._batch is not None:
            busy |= self._pollBatch()
        if self._pip is not None:
            busy |= self._pollPip()
        if self._export is not None:
            busy |= self._pollExport()
        if self._serverCheck is not None:
            busy |= self._pollServerCheck()
        if not busy:
            self._pollTimer.stop()
        self._updateButtons()

    # ------------------------------------------------------------------ helpers
    def _setStatus(self, text, kind="ok"):
        colors = {"ok": "", "warning": "color: #b06000;", "error": "color: #c00000;"}
        self.ui.statusLabel.setStyleSheet(colors.get(kind, ""))
        self.ui.statusLabel.text = text
        slicer.util.showStatusMessage(text, 5000)

    def _updateButtons(self):
        loopBusy = self.loop is not None and self.loop.busy
        batchBusy = self._batch is not None
        self.ui.segmentButton.enabled = not batchBusy and self.ui.inputVolumeSelector.currentNode() is not None
        self.ui.cancelButton.enabled = loopBusy or batchBusy
        self.ui.undoButton.enabled = not batchBusy and self.logic is not None and (
            self.logic.can_undo or (self.loop is not None and self.loop.queued > 0))
        self.ui.undoButton.toolTip = (_("Undo ") + self.logic.undo_stack.next_description
                                      if self.logic is not None and self.logic.can_undo else _("Nothing to undo"))
        self.ui.progressBar.setVisible(loopBusy)
        self.ui.batchButton.enabled = not (loopBusy or batchBusy)
        self.ui.batchCancelButton.enabled = batchBusy
        self.ui.batchProgressBar.setVisible(batchBusy)
        self.ui.exportButton.enabled = (self._export is None
                                        and self.ui.outputSegmentationSelector.currentNode() is not None)
        idle = not (loopBusy or batchBusy or self._pip is not None)
        remote = self.logic is not None and self.logic.settings.compute == "server"
        for widget in (self.ui.computeComboBox, self.ui.unloadModelButton, self.ui.installDependenciesButton):
            widget.enabled = idle
        for widget in (self.ui.modelComboBox, self.ui.browseModelButton, self.ui.deviceComboBox):
            widget.enabled = idle and not remote  # a server computes with its own model and device
        for widget in (self.ui.serverUrlLineEdit, self.ui.serverTokenLineEdit, self.ui.checkServerButton):
            widget.enabled = idle and remote


class RefSAM3DSlicerLogic(ScriptedLoadableModuleLogic, RefSAM3DLogic):
    """Slicer's Logic class; the behaviour (and its tests) live in RefSAM3DSlicerLib.logic.RefSAM3DLogic.

    Batch use from the Python console:
        logic = slicer.util.getModuleLogic("RefSAM3DSlicer")
        outcome = logic.segment(volumeNode, None, text="liver; spleen", pump_events=slicer.app.processEvents)
    """

    def __init__(self, worker=None, settingsStore=None, settings=None):
        ScriptedLoadableModuleLogic.__init__(self)
        if settingsStore is None and settings is None:
            settingsStore = QSettingsStore(qt.QSettings())
        RefSAM3DLogic.__init__(self, worker=worker, settings_store=settingsStore, settings=settings)


class RefSAM3DSlicerTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer ("Reload and Test"): a synthetic CT, a tiny random model, real MRML and threads."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_segment_undo_and_not_found()
        self.setUp()
        self.test_interactive_loop()
        self.setUp()
        self.test_clicks_and_box_from_markups()

    def _tinyModelLogic(self):
        """(logic, volume, settings) on a tiny random-weight model, or None when PyTorch is not installed."""
        if dependencies.missing_requirements(["torch", "numpy", "scipy", "nibabel"]):
            self.delayDisplay("Skipped: PyTorch/backend dependencies are not installed (use 'Install dependencies').")
            return None
        import numpy as np
        import torch
        from RefSAM3DSlicerLib.mrml_adapter import volume_from_node

        from RefSAM3DLib.engine.predictor import RefSAM3DPredictor
        from RefSAM3DLib.engine.prompts import Prompt
        from RefSAM3DLib.modeling.config import get_config
        from RefSAM3DLib.modeling.refsam3d import RefSAM3D

        torch.manual_seed(0)
        predictor = RefSAM3DPredictor(RefSAM3D(get_config("tiny")), device="cpu")
        volume = slicer.util.addVolumeFromArray(
            (np.random.default_rng(0).normal(40, 15, (14, 18, 22))).astype(np.int16), np.diag([-2.0, -2.5, 3.0, 1.0]),
            "RefSAM3D test CT")
        # random weights squeeze all probabilities into a narrow band: pick a threshold that gives a partial mask
        probe, = predictor.open(volume_from_node(volume)).segment(Prompt(text="left kidney"), return_probability=True,
                                                                  presence_threshold=0.0)
        settings = RefSAM3DSettings(model="tiny-test", device="cpu", presence_threshold=0.0,
                                    threshold=float(np.quantile(probe.probability, 0.6)))
        logic = RefSAM3DSlicerLogic(worker=ModelWorker(lambda model, device: predictor), settings=settings)
        return logic, volume, settings

    def test_segment_undo_and_not_found(self):
        self.delayDisplay("RefSAM3D: segment, undo, not found")
        made = self._tinyModelLogic()
        if made is None:
            return
        import numpy as np
        from RefSAM3DSlicerLib.mrml_adapter import segment_tag

        logic, volume, settings = made
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        try:
            outcome = logic.segment(volume, segmentation, text="left kidney", pump_events=slicer.app.processEvents)
            self.assertEqual(len(outcome.added_segment_ids), 1)
            segment = segmentation.GetSegmentation().GetSegment(outcome.added_segment_ids[0])
            self.assertEqual(segment.GetName(), "left kidney")
            array = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, outcome.added_segment_ids[0], volume)
            np.testing.assert_array_equal(array.transpose(2, 1, 0) > 0, outcome.results[0].mask)
            self.assertTrue(0 < array.sum() < array.size)
            self.assertEqual(segment_tag(segmentation, outcome.added_segment_ids[0], "DICOM.SegmentAlgorithmName"),
                             "RefSAM3D")
            logic.undo(slicer.mrmlScene)
            self.assertEqual(segmentation.GetSegmentation().GetNumberOfSegments(), 0)
            logic.apply_settings(replace(settings, presence_threshold=1.01), persist=False)
            outcome = logic.segment(volume, segmentation, text="spleen", pump_events=slicer.app.processEvents)
            self.assertEqual(outcome.not_found, ["spleen"])
            self.assertIn("Not found", outcome.message)
            self.assertRaises(InputError, logic.segment, None, segmentation, "liver")
        finally:
            logic.shutdown()
        self.delayDisplay("Test passed")

    def test_interactive_loop(self):
        """Text, then clicks that refine the same segment (on the worker thread), undo per step, editor edit kept."""
        self.delayDisplay("RefSAM3D: interactive loop")
        made = self._tinyModelLogic()
        if made is None:
            return
        import numpy as np
        from RefSAM3DSlicerLib.mrml_adapter import world_ijk_to_ras

        logic, volume, _settings = made
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        loop = InteractiveLoop(logic)

        def ras(ijk):
            return (world_ijk_to_ras(volume) @ np.array([*ijk, 1.0]))[:3]

        def voxels(segment_id):
            return slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segment_id, volume).copy()

        try:
            loop.start_text(volume, segmentation, "left kidney")
            loop.wait(pump_events=slicer.app.processEvents)
            self.assertEqual(segmentation.GetSegmentation().GetNumberOfSegments(), 1)
            segment_id = loop.current.segment_id
            states = [voxels(segment_id)]
            for ijk, positive in (((14, 11, 8), True), ((3, 4, 2), False)):
                loop.add_click(volume, segmentation, ras(ijk), positive)
                loop.wait(pump_events=slicer.app.processEvents)
                self.assertFalse(loop.reports[-1].error, loop.reports[-1].message)
                self.assertEqual(segmentation.GetSegmentation().GetNumberOfSegments(), 1)
                self.assertEqual(loop.current.segment_id, segment_id)
                states.append(voxels(segment_id))
            loop.undo(slicer.mrmlScene)
            np.testing.assert_array_equal(voxels(segment_id), states[1])
            self.assertEqual(len(loop.current.clicks), 1)
            edited = voxels(segment_id)
            edited[0:2, 0:2, 0:2] = 1  # what a Segment Editor paint stroke does
            slicer.util.updateSegmentBinaryLabelmapFromArray(edited, segmentation, segment_id, volume)
            self.assertTrue(loop.undo(slicer.mrmlScene).startswith("Not undone"))
            np.testing.assert_array_equal(voxels(segment_id), edited)
        finally:
            logic.shutdown()
        self.delayDisplay("Test passed")

    def test_clicks_and_box_from_markups(self):
        """A click added to the include list and a box resized on the ROI reach the loop through the observers the
        widget uses (RefSAM3DSlicerLib.prompt_markups), the way placing and resizing in a view fire them."""
        self.delayDisplay("RefSAM3D: clicks and box from markups")
        made = self._tinyModelLogic()
        if made is None:
            return
        import numpy as np
        from RefSAM3DSlicerLib.mrml_adapter import world_ijk_to_ras
        from RefSAM3DSlicerLib.prompt_markups import BOX, INCLUDE, PromptMarkups

        logic, volume, _settings = made
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        loop = InteractiveLoop(logic)
        markups = PromptMarkups(loop, lambda: (volume, segmentation))
        nodes = markups.ensure_nodes(slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScriptedModuleNode"),
                                     slicer.mrmlScene)

        def ras(ijk):
            return [float(c) for c in (world_ijk_to_ras(volume) @ np.array([*ijk, 1.0]))[:3]]

        try:
            loop.start_text(volume, segmentation, "left kidney")
            loop.wait(pump_events=slicer.app.processEvents)
            nodes[INCLUDE].AddControlPointWorld(*ras((14, 11, 8)))  # fires PointPositionDefinedEvent, like a click
            loop.wait(pump_events=slicer.app.processEvents)
            self.assertEqual(len(loop.current.clicks), 1)
            self.assertTrue(nodes[INCLUDE].GetNthControlPointLocked(0))
            box = nodes[BOX]
            box.InvokeCustomModifiedEvent(box.PointStartInteractionEvent)  # what the scale handles fire
            box.SetCenterWorld(ras((11, 9, 7)))
            box.SetSize([20.0, 20.0, 20.0])
            box.InvokeCustomModifiedEvent(box.PointEndInteractionEvent)
            loop.wait(pump_events=slicer.app.processEvents)
            self.assertIsNotNone(loop.current.box)
            self.assertEqual(segmentation.GetSegmentation().GetNumberOfSegments(), 1)
            self.assertFalse(any(report.error for report in loop.reports), [r.message for r in loop.reports])
        finally:
            markups.forget()
            logic.shutdown()
        self.delayDisplay("Test passed")

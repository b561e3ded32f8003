"""RefSAM3D: type what to segment ("left kidney"), optionally click or draw a box, get a coded 3D segment.

This file holds only what needs the Slicer application: the module description, a thin Qt widget, the
Logic class Slicer expects (it inherits all behaviour from RefSAM3DSlicerLib.logic, which is tested
headless) and the in-app self-test. Model work never runs here: the Logic hands it to one persistent
worker thread, and the widget polls the job with a QTimer, so the panel stays responsive and Cancel works.
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
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

try:
    from slicer.i18n import tr as _
except ImportError:  # Slicer < 5.4
    def _(text):
        return text

log = logging.getLogger(__name__)
POLL_MILLISECONDS = 100
PROMPT_NODE_ROLES = {  # parameter-node role -> (node class, name, colour)
    "IncludePoints": ("vtkMRMLMarkupsFiducialNode", "RefSAM3D include", (0.2, 0.85, 0.35)),
    "ExcludePoints": ("vtkMRMLMarkupsFiducialNode", "RefSAM3D exclude", (0.95, 0.25, 0.25)),
    "BoxROI": ("vtkMRMLMarkupsROINode", "RefSAM3D box", (1.0, 0.85, 0.2)),
}


class RefSAM3DSlicer(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("RefSAM3D")
        self.parent.categories = [_("Segmentation")]
        self.parent.dependencies = []
        self.parent.contributors = ["RefSAM3D developers"]
        self.parent.helpText = _("""
Segment anatomy and lesions in CT and MRI by <b>typing what you want</b> ("left kidney", "liver tumor"),
optionally refined by <b>include/exclude clicks</b> and a <b>box</b>.
<ol>
<li>Select the volume and a segmentation (or leave "Create new segmentation").</li>
<li>Type one or more structures (separate with ';'), optionally place clicks or a box.</li>
<li>Press <b>Segment</b> or Ctrl+Enter. Each result becomes a <b>new</b> segment, named, coloured and coded
with standard terminology. "Not found" means the model judged the structure absent: nothing is added.</li>
<li>To refine a segment, tick <b>Replace segment</b>, choose it and add clicks. <b>Undo</b> reverts the last prompt.</li>
</ol>
The first run asks to install PyTorch and the other packages listed in the extension's
Resources/requirements.txt (the RefSAM3D backend itself ships inside this extension). Work runs on a
background thread on the GPU when available, else the CPU. Not for clinical use.
See <a href="https://github.com/refsam3d/SlicerRefSAM3D">the project page</a>.
""")
        self.parent.acknowledgementText = _("""
RefSAM3D builds on Segment Anything (Kirillov et al., Meta AI, 2023) lifted to 3D, and on CLIP text
encoders (Radford et al., OpenAI, 2021); the method follows "RefSAM3D: Adapting SAM with Cross-modal
Reference for 3D Medical Image Segmentation" (Gao et al., 2024). Module design learned from
SlicerTotalSegmentator, SlicerMONAIAuto3DSeg, SlicerVoxTell and SlicerNNInteractive.
""")


class RefSAM3DSlicerWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """State and UI only: reads the panel, calls the Logic, shows progress and outcome."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._pending = None
        self._pollTimer = None

    # ------------------------------------------------------------------ set-up
    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/RefSAM3DSlicer.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = RefSAM3DSlicerLogic()
        self._pollTimer = qt.QTimer()
        self._pollTimer.setInterval(POLL_MILLISECONDS)
        self._pollTimer.connect("timeout()", self.onPoll)

        self.ui.deviceComboBox.addItems(list(choices.device_choices()))
        self.ui.modalityComboBox.addItems(["auto", "CT", "MR"])
        for choice in choices.model_choices():
            self.ui.modelComboBox.addItem(choice.name)
            self.ui.modelComboBox.setItemData(self.ui.modelComboBox.count - 1, choice.description, qt.Qt.ToolTipRole)
        self.ui.progressBar.setVisible(False)
        self._showSettings(self.logic.settings)
        self._updateCompleter()

        self.ui.segmentButton.connect("clicked(bool)", self.onSegment)
        self.ui.promptLineEdit.connect("returnPressed()", self.onSegment)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.undoButton.connect("clicked(bool)", self.onUndo)
        self.ui.clearPromptsButton.connect("clicked(bool)", self.onClearPrompts)
        self.ui.browseModelButton.connect("clicked(bool)", self.onBrowseModel)
        self.ui.installDependenciesButton.connect("clicked(bool)", self.onInstallDependencies)
        self.ui.unloadModelButton.connect("clicked(bool)", self.onUnloadModel)
        self.ui.inputVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onNodeSelectionChanged)
        self.ui.outputSegmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onNodeSelectionChanged)
        for keys in ("Ctrl+Return", "Ctrl+Enter"):
            shortcut = qt.QShortcut(qt.QKeySequence(keys), self.parent)
            shortcut.setContext(qt.Qt.WidgetWithChildrenShortcut)  # only while this panel has focus
            shortcut.connect("activated()", self.onSegment)
        escape = qt.QShortcut(qt.QKeySequence("Esc"), self.parent)
        escape.setContext(qt.Qt.WidgetWithChildrenShortcut)
        escape.connect("activated()", self.onCancel)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self._showDependencyStatus()
        self._updateButtons()

    def enter(self):
        self._ensurePromptNodes()

    def cleanup(self):
        self.removeObservers()
        if self._pollTimer is not None:
            self._pollTimer.stop()
        if self.logic is not None:
            self.logic.shutdown()

    def onSceneEndClose(self, caller, event):
        self.logic.undo_stack.clear()
        if self.parent.isEntered:
            self._ensurePromptNodes()
        self._updateButtons()

    # ------------------------------------------------------------------ scene <-> panel
    def _ensurePromptNodes(self):
        """One include list, one exclude list and one box per scene, remembered in the parameter node."""
        parameters = self.logic.getParameterNode()
        widgets = {"IncludePoints": self.ui.positivePointsPlaceWidget,
                   "ExcludePoints": self.ui.negativePointsPlaceWidget, "BoxROI": self.ui.boxPlaceWidget}
        for role, (className, name, color) in PROMPT_NODE_ROLES.items():
            node = parameters.GetNodeReference(role)
            if node is None:
                node = slicer.mrmlScene.AddNewNodeByClass(className, name)
                node.CreateDefaultDisplayNodes()
                node.GetDisplayNode().SetSelectedColor(*color)
                node.GetDisplayNode().SetColor(*color)
                parameters.SetNodeReferenceID(role, node.GetID())
            widgets[role].setCurrentNode(node)
            if role != "BoxROI":
                widgets[role].placeMultipleMarkups = slicer.qSlicerMarkupsPlaceWidget.ForcePlaceMultipleMarkups
        for role in ("InputVolume", "OutputSegmentation"):
            node = parameters.GetNodeReference(role)
            selector = self.ui.inputVolumeSelector if role == "InputVolume" else self.ui.outputSegmentationSelector
            if node is not None:
                selector.setCurrentNode(node)

    def onNodeSelectionChanged(self, node=None):
        parameters = self.logic.getParameterNode()
        volume = self.ui.inputVolumeSelector.currentNode()
        segmentation = self.ui.outputSegmentationSelector.currentNode()
        parameters.SetNodeReferenceID("InputVolume", volume.GetID() if volume else None)
        parameters.SetNodeReferenceID("OutputSegmentation", segmentation.GetID() if segmentation else None)
        self.ui.segmentationShow3DButton.setSegmentationNode(segmentation)
        self._updateButtons()

    def _promptNode(self, role):
        return self.logic.getParameterNode().GetNodeReference(role)

    # ------------------------------------------------------------------ settings <-> panel
    def _showSettings(self, settings):
        if self.ui.modelComboBox.findText(settings.model) < 0:
            self.ui.modelComboBox.addItem(settings.model)
        self.ui.modelComboBox.setCurrentText(settings.model)
        self.ui.deviceComboBox.setCurrentText(settings.device)
        self.ui.modalityComboBox.setCurrentText(settings.modality)
        self.ui.thresholdSliderWidget.value = settings.threshold
        self.ui.presenceThresholdSliderWidget.value = min(1.0, settings.presence_threshold)
        self.ui.largestComponentCheckBox.checked = settings.largest_component
        self.ui.fillHolesCheckBox.checked = settings.fill_holes
        self.ui.minimumSizeSpinBox.value = settings.min_size_ml
        self.ui.clearPointsCheckBox.checked = settings.clear_points_after_segment

    def _settingsFromPanel(self):
        return replace(self.logic.settings, model=self.ui.modelComboBox.currentText.strip(),
                       device=self.ui.deviceComboBox.currentText, modality=self.ui.modalityComboBox.currentText,
                       threshold=float(self.ui.thresholdSliderWidget.value),
                       presence_threshold=float(self.ui.presenceThresholdSliderWidget.value),
                       largest_component=bool(self.ui.largestComponentCheckBox.checked),
                       fill_holes=bool(self.ui.fillHolesCheckBox.checked),
                       min_size_ml=float(self.ui.minimumSizeSpinBox.value),
                       clear_points_after_segment=bool(self.ui.clearPointsCheckBox.checked))

    def _updateCompleter(self):
        completer = qt.QCompleter(choices.prompt_completions(self.logic.settings.recent_prompts),
                                  self.ui.promptLineEdit)
        completer.setCaseSensitivity(qt.Qt.CaseInsensitive)
        completer.setFilterMode(qt.Qt.MatchContains)
        self.ui.promptLineEdit.setCompleter(completer)

    # ------------------------------------------------------------------ actions
    def onSegment(self):
        if self.logic.busy or not self._dependenciesReady():
            return
        self.logic.apply_settings(self._settingsFromPanel())
        replaceId = None
        if self.ui.replaceSegmentCheckBox.checked:
            replaceId = self.ui.replaceSegmentSelector.currentSegmentID() or None
            if replaceId is None:
                self._setStatus(_("Choose the segment to replace, or untick 'Replace segment'."), "error")
                return
        try:
            self._pending = self.logic.start_segmentation(
                self.ui.inputVolumeSelector.currentNode(), self.ui.outputSegmentationSelector.currentNode(),
                text=self.ui.promptLineEdit.text, positive_points=self._promptNode("IncludePoints"),
                negative_points=self._promptNode("ExcludePoints"), roi=self._promptNode("BoxROI"),
                replace_segment_id=replaceId)
        except ValueError as error:  # InputError and the engine's PromptError: messages meant for the user
            self._setStatus(str(error), "error")
            return
        except Exception as error:
            log.exception("RefSAM3D could not start")
            self._setStatus(_("Could not start: ") + str(error), "error")
            return
        self._setStatus(_("Segmenting ") + self._pending.description + " ...")
        self._updateButtons()
        self._pollTimer.start()

    def onPoll(self):
        """Runs on the main thread every POLL_MILLISECONDS while a prompt is on the worker thread."""
        if self._pending is None:
            self._pollTimer.stop()
            return
        fraction, message = self._pending.progress
        self.ui.progressBar.setValue(round(100 * fraction))
        self.ui.progressBar.setFormat(f"{message} %p%")
        if not self._pending.done():
            return
        self._pollTimer.stop()
        pending, self._pending = self._pending, None
        try:
            outcome = self.logic.finish_segmentation(pending)  # MRML writes happen here, on the main thread
        except ValueError as error:
            self._setStatus(str(error), "error")
        except Exception as error:
            log.exception("RefSAM3D segmentation failed")
            self._setStatus(_("Segmentation failed: ") + str(error), "error")
        else:
            self._showOutcome(outcome)
        self._updateButtons()

    def _showOutcome(self, outcome):
        if outcome.segmentation_node is not None:
            self.ui.outputSegmentationSelector.setCurrentNode(outcome.segmentation_node)
        if outcome.segment_ids:
            self.ui.replaceSegmentSelector.setCurrentSegmentID(outcome.segment_ids[-1])
        if outcome.added_segment_ids and self.logic.settings.clear_points_after_segment:
            self.onClearPrompts()
        kind = "warning" if outcome.not_found or outcome.cancelled else "ok"
        self._setStatus(outcome.message, kind)
        self._updateCompleter()

    def onCancel(self):
        if self.logic.busy:
            self.logic.cancel()
            self._setStatus(_("Cancelling: stopping after the current batch; nothing will be written."))

    def onUndo(self):
        try:
            self._setStatus(self.logic.undo(slicer.mrmlScene))
        except ValueError as error:
            self._setStatus(str(error), "error")
        self._updateButtons()

    def onClearPrompts(self):
        for role in PROMPT_NODE_ROLES:
            node = self._promptNode(role)
            if node is not None:
                node.RemoveAllControlPoints()

    def onBrowseModel(self):
        path = qt.QFileDialog.getOpenFileName(self.parent, _("Select a RefSAM3D checkpoint"), "",
                                              _("PyTorch checkpoints (*.pt *.pth *.ckpt);;All files (*)"))
        if path:
            self.ui.modelComboBox.addItem(path)
            self.ui.modelComboBox.setCurrentText(path)

    def onUnloadModel(self):
        if not self.logic.busy:
            self.logic.release_model()
            self._setStatus(_("Model unloaded; the next prompt loads it again."))

    def onInstallDependencies(self):
        missing = dependencies.missing_requirements()
        if not missing:
            self._setStatus(_("All dependencies are already installed."))
        else:
            self._installDependencies(missing, ask=True)
        self._showDependencyStatus()

    # ------------------------------------------------------------------ helpers
    def _dependenciesReady(self):
        missing = dependencies.missing_requirements()
        if not missing or self._installDependencies(missing, ask=True):
            return True
        self._setStatus(dependencies.describe_missing(missing) + _(" Press 'Install dependencies' (Model section)."),
                        "error")
        return False

    def _installDependencies(self, missing, ask):
        if slicer.app.testingEnabled():  # never install from a test run
            return False
        installed = False  # tryWithErrorDisplay shows an install error instead of raising it
        try:
            with slicer.util.tryWithErrorDisplay(_("Installing RefSAM3D dependencies failed."), waitCursor=True):
                installed = dependencies.install_requirements(missing, ask=ask)
        finally:
            self._showDependencyStatus()
        return bool(installed) and not dependencies.missing_requirements()

    def _showDependencyStatus(self):
        missing = dependencies.missing_requirements()
        self.ui.dependencyStatusLabel.text = dependencies.describe_missing(missing)
        self.ui.installDependenciesButton.text = _("Install dependencies") if missing else _("Check dependencies")

    def _setStatus(self, text, kind="ok"):
        colors = {"ok": "", "warning": "color: #b06000;", "error": "color: #c00000;"}
        self.ui.statusLabel.setStyleSheet(colors.get(kind, ""))
        self.ui.statusLabel.text = text
        slicer.util.showStatusMessage(text, 5000)

    def _updateButtons(self):
        busy = self.logic is not None and self.logic.busy
        self.ui.segmentButton.enabled = not busy and self.ui.inputVolumeSelector.currentNode() is not None
        self.ui.cancelButton.enabled = busy
        self.ui.undoButton.enabled = not busy and self.logic is not None and self.logic.can_undo
        self.ui.undoButton.toolTip = (_("Undo ") + self.logic.undo_stack.next_description
                                      if self.logic is not None and self.logic.can_undo else _("Nothing to undo"))
        self.ui.progressBar.setVisible(busy)
        for widget in (self.ui.modelComboBox, self.ui.deviceComboBox, self.ui.unloadModelButton,
                       self.ui.installDependenciesButton):
            widget.enabled = not busy


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

    def test_segment_undo_and_not_found(self):
        self.delayDisplay("RefSAM3D: segment, undo, not found")
        if dependencies.missing_requirements(["torch", "numpy", "scipy", "nibabel"]):
            self.delayDisplay("Skipped: PyTorch/backend dependencies are not installed (use 'Install dependencies').")
            return
        import numpy as np
        import torch
        from RefSAM3DSlicerLib.mrml_adapter import segment_tag, volume_from_node

        from RefSAM3DLib.engine.predictor import RefSAM3DPredictor
        from RefSAM3DLib.engine.prompts import Prompt
        from RefSAM3DLib.modeling.config import get_config
        from RefSAM3DLib.modeling.refsam3d import RefSAM3D

        torch.manual_seed(0)
        predictor = RefSAM3DPredictor(RefSAM3D(get_config("tiny")), device="cpu")
        volume = slicer.util.addVolumeFromArray(
            (np.random.default_rng(0).normal(40, 15, (14, 18, 22))).astype(np.int16), np.diag([-2.0, -2.5, 3.0, 1.0]),
            "RefSAM3D test CT")
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        # random weights squeeze all probabilities into a narrow band: pick a threshold that gives a partial mask
        probe, = predictor.open(volume_from_node(volume)).segment(Prompt(text="left kidney"), return_probability=True,
                                                                  presence_threshold=0.0)
        settings = RefSAM3DSettings(model="tiny-test", device="cpu", presence_threshold=0.0,
                                    threshold=float(np.quantile(probe.probability, 0.6)))
        logic = RefSAM3DSlicerLogic(worker=ModelWorker(lambda model, device: predictor), settings=settings)
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


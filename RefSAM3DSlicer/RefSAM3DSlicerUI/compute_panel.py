"""The panel's settings side: the settings shown in and read back from the panel (model, "Compute on" this
computer or a server, post-processing, shortcuts), a server check, choosing a checkpoint and unloading the model.
A mixin of the Qt widget (it needs the Slicer application); settings are stored and applied by
RefSAM3DSlicerLib (settings.py, logic.py), tested headless. The server token lives in Slicer's settings only.

The widget provides ``ui``, ``logic``, ``parent``, ``_serverCheck``, ``_setStatus`` and ``_startPolling``
(whose timer calls ``_pollServerCheck``).
"""
import logging
from dataclasses import replace

import qt
from RefSAM3DSlicerLib.shortcuts import parse_shortcuts

from RefSAM3DSlicerUI.outputs_panel import USER_ERRORS

try:
    from slicer.i18n import tr as _
except ImportError:  # Slicer < 5.4
    def _(text):
        return text

log = logging.getLogger(__name__)


class ComputeSettingsMixin:
    def _showSettings(self, settings):
        if self.ui.modelComboBox.findText(settings.model) < 0:
            self.ui.modelComboBox.addItem(settings.model)
        self.ui.modelComboBox.setCurrentText(settings.model)
        self.ui.computeComboBox.setCurrentIndex(max(0, self.ui.computeComboBox.findData(settings.compute)))
        self.ui.serverUrlLineEdit.text = settings.server_url
        self.ui.serverTokenLineEdit.text = settings.server_token
        self.ui.deviceComboBox.setCurrentText(settings.device)
        self.ui.modalityComboBox.setCurrentText(settings.modality)
        self.ui.thresholdSliderWidget.value = settings.threshold
        self.ui.presenceThresholdSliderWidget.value = min(1.0, settings.presence_threshold)
        self.ui.largestComponentCheckBox.checked = settings.largest_component
        self.ui.fillHolesCheckBox.checked = settings.fill_holes
        self.ui.minimumSizeSpinBox.value = settings.min_size_ml
        self.ui.supersedeCheckBox.checked = settings.supersede_clicks

    def _settingsFromPanel(self):
        return replace(self.logic.settings, model=self.ui.modelComboBox.currentText.strip(),
                       device=self.ui.deviceComboBox.currentText, compute=self.ui.computeComboBox.currentData or "local",
                       server_url=self.ui.serverUrlLineEdit.text.strip(),
                       server_token=self.ui.serverTokenLineEdit.text.strip(),
                       modality=self.ui.modalityComboBox.currentText,
                       threshold=float(self.ui.thresholdSliderWidget.value),
                       presence_threshold=float(self.ui.presenceThresholdSliderWidget.value),
                       largest_component=bool(self.ui.largestComponentCheckBox.checked),
                       fill_holes=bool(self.ui.fillHolesCheckBox.checked),
                       min_size_ml=float(self.ui.minimumSizeSpinBox.value),
                       supersede_clicks=bool(self.ui.supersedeCheckBox.checked),
                       shortcuts=parse_shortcuts(self.ui.shortcutsLineEdit.text))

    def onBrowseModel(self):
        path = qt.QFileDialog.getOpenFileName(self.parent, _("Select a RefSAM3D checkpoint"), "",
                                              _("PyTorch checkpoints (*.pt *.pth *.ckpt);;All files (*)"))
        if path:
            self.ui.modelComboBox.addItem(path)
            self.ui.modelComboBox.setCurrentText(path)

    def onCheckServer(self):
        """Ask the server who it is on a thread of its own; the answer (or one error line) comes via onPoll."""
        self.logic.apply_settings(self._settingsFromPanel())
        try:
            self._serverCheck = self.logic.check_server()
        except USER_ERRORS as error:
            self._setStatus(str(error), "error")
            return
        self._setStatus(_("Asking the server..."))
        self._startPolling()

    def _pollServerCheck(self):
        if not self._serverCheck.done():
            return True
        check, self._serverCheck = self._serverCheck, None
        try:
            self._setStatus(_("Connected: ") + check.result())
        except USER_ERRORS as error:
            self._setStatus(str(error), "error")
        except Exception as error:
            log.exception("RefSAM3D server check failed")
            self._setStatus(_("Failed: ") + str(error), "error")
        return False

    def onUnloadModel(self):
        if not self.logic.busy:
            self.logic.release_model()
            self._setStatus(_("Model unloaded; the next prompt loads it again."))

"""The panel's output side: open the result in Segment Editor, export it (NIfTI, .seg.nrrd, DICOM-SEG, with
the offer to install DICOM-SEG support when it is missing) and run a batch over the loaded volumes or a
sequence. A mixin of the Qt widget (it needs the Slicer application); the work itself is in
RefSAM3DSlicerLib (export.py, batch.py), tested headless. An export first checks that RefSAM3D's packages are
installed (offering to install them), reads the scene on the main thread, then writes on a thread of its own.

The widget provides ``ui``, ``logic``, ``parent``, ``_batch`` / ``_export`` / ``_pip``, ``_selection``,
``_promptNode``, ``_settingsFromPanel``, ``_dependenciesReady``, ``_run``, ``_setStatus`` and ``_startPolling``
(whose timer calls ``_pollBatch`` and ``_pollExport``).
"""
import logging

import qt
import slicer
from RefSAM3DSlicerLib import InputError, dependencies
from RefSAM3DSlicerLib.batch import BatchRun, loaded_volumes, sequence_sources, volume_sources
from RefSAM3DSlicerLib.export import DicomSegSupportMissing, existing_outputs, output_path, prepare_export
from RefSAM3DSlicerLib.prompt_markups import BOX, EXCLUDE, INCLUDE

from RefSAM3DLib.errors import RefSAM3DError

try:
    from slicer.i18n import tr as _
except ImportError:  # Slicer < 5.4
    def _(text):
        return text

log = logging.getLogger(__name__)
USER_ERRORS = (RefSAM3DError, InputError)  # shown as the whole message; anything else is a bug, logged with traceback


class OutputsMixin:
    def onEditInSegmentEditor(self):
        volume, segmentation = self._selection()
        selected = list(self.ui.segmentsTableView.selectedSegmentIDs())
        if segmentation is None:
            self._setStatus(_("Select a segmentation first."), "error")
            return
        slicer.util.selectModule("SegmentEditor")
        editor = slicer.modules.segmenteditor.widgetRepresentation().self().editor
        editor.setSegmentationNode(segmentation)
        if volume is not None:
            setSource = getattr(editor, "setSourceVolumeNode", None) or editor.setMasterVolumeNode  # Slicer < 5.4
            setSource(volume)
        if selected:
            editor.setCurrentSegmentID(selected[0])

    def onExport(self):
        volume, segmentation = self._selection()
        fmt = self.ui.exportFormatComboBox.currentData
        if segmentation is None:
            self._setStatus(_("Select the segmentation to export."), "error")
            return
        if self._export is not None:
            self._setStatus(_("Still writing the previous export; try again when it has finished."), "warning")
            return
        if not self._dependenciesReady():  # the exporters need packages Slicer does not bundle (nibabel, ...)
            return
        folder = qt.QSettings().value("RefSAM3D/exportFolder", qt.QDir.homePath())
        dialog = qt.QFileDialog(self.parent, _("Export segments"), str(output_path(folder, segmentation, fmt)))
        dialog.setAcceptMode(qt.QFileDialog.AcceptSave)
        dialog.setOption(qt.QFileDialog.DontConfirmOverwrite)  # we ask ourselves, including the NIfTI sidecar
        if not dialog.exec_() or not dialog.selectedFiles():
            return
        path = dialog.selectedFiles()[0]
        qt.QSettings().setValue("RefSAM3D/exportFolder", qt.QFileInfo(path).absolutePath())
        database = getattr(slicer, "dicomDatabase", None)
        resolver = database.fileForInstance if database is not None else None
        try:
            existing = existing_outputs(path, fmt)
            overwrite = bool(existing) and slicer.util.confirmOkCancelDisplay(
                _("Replace these files?\n") + "\n".join(str(p) for p in existing), windowTitle=_("RefSAM3D export"))
            if existing and not overwrite:
                return
            with slicer.util.WaitCursor():  # reading the segments out of the scene: main thread, short
                prepared = prepare_export(path, segmentation, volume, fmt, overwrite=overwrite,
                                          file_for_instance=resolver)
        except DicomSegSupportMissing as error:
            self._offerDicomSegSupport(str(error))
            return
        except USER_ERRORS as error:
            self._setStatus(str(error), "error")
            return
        except Exception as error:
            log.exception("RefSAM3D export failed")
            self._setStatus(_("Export failed: ") + str(error), "error")
            return
        self._export = prepared.start()  # the files are written on their own thread
        self._setStatus(_("Exporting to ") + str(prepared.path) + " ...")
        self._startPolling()

    def _pollExport(self):
        """Timer: True while the export thread still writes; then its result (or its error) in the status line."""
        if not self._export.done():
            return True
        finished, self._export = self._export, None
        try:
            result = finished.result()
        except USER_ERRORS as error:
            self._setStatus(str(error), "error")
        except Exception as error:
            log.error("RefSAM3D export failed", exc_info=error)
            self._setStatus(_("Export failed: ") + str(error), "error")
        else:
            skipped = f" (empty, not stored: {', '.join(result.skipped_segments)})" if result.skipped_segments else ""
            self._setStatus(_("Exported to ") + ", ".join(str(p) for p in result.paths) + skipped)
        return False

    def _offerDicomSegSupport(self, message):
        """DICOM-SEG needs pydicom 3 + highdicom 0.23: only on request, since it upgrades Slicer's pydicom."""
        self._setStatus(message, "error")
        if self._pip is not None or slicer.app.testingEnabled():
            return
        if slicer.util.confirmOkCancelDisplay(
                message + _("\n\nInstall DICOM-SEG support now? This upgrades Slicer's pydicom (other DICOM modules "
                            "normally keep working) and Slicer must restart afterwards."),
                windowTitle=_("RefSAM3D DICOM-SEG export")):
            self._pip = dependencies.PipInstall(list(dependencies.DICOMSEG_REQUIREMENTS),
                                                allow_upgrade=("pydicom",)).start()
            self._setStatus(_("Installing DICOM-SEG support ..."))
            self._startPolling()

    def onBatch(self):
        if not self._dependenciesReady():
            return
        self.logic.apply_settings(self._settingsFromPanel())
        sequence = self.ui.batchSequenceSelector.currentNode()
        sources = (sequence_sources(sequence, slicer.mrmlScene) if sequence is not None
                   else volume_sources(loaded_volumes(slicer.mrmlScene)))

        def start():
            self._batch = BatchRun(self.logic, sources, text=self.ui.promptLineEdit.text or None,
                                   positive_points=self._promptNode(INCLUDE), negative_points=self._promptNode(EXCLUDE),
                                   roi=self._promptNode(BOX))
            self._batch.start()

        self._run(start)

    def _pollBatch(self):
        running = self._batch.poll()
        index, total, name, fraction = self._batch.progress
        self.ui.batchProgressBar.setValue(round(100 * (index + fraction) / max(1, total)))
        self.ui.batchProgressBar.setFormat(f"{index + 1}/{total} {name} %p%" if running else "%p%")
        if not running:
            self._setStatus(self._batch.outcome.message, "warning" if self._batch.outcome.failed else "ok")
            self._batch = None
        return running

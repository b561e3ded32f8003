"""The panel's dependency installation: check what the backend needs, install PyTorch the PyTorch extension's way
(light-the-torch) and the rest with pip, each in a separate process the panel polls, and offer the restart Slicer
needs when an imported package changed. A mixin of the Qt widget (it needs the Slicer application); the checking and
installing itself lives in ``dependencies.py``, tested headless.

The widget provides ``ui`` (dependencyStatusLabel, installDependenciesButton), ``_pip`` / ``_pipQueue`` /
``_restartNeeded`` (initialised empty), ``_setStatus`` and ``_startPolling`` (whose timer calls ``_pollPip``).
"""
import logging

import slicer
from RefSAM3DSlicerLib import dependencies

try:
    from slicer.i18n import tr as _
except ImportError:  # Slicer < 5.4
    def _(text):
        return text

log = logging.getLogger(__name__)


class DependencyInstallMixin:
    def onInstallDependencies(self):
        missing = dependencies.missing_requirements()
        if not missing:
            self._setStatus(_("All dependencies are already installed."))
        else:
            self._installDependencies(missing)
        self._showDependencyStatus()

    def _dependenciesReady(self):
        missing = dependencies.missing_requirements()
        if not missing:
            return True
        if self._pip is None:
            self._installDependencies(missing)
        else:
            self._setStatus(_("Still installing RefSAM3D's dependencies; try again when it has finished."), "warning")
        return False

    def _installDependencies(self, missing):
        """light-the-torch, PyTorch and the rest, each in its own pip process the timer polls: Slicer stays usable."""
        if slicer.app.testingEnabled() or self._pip is not None:  # never install from a test run
            return
        if not slicer.util.confirmOkCancelDisplay(
                dependencies.describe_missing(missing) + _("\n\nInstall them now? PyTorch is installed the way the "
                                                         "PyTorch extension does it; everything is downloaded by pip "
                                                         "in the background."),
                windowTitle=_("RefSAM3D dependencies")):
            self._setStatus(dependencies.describe_missing(missing), "error")
            return
        self._pipQueue = dependencies.install_plan(missing)
        self._startNextInstall()

    def _startNextInstall(self):
        if not self._pipQueue:
            return False
        requirements, command = self._pipQueue.pop(0)
        self._pip = dependencies.PipInstall(requirements, command=command).start()
        self._setStatus(_("Installing ") + ", ".join(requirements) + " ...")
        self._startPolling()
        return True

    def _pollPip(self):
        for line in self._pip.poll():
            log.info("pip: %s", line)
            self.ui.dependencyStatusLabel.text = line[:160]
        if not self._pip.done:
            return True
        code = self._pip.returncode
        missing, restart = self._pip.result()
        self._pip.close()
        self._pip = None
        if code == 0 and not missing and self._startNextInstall():
            self._restartNeeded = self._restartNeeded + restart
            return True
        restart, self._restartNeeded = self._restartNeeded + restart, []
        self._pipQueue = []
        self._showDependencyStatus()
        if code != 0 or missing:
            self._setStatus(_("Installation failed; see the Python console for pip's messages: ") + ", ".join(missing),
                            "error")
        elif restart:
            self._setStatus(_("Installed. Slicer must restart to use the new ") + ", ".join(restart) + ".", "warning")
            if slicer.util.confirmOkCancelDisplay(_("Restart Slicer now to finish installing RefSAM3D?")):
                slicer.util.restart()
        else:
            self._setStatus(_("Dependencies installed."))
        return False

    def _showDependencyStatus(self):
        missing = dependencies.missing_requirements()
        self.ui.dependencyStatusLabel.text = dependencies.describe_missing(missing)
        self.ui.installDependenciesButton.text = _("Install dependencies") if missing else _("Check dependencies")

"""A small dialog that runs the whole chain on the user's folders - gap-fill LST ->
downscale soil moisture -> validate against stations - as background tasks
(``QgsProcessingAlgRunnerTask``) with progress and cancel; each step's results open in the
project as after a toolbox run (grouped, styled, temporal)."""

from __future__ import annotations

import logging
from pathlib import Path

from qgis.core import (
    QgsApplication,
    QgsProcessingAlgRunnerTask,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProject,
)
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

log = logging.getLogger("ssm_downscaling.chain")
#: (key, label, storage mode, required) of the inputs, in the order shown
FIELDS = (
    ("lst", "Clear-sky LST folder (K)", "dir", True),
    ("background", "All-weather background LST folder (K)", "dir", True),
    ("dem", "Elevation (m; its grid is the 1 km grid)", "file", True),
    ("ndvi", "NDVI folder", "dir", True),
    ("albedo", "Albedo folder", "dir", True),
    ("ssm", "Coarse soil moisture folder (m³/m³)", "dir", True),
    ("stations", "Station CSV", "file", True),
    ("out", "Output folder", "dir", True),
)
METHODS = (("gwr", "Geographically weighted regression (GWR)"), ("forest", "Random forest"),
           ("dispatch", "DisPATCh"), ("bilinear", "Bilinear interpolation (baseline)"))


def chain_steps(inputs: dict[str, str], method: str = "gwr", min_obs: int = 10) -> list[tuple[str, str, dict]]:
    """``(title, algorithm id, parameters)`` of the three steps on ``inputs``."""
    out = Path(inputs["out"])
    lst, lst_flags = out / "lst_allweather", out / "lst_flags"
    ssm, flags = out / "ssm_1km", out / "ssm_flags"
    return [
        ("Gap-fill LST", "ssm:gapfilllst", {
            "INPUT_LST": inputs["lst"], "INPUT_BACKGROUND": inputs["background"], "INPUT_DEM": inputs["dem"],
            "INPUT_NDVI": inputs["ndvi"], "OUTPUT_LST": str(lst), "OUTPUT_FLAGS": str(lst_flags)}),
        ("Downscale soil moisture", "ssm:downscalessm", {
            "INPUT_SSM": inputs["ssm"], "INPUT_LST": str(lst), "INPUT_LST_FLAGS": str(lst_flags),
            "INPUT_NDVI": inputs["ndvi"], "INPUT_ALBEDO": inputs["albedo"], "INPUT_DEM": inputs["dem"],
            "REFERENCE": inputs["dem"], "METHOD": method, "OUTPUT_SSM": str(ssm), "OUTPUT_FLAGS": str(flags),
            "OUTPUT_UNCERTAINTY": str(out / "ssm_uncertainty"), "OUTPUT_COVERAGE": str(out / "ssm_coverage.csv")}),
        ("Validate against stations", "ssm:validatestations", {
            "PRODUCT": str(ssm), "PRODUCT_NAME": f"downscaled 1 km ({method})", "PRODUCT_2": inputs["ssm"],
            "PRODUCT_2_NAME": "coarse input", "STATIONS": inputs["stations"], "FLAGS": str(flags), "MIN_OBS": min_obs,
            "OUTPUT": str(out / "validation" / "stations.gpkg"), "OUTPUT_TABLE": str(out / "validation" / "metrics.csv"),
            "OUTPUT_HTML": str(out / "validation" / "report.html")}),
    ]


def scene_inputs(scene: str | Path, out: str | Path) -> dict[str, str]:
    """The chain's inputs from a sample scene folder (``ssm:samplescene``'s output)."""
    s = Path(scene)
    i = s / "inputs"
    return {"lst": str(i / "lst"), "background": str(i / "lst_background"), "dem": str(i / "dem.tif"),
            "ndvi": str(i / "ndvi"), "albedo": str(i / "albedo"), "ssm": str(i / "ssm_coarse"),
            "stations": str(s / "stations.csv"), "out": str(out)}


class ChainDialog(QDialog):
    """Runs gap-fill -> downscale -> validate in the background; ``finished_chain(ok,
    message)`` is emitted at the end."""

    finished_chain = pyqtSignal(bool, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle(self.tr("Run the whole chain"))
        self.setObjectName("SsmChainDialog")
        self.widgets: dict[str, QgsFileWidget] = {}
        form = QFormLayout()
        for key, label, mode, _ in FIELDS:
            w = QgsFileWidget()
            w.setStorageMode(QgsFileWidget.StorageMode.GetDirectory if mode == "dir"
                             else QgsFileWidget.StorageMode.GetFile)
            self.widgets[key] = w
            form.addRow(self.tr(label), w)
        self.method = QComboBox()
        for key, label in METHODS:
            self.method.addItem(self.tr(label), key)
        form.addRow(self.tr("Downscaling method"), self.method)
        self.minObs = QSpinBox()
        self.minObs.setRange(3, 10000)
        self.minObs.setValue(10)
        form.addRow(self.tr("Minimum matched days per station"), self.minObs)
        self.sceneButton = QPushButton(self.tr("Fill from a sample scene folder…"))
        self.sceneButton.clicked.connect(self._pick_scene)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.status = QLabel(self.tr("Gap-fill LST, downscale soil moisture and validate against the stations; "
                                     "each step's results open in the project when it finishes."))
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.runButton = self.buttons.addButton(self.tr("Run"), QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancelButton = self.buttons.addButton(self.tr("Cancel run"), QDialogButtonBox.ButtonRole.ActionRole)
        self.cancelButton.setEnabled(False)
        self.runButton.clicked.connect(self.run)
        self.cancelButton.clicked.connect(self.cancel)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.sceneButton)
        layout.addWidget(self.status)
        layout.addWidget(self.progress)
        layout.addWidget(self.buttons)
        self.resize(620, 420)
        self._steps: list[tuple[str, str, dict]] = []
        self._current = None  # (task, alg, context, feedback, title, parameters) of the running step
        self._n_done = 0
        self._cancelled = False

    # inputs -----------------------------------------------------------------------------
    def set_inputs(self, inputs: dict[str, str]) -> None:
        for key, value in inputs.items():
            if key in self.widgets:
                self.widgets[key].setFilePath(str(value))

    def inputs(self) -> dict[str, str]:
        return {key: w.filePath().strip() for key, w in self.widgets.items()}

    def _pick_scene(self) -> None:
        from qgis.PyQt.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self, self.tr("Sample scene folder"))
        if folder:
            self.set_inputs(scene_inputs(folder, Path(folder).parent / f"{Path(folder).name}_chain"))

    # running ----------------------------------------------------------------------------
    def run(self) -> bool:
        values = self.inputs()
        missing = [label for key, label, _, required in FIELDS if required and not values[key]]
        if missing:
            self.status.setText(self.tr("Give: ") + ", ".join(missing))
            return False
        self._steps = chain_steps(values, self.method.currentData(), self.minObs.value())
        self._cancelled = False
        self.runButton.setEnabled(False)
        self.cancelButton.setEnabled(True)
        self._next()
        return True

    def cancel(self) -> None:
        self._cancelled = True
        if self._current is not None:
            self._current[3].cancel()
            self._current[0].cancel()

    def _next(self) -> None:
        if not self._steps:
            self._done(True, self.tr("Done: the results are in the project."))
            return
        title, alg_id, params = self._steps.pop(0)
        n_done = 3 - len(self._steps) - 1
        alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
        if alg is None:
            self._done(False, self.tr(f"{alg_id} is not available"))
            return
        Path(params.get("OUTPUT_HTML", params.get("OUTPUT_SSM", "."))).parent.mkdir(parents=True, exist_ok=True)
        context = QgsProcessingContext()
        context.setProject(QgsProject.instance())
        feedback = QgsProcessingFeedback()
        # progress comes from the task's thread: a bound method of this dialog is called
        # (queued) in the GUI thread, where widgets may be touched
        self._n_done = n_done
        feedback.progressChanged.connect(self._step_progress)
        self.status.setText(self.tr(f"Step {n_done + 1} of 3: {title}…"))
        task = QgsProcessingAlgRunnerTask(alg, params, context, feedback)
        # taskCompleted/taskTerminated carry no arguments: "executed" carries the results map,
        # which PyQt cannot always convert (an abort on QGIS 3.44)
        task.taskCompleted.connect(self._task_completed)
        task.taskTerminated.connect(self._task_terminated)
        self._current = (task, alg, context, feedback, title, params)
        QgsApplication.taskManager().addTask(task)

    def _step_progress(self, percent: float) -> None:
        self.progress.setValue(int((100 * self._n_done + percent) / 3))

    def _task_completed(self) -> None:
        self._task_executed(True)

    def _task_terminated(self) -> None:
        self._task_executed(False)

    def _task_executed(self, ok: bool) -> None:
        if self._current is None:
            return
        _task, alg, context, feedback, title, params = self._current
        try:
            self._step_done(ok, title, alg, context, feedback, params)
        except Exception as exc:  # a slot must not raise (PyQt aborts)
            log.exception("after %s", title)
            self._done(False, self.tr(f"{title}: {exc}"))

    def _step_done(self, ok: bool, title: str, alg, context, feedback, params) -> None:
        self._current = None
        if not ok or self._cancelled:
            what = self.tr("cancelled") if self._cancelled or feedback.isCanceled() else self.tr("failed")
            self._done(False, self.tr(f"{title} {what}; see the log messages (Processing)."))
            return
        try:  # open the results as the toolbox does (grouped, styled, temporal)
            from processing.gui.Postprocessing import handleAlgorithmResults

            handleAlgorithmResults(alg, context, feedback, parameters=params)
        except ImportError:  # pragma: no cover - Processing plugin disabled
            pass
        except Exception as exc:  # a slot must not raise (PyQt aborts): say it and go on
            log.exception("loading the results of %s", title)
            self.status.setText(self.tr(f"{title}: the results could not be opened ({exc})"))
        self._next()

    def _done(self, ok: bool, message: str) -> None:
        self.status.setText(message)
        if ok:
            self.progress.setValue(100)
        self.runButton.setEnabled(True)
        self.cancelButton.setEnabled(False)
        self.finished_chain.emit(ok, message)

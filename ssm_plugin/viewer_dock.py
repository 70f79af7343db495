"""Dock widget to step through daily maps (product + flags) and plot a pixel's series."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsDataProvider,
    QgsLayerTreeGroup,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
)
from qgis.gui import QgsFileWidget, QgsMapToolEmitPoint
from qgis.PyQt import uic
from qgis.PyQt.QtCore import QDate, Qt, QTimer, pyqtSignal
from qgis.PyQt.QtWidgets import QDockWidget, QLabel

from ..core.errors import SsmError
from ..core.series import DailySeries
from . import styling
from .summary import day_summary

log = logging.getLogger("ssm_downscaling.viewer")
FORM_CLASS, _ = uic.loadUiType(str(Path(__file__).with_name("viewer_dock.ui")))
GROUP_NAME = "Daily viewer"

try:  # matplotlib ships with QGIS on every platform, but do not fail without it
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    from .compat import figure_canvas_class

    FigureCanvasQTAgg = figure_canvas_class()

    HAVE_MPL = True
except Exception:  # pragma: no cover - depends on the installation
    HAVE_MPL = False


class ViewerDock(QDockWidget, FORM_CLASS):
    """Shows one day of a daily series (and its flags) on the map; steps, plays, and plots
    the time series of a clicked pixel."""

    closingDock = pyqtSignal()

    def __init__(self, iface, parent=None):
        super().__init__(parent)
        self.setupUi(self)
        self.setObjectName("SsmDailyViewerDock")
        self.iface = iface
        self.series: DailySeries | None = None
        self.flags: DailySeries | None = None
        self.layer_id: str | None = None
        self.flag_layer_id: str | None = None
        self.picked: QgsPointXY | None = None
        self.picked_crs: QgsCoordinateReferenceSystem | None = None

        for w in (self.productFolder, self.flagsFolder):
            w.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        self.productFolder.fileChanged.connect(self.set_product_folder)
        self.flagsFolder.fileChanged.connect(self.set_flags_folder)
        self.daySlider.valueChanged.connect(self.show_day)
        self.dateEdit.dateChanged.connect(self._date_edited)
        self.prevButton.clicked.connect(lambda: self.step(-1))
        self.nextButton.clicked.connect(lambda: self.step(1))
        self.prevButton.setShortcut("Alt+Left")
        self.nextButton.setShortcut("Alt+Right")
        self.timer = QTimer(self)
        self.timer.setInterval(500)
        self.timer.timeout.connect(lambda: self.step(1, wrap=True))
        self.playButton.toggled.connect(self._play)
        self.pickButton.toggled.connect(self._pick_mode)
        self.map_tool = None
        if iface is not None and iface.mapCanvas() is not None:
            self.map_tool = QgsMapToolEmitPoint(iface.mapCanvas())
            self.map_tool.canvasClicked.connect(self._picked)
        self._make_plot()
        self._set_enabled(False)

    # ------------------------------------------------------------------------------------
    def _make_plot(self) -> None:
        layout = self.plotContainer.layout()
        if HAVE_MPL:
            self.figure = Figure(figsize=(4, 3.2))
            self.figure.subplots_adjust(left=0.17, right=0.97, bottom=0.1, top=0.74)
            self.axes = self.figure.add_subplot(111)
            self.canvas = FigureCanvasQTAgg(self.figure)
            layout.addWidget(self.canvas)
        else:  # pragma: no cover
            self.figure = self.axes = self.canvas = None
            layout.addWidget(QLabel(self.tr("Install matplotlib to plot pixel time series.")))

    def _set_enabled(self, on: bool) -> None:
        for w in (self.prevButton, self.nextButton, self.daySlider, self.dateEdit, self.playButton, self.pickButton):
            w.setEnabled(on)

    @property
    def dates(self) -> list[dt.date]:
        return self.series.dates if self.series is not None else []

    @property
    def current_date(self) -> dt.date | None:
        d = self.dates
        return d[self.daySlider.value()] if d else None

    # folders ----------------------------------------------------------------------------
    def set_product_folder(self, path: str) -> bool:
        """Load a folder of daily rasters; returns False (and says why) when it has none."""
        self.playButton.setChecked(False)
        if not path:
            return False
        try:
            series = DailySeries.from_folder(path)
        except SsmError as exc:
            self._error(str(exc))
            return False
        self.series = series
        if self.productFolder.filePath() != path:
            self.productFolder.blockSignals(True)
            self.productFolder.setFilePath(path)
            self.productFolder.blockSignals(False)
        first, last = series.dates[0], series.dates[-1]
        self.daySlider.blockSignals(True)
        self.daySlider.setRange(0, len(series) - 1)
        self.daySlider.setValue(0)
        self.daySlider.blockSignals(False)
        self.dateEdit.blockSignals(True)
        self.dateEdit.setDateRange(QDate(first.year, first.month, first.day), QDate(last.year, last.month, last.day))
        self.dateEdit.blockSignals(False)
        self._set_enabled(True)
        self.show_day(0)
        if self.layer_id is not None and self.iface is not None:
            layer = QgsProject.instance().mapLayer(self.layer_id)
            if layer is not None:
                self.iface.mapCanvas().setExtent(
                    QgsCoordinateTransform(layer.crs(), self.iface.mapCanvas().mapSettings().destinationCrs(),
                                           QgsProject.instance()).transformBoundingBox(layer.extent())
                )
        return True

    def set_flags_folder(self, path: str) -> bool:
        if not path:
            self.flags = None
            return False
        try:
            self.flags = DailySeries.from_folder(path)
        except SsmError as exc:
            self._error(str(exc))
            self.flags = None
            return False
        if self.flagsFolder.filePath() != path:
            self.flagsFolder.blockSignals(True)
            self.flagsFolder.setFilePath(path)
            self.flagsFolder.blockSignals(False)
        if self.series is not None:
            self.show_day(self.daySlider.value())
        return True

    # days ---------------------------------------------------------------------------------
    def step(self, delta: int, wrap: bool = False) -> None:
        n = len(self.dates)
        if not n:
            return
        i = self.daySlider.value() + delta
        i = i % n if wrap else min(max(i, 0), n - 1)
        self.daySlider.setValue(i)

    def go_to(self, day: dt.date) -> None:
        """Show the day of the series nearest to ``day``."""
        if not self.dates:
            return
        i = int(np.argmin([abs((d - day).days) for d in self.dates]))
        self.daySlider.setValue(i)

    def _date_edited(self, qdate: QDate) -> None:
        self.go_to(dt.date(qdate.year(), qdate.month(), qdate.day()))

    def _play(self, on: bool) -> None:
        self.playButton.setText(self.tr("Stop") if on else self.tr("Play"))
        (self.timer.start if on else self.timer.stop)()

    def show_day(self, index: int) -> None:
        if self.series is None or not self.dates:
            return
        day = self.dates[index]
        self.dateEdit.blockSignals(True)
        self.dateEdit.setDate(QDate(day.year, day.month, day.day))
        self.dateEdit.blockSignals(False)
        path = self.series.files[day]
        self.layer_id = self._show_layer(self.layer_id, path, f"{self.series.folder.name} {day}", flags=False)
        flag_path = self.flags.files.get(day) if self.flags is not None else None
        if flag_path is not None:
            self.flag_layer_id = self._show_layer(self.flag_layer_id, flag_path, f"{self.flags.folder.name} {day}", flags=True)
        self.dayInfo.setStyleSheet("")
        self.dayInfo.setText(day_summary(path, flag_path, day))
        self._mark_day_on_plot(day)

    def _show_layer(self, layer_id: str | None, path: Path, name: str, flags: bool) -> str | None:
        project = QgsProject.instance()
        layer = project.mapLayer(layer_id) if layer_id else None
        if layer is not None:
            layer.setDataSource(str(path), name, "gdal", QgsDataProvider.ProviderOptions())
            layer.triggerRepaint()
            return layer.id()
        layer = QgsRasterLayer(str(path), name, "gdal")
        if not layer.isValid():
            self._error(f"{path}: QGIS cannot open this raster")
            return None
        styling.apply_style(layer, path, flags=flags)
        if project.addMapLayer(layer, False) is None:
            self._error(f"{path}: QGIS did not add the layer to the project")
            return None
        node = self._group().insertLayer(0, layer)
        if flags:  # on demand: the flags would hide the values under them
            node.setItemVisibilityChecked(False)
        return layer.id()

    def _group(self) -> QgsLayerTreeGroup:
        root = QgsProject.instance().layerTreeRoot()
        group = root.findGroup(GROUP_NAME)
        return group if group is not None else root.insertGroup(0, GROUP_NAME)

    # pixel time series --------------------------------------------------------------------
    def _pick_mode(self, on: bool) -> None:
        if self.map_tool is None:
            return
        canvas = self.iface.mapCanvas()
        if on:
            canvas.setMapTool(self.map_tool)
        elif canvas.mapTool() is self.map_tool:
            canvas.unsetMapTool(self.map_tool)

    def _picked(self, point: QgsPointXY, _button=None) -> None:
        self.plot_pixel(point, self.iface.mapCanvas().mapSettings().destinationCrs())

    def plot_pixel(self, point: QgsPointXY, crs: QgsCoordinateReferenceSystem) -> np.ndarray | None:
        """Plot the series at ``point`` (in ``crs``); returns the values (one per date)."""
        if self.series is None:
            return None
        from ..core.validation.extract import sample_series

        wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
        p = QgsCoordinateTransform(crs, wgs84, QgsProject.instance()).transform(point)
        lon, lat = np.array([p.x()]), np.array([p.y()])
        values = sample_series(self.series, lon, lat, self.dates).values[0]
        flags = sample_series(self.flags, lon, lat, self.dates).values[0] if self.flags is not None else None
        self.picked, self.picked_crs = point, crs
        n = int(np.isfinite(values).sum())
        self.pickInfo.setText(f"{p.y():.4f} N, {p.x():.4f} E: {n} of {len(values)} days with a value")
        legend = styling.flag_legend(next(iter(self.flags.files.values()))) if self.flags is not None else {}
        self._plot(values, flags, legend)
        return values

    def _plot(self, values: np.ndarray, flags: np.ndarray | None, legend: dict[int, str]) -> None:
        if self.axes is None:
            return
        ax = self.axes
        ax.clear()
        dates = np.array(self.dates, dtype="datetime64[D]")
        ax.plot(dates, values, "-", color="#2b7bd1", lw=1.2, label=self.series.folder.name)
        if flags is not None:
            for code, color in styling.FLAG_COLORS.items():
                sel = flags == code
                if sel.any():
                    label = f"{code} {legend.get(code, '')}".split(" (")[0]  # the legend without its details
                    ax.plot(dates[sel], values[sel], "o", ms=3.5, color=color, label=label)
        else:
            ax.plot(dates, values, "o", ms=2.5, color="#2b7bd1")
        ax.set_ylabel(styling.unit_label(self.series.folder.name), fontsize=8)
        ax.tick_params(labelsize=7)
        locator = mdates.AutoDateLocator(maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=1, frameon=False,
                  borderaxespad=0.0, handlelength=1.2, columnspacing=0.8)
        self._day_line = None
        self._mark_day_on_plot(self.current_date)

    def _mark_day_on_plot(self, day: dt.date | None) -> None:
        if self.axes is None or day is None or not self.axes.lines:
            return
        line = getattr(self, "_day_line", None)
        if line is not None:
            line.remove()
        self._day_line = self.axes.axvline(np.datetime64(day, "D"), color="0.4", lw=0.8, ls="--")
        self.canvas.draw_idle()

    # --------------------------------------------------------------------------------------
    def _error(self, text: str) -> None:
        log.warning(text)
        self.dayInfo.setStyleSheet("color: #b00020")
        self.dayInfo.setText(text)

    def closeEvent(self, event) -> None:
        self.playButton.setChecked(False)
        self.pickButton.setChecked(False)
        self.closingDock.emit()
        super().closeEvent(event)

    def dockLocation(self) -> int:
        return Qt.DockWidgetArea.RightDockWidgetArea

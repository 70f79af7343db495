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
from qgis.gui import QgsFileWidget, QgsMapToolEmitPoint, QgsVertexMarker
from qgis.PyQt import uic
from qgis.PyQt.QtCore import QDate, QDateTime, Qt, QTime, QTimer, pyqtSignal
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import QDockWidget, QLabel

from ..core.errors import SsmError
from ..core.series import DailySeries
from ..processing_provider.compat import NAV_OFF as _NAV_OFF
from ..processing_provider.outputs import set_day_range, stations_csv_layer
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

PICK_HINT = "Click “Pick pixel time series”, then the map, to plot a pixel's days here."


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
        self.stations_layer_id: str | None = None
        self.stations = None  # core.validation.stations.StationSet
        self.picked: QgsPointXY | None = None
        self.picked_crs: QgsCoordinateReferenceSystem | None = None
        self.marker: QgsVertexMarker | None = None
        self._kind: str | None = None  # style kind of the product layer
        self._driving = False  # True while the dock moves the Temporal Controller

        for w in (self.productFolder, self.flagsFolder):
            w.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        self.stationsFile.setStorageMode(QgsFileWidget.StorageMode.GetFile)
        self.stationsFile.setFilter(self.tr("Station CSV (*.csv *.txt)"))
        self.productFolder.fileChanged.connect(self.set_product_folder)
        self.flagsFolder.fileChanged.connect(self.set_flags_folder)
        self.stationsFile.fileChanged.connect(self.set_stations_file)
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
        self.temporal = None
        if iface is not None and iface.mapCanvas() is not None:
            self.map_tool = QgsMapToolEmitPoint(iface.mapCanvas())
            self.map_tool.canvasClicked.connect(self._picked)
            self.temporal = iface.mapCanvas().temporalController()
            if self.temporal is not None:
                self.temporal.updateTemporalRange.connect(self._temporal_range_changed)
        self._make_plot()
        self._set_enabled(False)

    # ------------------------------------------------------------------------------------
    def _make_plot(self) -> None:
        layout = self.plotContainer.layout()
        self.plotHint = QLabel(self.tr(PICK_HINT))
        self.plotHint.setWordWrap(True)
        self.plotHint.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.plotHint.setStyleSheet("color: palette(mid)")
        layout.addWidget(self.plotHint)
        if HAVE_MPL:
            self.figure = Figure(figsize=(4, 3.2), constrained_layout=True)
            self.axes = self.figure.add_subplot(111)
            self.canvas = FigureCanvasQTAgg(self.figure)
            layout.addWidget(self.canvas)
            self.canvas.setVisible(False)  # no empty axes before a pick
        else:  # pragma: no cover
            self.figure = self.axes = self.canvas = None
            self.plotHint.setText(self.tr("Install matplotlib to plot pixel time series."))

    def _set_enabled(self, on: bool) -> None:
        for w in (self.prevButton, self.nextButton, self.daySlider, self.dateEdit, self.playButton, self.pickButton):
            w.setEnabled(on)

    def _clear_plot(self) -> None:
        """Back to the hint: the plot of another series (or none) is not shown."""
        if self.axes is not None:
            self.axes.clear()
            self._day_line = None
            self.canvas.setVisible(False)
        self.plotHint.setVisible(True)
        self.pickInfo.setText("")

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
        changed = self.series is None or self.series.folder != series.folder
        self.series = series
        if changed:
            self._kind = None  # restyle the layer for the new variable
            self._clear_plot()
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
        self.daySlider.setTickInterval(max(1, len(series) // 12))
        self._set_enabled(True)
        self.show_day(0)
        if changed and self.picked is not None:
            self.plot_pixel(self.picked, self.picked_crs)
        if self.layer_id is not None and self.iface is not None:
            layer = QgsProject.instance().mapLayer(self.layer_id)
            if layer is not None:
                self.iface.mapCanvas().setExtent(
                    QgsCoordinateTransform(layer.crs(), self.iface.mapCanvas().mapSettings().destinationCrs(),
                                           QgsProject.instance()).transformBoundingBox(layer.extent())
                )
        return True

    def set_flags_folder(self, path: str) -> bool:
        """Show a folder of daily flags as a second layer (off by default); an empty path
        removes the flag layer."""
        if not path:
            self.flags = None
            self._remove_layer(self.flag_layer_id)
            self.flag_layer_id = None
            self._refresh()
            return False
        try:
            self.flags = DailySeries.from_folder(path)
        except SsmError as exc:
            self._error(str(exc))
            self.flags = None
            self._remove_layer(self.flag_layer_id)
            self.flag_layer_id = None
            return False
        if self.flagsFolder.filePath() != path:
            self.flagsFolder.blockSignals(True)
            self.flagsFolder.setFilePath(path)
            self.flagsFolder.blockSignals(False)
        self._remove_layer(self.flag_layer_id)  # restyled for the new flags
        self.flag_layer_id = None
        self._refresh()
        return True

    def set_stations_file(self, path: str) -> bool:
        """Show a station CSV as a point layer; picked pixels plot the observations of the
        station inside them. An empty path removes the layer."""
        from ..core.validation.stations import read_station_csv

        self._remove_layer(self.stations_layer_id)
        self.stations_layer_id, self.stations = None, None
        if not path:
            self._refresh()
            return False
        try:
            self.stations = read_station_csv(path, depth_range=None, quality_flags=None)
        except (SsmError, OSError, ValueError) as exc:
            self._error(f"{path}: {exc}")
            return False
        if self.stationsFile.filePath() != path:
            self.stationsFile.blockSignals(True)
            self.stationsFile.setFilePath(path)
            self.stationsFile.blockSignals(False)
        layer = stations_csv_layer(path, self.tr("Stations"))
        if layer.isValid():
            layer.temporalProperties().setIsActive(False)  # all stations, whatever the day
            if QgsProject.instance().addMapLayer(layer, False) is not None:
                self._group().insertLayer(0, layer)
                self.stations_layer_id = layer.id()
        self._refresh()
        return True

    def _refresh(self) -> None:
        if self.series is not None:
            self.show_day(self.daySlider.value())
            if self.picked is not None:
                self.plot_pixel(self.picked, self.picked_crs)

    def _remove_layer(self, layer_id: str | None) -> None:
        if layer_id and QgsProject.instance().mapLayer(layer_id) is not None:
            QgsProject.instance().removeMapLayer(layer_id)

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
        self.layer_id = self._show_layer(self.layer_id, path, f"{self.series.folder.name} {day}", day, flags=False)
        flag_path = self.flags.files.get(day) if self.flags is not None else None
        if flag_path is not None:
            self.flag_layer_id = self._show_layer(self.flag_layer_id, flag_path, f"{self.flags.folder.name} {day}", day,
                                                  flags=True)
        self.dayInfo.setStyleSheet("")
        self.dayInfo.setText(day_summary(path, flag_path, day))
        self._mark_day_on_plot(day)
        self._drive_temporal(day)

    # the Temporal Controller ------------------------------------------------------------
    def _temporal_active(self) -> bool:
        nav = self.temporal
        if nav is None or not self.followTemporal.isChecked() or not hasattr(nav, "navigationMode"):
            return False
        return nav.navigationMode() != _NAV_OFF

    def _temporal_range_changed(self, rng) -> None:
        """Follow the Temporal Controller: show the day of its current frame."""
        if self._driving or not self._temporal_active() or not self.dates or not rng.begin().isValid():
            return
        qd = rng.begin().date()
        self.go_to(dt.date(qd.year(), qd.month(), qd.day()))

    def _drive_temporal(self, day: dt.date) -> None:
        """Move the Temporal Controller to ``day`` when it is on and elsewhere."""
        if self._driving or not self._temporal_active() or not hasattr(self.temporal, "findBestFrameNumberForFrameStart"):
            return
        nav = self.temporal
        current = nav.dateTimeRangeForFrameNumber(nav.currentFrameNumber()).begin().date()
        if current.isValid() and dt.date(current.year(), current.month(), current.day()) == day:
            return
        frame = nav.findBestFrameNumberForFrameStart(QDateTime(QDate(day.year, day.month, day.day), QTime(0, 0)))
        self._driving = True
        try:
            nav.setCurrentFrameNumber(frame)
        finally:
            self._driving = False

    def _show_layer(self, layer_id: str | None, path: Path, name: str, day: dt.date, flags: bool) -> str | None:
        """Show ``path`` in the dock's layer (created, or re-pointed and kept styled), dated
        ``day`` for the Temporal Controller."""
        project = QgsProject.instance()
        layer = project.mapLayer(layer_id) if layer_id else None
        if layer is not None:
            layer.setDataSource(str(path), name, "gdal", QgsDataProvider.ProviderOptions())
            if not flags and self._kind is None:  # a new folder: its variable's style
                self._kind = styling.apply_style(layer, path) or "other"
            set_day_range(layer, day)
            layer.triggerRepaint()
            return layer.id()
        layer = QgsRasterLayer(str(path), name, "gdal")
        if not layer.isValid():
            self._error(f"{path}: QGIS cannot open this raster")
            return None
        kind = styling.apply_style(layer, path, flags=flags)
        if not flags:
            self._kind = kind or "other"
        set_day_range(layer, day)
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
        self._place_marker(point, crs)
        n = int(np.isfinite(values).sum())
        station = self._station_at(point, crs)
        text = f"{p.y():.4f} N, {p.x():.4f} E: {n} of {len(values)} days with a value"
        if station is not None:
            text += f"; station {self.stations.ids[station]}"
        self.pickInfo.setText(text)
        first_flags = next(iter(self.flags.files.values())) if self.flags is not None else None
        legend = styling.flag_legend(first_flags) if first_flags is not None else {}
        kind = styling.kind_for(first_flags, flags=True) if first_flags is not None else None
        self._plot(values, flags, legend, styling.flag_colors(kind), station)
        return values

    def _place_marker(self, point: QgsPointXY, crs: QgsCoordinateReferenceSystem) -> None:
        """A cross on the map at the picked pixel."""
        if self.iface is None or self.iface.mapCanvas() is None:
            return
        canvas = self.iface.mapCanvas()
        xy = QgsCoordinateTransform(crs, canvas.mapSettings().destinationCrs(), QgsProject.instance()).transform(point)
        if self.marker is None:
            self.marker = QgsVertexMarker(canvas)
            self.marker.setIconType(QgsVertexMarker.IconType.ICON_X)
            self.marker.setColor(QColor("#d7191c"))
            self.marker.setIconSize(14)
            self.marker.setPenWidth(3)
        self.marker.setCenter(xy)
        self.marker.show()

    def _station_at(self, point: QgsPointXY, crs: QgsCoordinateReferenceSystem) -> int | None:
        """Index of the station inside the picked pixel of the product (the nearest when
        several), or None."""
        layer = QgsProject.instance().mapLayer(self.layer_id) if self.layer_id else None
        if self.stations is None or layer is None or not len(self.stations):
            return None
        to_layer = QgsCoordinateTransform(crs, layer.crs(), QgsProject.instance())
        wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
        from_wgs = QgsCoordinateTransform(wgs84, layer.crs(), QgsProject.instance())
        p = to_layer.transform(point)
        ext, w, h = layer.extent(), layer.width(), layer.height()
        dx, dy = ext.width() / max(w, 1), ext.height() / max(h, 1)
        col, row = np.floor((p.x() - ext.xMinimum()) / dx), np.floor((ext.yMaximum() - p.y()) / dy)
        best, best_d = None, np.inf
        for i, (lon, lat) in enumerate(zip(self.stations.lon, self.stations.lat)):
            s_xy = from_wgs.transform(QgsPointXY(float(lon), float(lat)))
            c = np.floor((s_xy.x() - ext.xMinimum()) / dx)
            r = np.floor((ext.yMaximum() - s_xy.y()) / dy)
            d = (s_xy.x() - p.x()) ** 2 + (s_xy.y() - p.y()) ** 2
            if c == col and r == row and d < best_d:
                best, best_d = i, d
        return best

    def _plot(self, values: np.ndarray, flags: np.ndarray | None, legend: dict[int, str],
              colors: dict[int, str], station: int | None = None) -> None:
        if self.axes is None:
            return
        self.plotHint.setVisible(False)
        self.canvas.setVisible(True)
        ax = self.axes
        ax.clear()
        dates = np.array(self.dates, dtype="datetime64[D]")
        ax.plot(dates, values, "-", color="#2b7bd1", lw=1.2, label=self.series.folder.name)
        if flags is not None:
            for code, color in colors.items():
                sel = flags == code
                if sel.any():
                    label = f"{code} {legend.get(code, '')}".split(" (")[0]  # the legend without its details
                    ax.plot(dates[sel], values[sel], "o", ms=3.5, color=color, label=label)
        else:
            ax.plot(dates, values, "o", ms=2.5, color="#2b7bd1")
        if station is not None:
            sdates = np.array(self.stations.dates, dtype="datetime64[D]")
            svalues = self.stations.values[station]
            sel = np.isfinite(svalues) & (sdates >= dates[0]) & (sdates <= dates[-1])
            ax.plot(sdates[sel], svalues[sel], "x", ms=4, color="black", label=f"station {self.stations.ids[station]}")
        ax.set_ylabel(styling.unit_label(self.series.folder.name), fontsize=8)
        ax.tick_params(labelsize=7)
        locator = mdates.AutoDateLocator(maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=2, frameon=False,
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

    def remove_marker(self) -> None:
        if self.marker is not None and self.iface is not None:
            self.iface.mapCanvas().scene().removeItem(self.marker)
            self.marker = None

    def closeEvent(self, event) -> None:
        self.playButton.setChecked(False)
        self.pickButton.setChecked(False)
        self.remove_marker()
        self.closingDock.emit()
        super().closeEvent(event)

    def dockLocation(self) -> Qt.DockWidgetArea:
        return Qt.DockWidgetArea.RightDockWidgetArea

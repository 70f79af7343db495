"""Run inside the QGIS desktop (``qgis --code``) by ``scripts/screenshot.py``: open the demo
project with the plugin, the daily viewer on a mid-season day with a picked pixel and the
Temporal Controller on that day, then save a screenshot of the main window and quit.

Reads ``SSM_SHOT_PROJECT``, ``SSM_SHOT_OUT`` and ``SSM_SHOT_DEMO`` from the environment.
"""

from __future__ import annotations

import datetime as dt
import os
import traceback
from pathlib import Path

import qgis.utils
from qgis.core import QgsApplication, QgsCoordinateReferenceSystem, QgsPointXY, QgsProject
from qgis.PyQt.QtCore import QTimer

PROJECT = Path(os.environ["SSM_SHOT_PROJECT"])
OUT = Path(os.environ["SSM_SHOT_OUT"])
DEMO = Path(os.environ.get("SSM_SHOT_DEMO", PROJECT.parent))
LOG = OUT.with_suffix(".log")
OUT.parent.mkdir(parents=True, exist_ok=True)
iface = qgis.utils.iface


def log(msg: str) -> None:
    with LOG.open("a") as f:
        print(msg, file=f)


def finish(code: int) -> None:
    QgsProject.instance().setDirty(False)  # quit without the "save changes?" question
    os._exit(code)


def setup() -> None:
    try:
        if "ssm_downscaling" not in qgis.utils.active_plugins:
            qgis.utils.loadPlugin("ssm_downscaling")
            qgis.utils.startPlugin("ssm_downscaling")
        plugin = qgis.utils.plugins["ssm_downscaling"]
        iface.mainWindow().setGeometry(0, 0, 1600, 1000)
        iface.mainWindow().showMaximized()
        if not QgsProject.instance().read(str(PROJECT)):
            raise RuntimeError(f"cannot read {PROJECT}: {QgsProject.instance().error()}")
        plugin.action.setChecked(True)
        dock = plugin.dock
        dock.set_product_folder(str(DEMO / "ssm_1km"))
        dock.set_flags_folder(str(DEMO / "ssm_flags"))
        stations = DEMO / "scene" / "stations.csv"
        if stations.exists():
            dock.set_stations_file(str(stations))
        days = dock.dates
        day = days[len(days) // 2]
        # the Temporal Controller on, one-day frames over the series, on the chosen day
        from qgis.core import QgsTemporalNavigationObject

        nav = iface.mapCanvas().temporalController()
        if plugin.temporal is not None:
            plugin.temporal._last = None
            plugin.temporal.update()
        if isinstance(nav, QgsTemporalNavigationObject):
            from ssm_downscaling.processing_provider.compat import NAV_ANIMATED

            nav.setNavigationMode(NAV_ANIMATED)
        dock.go_to(day)
        # the dock's own layer would duplicate the run's group: hide it, keep the pick on the run
        root = QgsProject.instance().layerTreeRoot()
        group = root.findGroup("Daily viewer")
        if group is not None:
            group.setItemVisibilityChecked(False)
            group.setExpanded(False)
        from qgis.PyQt.QtCore import Qt
        from qgis.PyQt.QtWidgets import QDockWidget

        win = iface.mainWindow()
        for w in win.findChildren(QDockWidget):
            if "Temporal" in w.windowTitle():
                win.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, w)
                w.show()
                win.resizeDocks([w], [110], Qt.Orientation.Vertical)
            elif w.windowTitle() == "Browser":
                w.hide()
        if dock.stations is not None and len(dock.stations):
            i = int(len(dock.stations) // 3)
            pt = QgsPointXY(float(dock.stations.lon[i]), float(dock.stations.lat[i]))
            dock.plot_pixel(pt, QgsCoordinateReferenceSystem("EPSG:4326"))
        layer = QgsProject.instance().mapLayer(dock.layer_id)
        canvas = iface.mapCanvas()
        if layer is not None:
            canvas.setDestinationCrs(layer.crs())
            ext = layer.extent()
            ext.scale(1.05)
            canvas.setExtent(ext)
        canvas.refresh()
        log(f"day {day}, {len(days)} days, layers {len(QgsProject.instance().mapLayers())}")
        QTimer.singleShot(6000, grab)
    except Exception:
        log(traceback.format_exc())
        finish(2)


def grab() -> None:
    try:
        canvas = iface.mapCanvas()
        if canvas.isDrawing():
            QTimer.singleShot(1000, grab)
            return
        QgsApplication.processEvents()
        OUT.parent.mkdir(parents=True, exist_ok=True)
        ok = iface.mainWindow().grab().save(str(OUT))
        log(f"saved {OUT}: {ok} at {dt.datetime.now():%H:%M:%S}")
        finish(0 if ok else 3)
    except Exception:
        log(traceback.format_exc())
        finish(2)


log("started")
QTimer.singleShot(3000, setup)
QTimer.singleShot(150_000, lambda: (log("gave up"), finish(4)))

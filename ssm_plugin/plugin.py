"""The plugin class QGIS instantiates through ``classFactory``."""

from __future__ import annotations

from pathlib import Path

from qgis.core import Qgis, QgsApplication
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from ..core.deps import describe_missing, missing_dependencies
from ..processing_provider.provider import SsmProvider
from . import logbridge

ICON = Path(__file__).resolve().parent / "icons" / "icon.svg"
MENU = "Soil Moisture Downscaling"


class SsmDownscalingPlugin:
    """Registers the ``ssm`` Processing provider and the GUI parts."""

    def __init__(self, iface):
        self.iface = iface
        self.provider: SsmProvider | None = None
        self.log_handler = None
        self.missing = []
        self.action: QAction | None = None
        self.chain_action: QAction | None = None
        self.dock = None
        self.temporal = None

    # Processing (also called by qgis_process, without a GUI) ------------------------------
    def initProcessing(self) -> None:
        if self.provider is None:
            self.provider = SsmProvider()
            if not QgsApplication.processingRegistry().addProvider(self.provider):
                # addProvider deletes a rejected provider (duplicate id): do not touch it again
                self.provider = None

    # GUI ---------------------------------------------------------------------------------
    def initGui(self) -> None:
        self.log_handler = logbridge.install()
        self.initProcessing()
        self.missing = missing_dependencies()
        if self.missing and self.iface is not None:
            self.iface.messageBar().pushMessage(
                "Soil Moisture Downscaling",
                describe_missing(self.missing).replace("\n", " | "),
                Qgis.MessageLevel.Warning,
                0,
            )

        self.action = QAction(QIcon(str(ICON)), "Soil moisture daily viewer", self.iface.mainWindow())
        self.action.setObjectName("ssmDailyViewerAction")
        self.action.setCheckable(True)
        self.action.setToolTip("Step through daily soil-moisture maps and plot pixel time series")
        self.action.toggled.connect(self.toggle_dock)
        self.iface.addRasterToolBarIcon(self.action)
        self.iface.addPluginToRasterMenu(MENU, self.action)
        self.chain_action = QAction(QIcon(str(ICON)), "Run the whole chain…", self.iface.mainWindow())
        self.chain_action.setObjectName("ssmRunChainAction")
        self.chain_action.setToolTip("Gap-fill LST, downscale soil moisture and validate on your folders, in the background")
        self.chain_action.triggered.connect(self.open_chain_dialog)
        self.iface.addPluginToRasterMenu(MENU, self.chain_action)

        from .temporal import TemporalSync

        self.temporal = TemporalSync(self.iface)

    def open_chain_dialog(self) -> None:
        from .chain_dialog import ChainDialog

        if getattr(self, "chain_dialog", None) is None:
            self.chain_dialog = ChainDialog(self.iface.mainWindow())
        self.chain_dialog.show()
        self.chain_dialog.raise_()

    def toggle_dock(self, show: bool) -> None:
        if show and self.dock is None:
            from .viewer_dock import ViewerDock

            self.dock = ViewerDock(self.iface, self.iface.mainWindow())
            self.dock.closingDock.connect(lambda: self.action.setChecked(False))
            self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.dock)
        if self.dock is not None:
            self.dock.setVisible(show)

    def unload(self) -> None:
        if self.action is not None:
            self.iface.removePluginRasterMenu(MENU, self.action)
            self.iface.removeRasterToolBarIcon(self.action)
            self.action = None
        if self.chain_action is not None:
            self.iface.removePluginRasterMenu(MENU, self.chain_action)
            self.chain_action = None
        if getattr(self, "chain_dialog", None) is not None:
            self.chain_dialog.cancel()
            self.chain_dialog.deleteLater()
            self.chain_dialog = None
        if self.temporal is not None:
            self.temporal.disconnect_all()
            self.temporal = None
        if self.dock is not None:
            self.dock.remove_marker()
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.log_handler is not None:
            logbridge.uninstall(self.log_handler)
            self.log_handler = None

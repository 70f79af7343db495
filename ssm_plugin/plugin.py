"""The plugin class QGIS instantiates through ``classFactory``."""

from __future__ import annotations

from qgis.core import Qgis, QgsApplication

from ..core.deps import describe_missing, missing_dependencies
from ..processing_provider.provider import SsmProvider
from . import logbridge


class SsmDownscalingPlugin:
    """Registers the ``ssm`` Processing provider and the GUI parts."""

    def __init__(self, iface):
        self.iface = iface
        self.provider: SsmProvider | None = None
        self.log_handler = None
        self.missing = []

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
                Qgis.Warning,
                0,
            )

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.log_handler is not None:
            logbridge.uninstall(self.log_handler)
            self.log_handler = None

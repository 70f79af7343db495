"""The ``ssm`` Processing provider; algorithms are discovered from ``alg_*.py`` modules."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

from qgis.core import Qgis, QgsMessageLog, QgsProcessingModelAlgorithm, QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .base import SsmAlgorithm

ICON = Path(__file__).resolve().parent.parent / "ssm_plugin" / "icons" / "icon.svg"
MODELS = Path(__file__).resolve().parent / "models"


def algorithm_classes() -> list[type[SsmAlgorithm]]:
    """Every concrete :class:`SsmAlgorithm` defined in ``processing_provider/alg_*.py``."""
    found: list[type[SsmAlgorithm]] = []
    pkg_dir = Path(__file__).resolve().parent
    for info in sorted(pkgutil.iter_modules([str(pkg_dir)]), key=lambda i: i.name):
        if not info.name.startswith("alg_"):
            continue
        try:
            mod = importlib.import_module(f"{__package__}.{info.name}")
        except Exception as exc:  # one broken algorithm must not hide the others
            QgsMessageLog.logMessage(f"Cannot load algorithm module {info.name}: {exc}", "SSM downscaling", Qgis.MessageLevel.Critical)
            continue
        for _, cls in inspect.getmembers(mod, inspect.isclass):
            if issubclass(cls, SsmAlgorithm) and cls is not SsmAlgorithm and cls.__module__ == mod.__name__:
                found.append(cls)
    return found


class SsmProvider(QgsProcessingProvider):
    """Soil moisture downscaling algorithms (``ssm:*``)."""

    def id(self) -> str:
        return "ssm"

    def name(self) -> str:
        return "Soil moisture downscaling"

    def longName(self) -> str:
        from .. import __version__

        return f"Soil moisture downscaling {__version__}"

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def svgIconPath(self) -> str:
        return str(ICON)

    def loadAlgorithms(self) -> None:
        for cls in algorithm_classes():
            self.addAlgorithm(cls())
        for model in example_models():
            self.addAlgorithm(model)


def example_models() -> list[QgsProcessingModelAlgorithm]:
    """The Graphical Modeler workflows shipped in ``models/*.model3`` (listed in the toolbox
    under this provider, id ``ssm:<model name>``)."""
    found = []
    for path in sorted(MODELS.glob("*.model3")):
        model = QgsProcessingModelAlgorithm()
        if model.fromFile(str(path)):
            model.setSourceFilePath(str(path))
            found.append(model)
        else:  # pragma: no cover - a broken file must not hide the tools
            QgsMessageLog.logMessage(f"Cannot load the model {path.name}", "SSM downscaling", Qgis.MessageLevel.Warning)
    return found

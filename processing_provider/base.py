"""Shared base of the ``ssm`` algorithms: naming, help, logging/progress bridges, errors.

Algorithms stay thin: parse parameters, call ``core`` inside :meth:`SsmAlgorithm.core_call`,
return outputs. Nothing here touches the GUI interface, the map canvas or the current project.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..core.errors import Cancelled, SsmError

LOGGER_NAME = "ssm_downscaling"
ICON = Path(__file__).resolve().parent.parent / "ssm_plugin" / "icons" / "icon.svg"
STYLES = Path(__file__).resolve().parent / "styles"


def _not_a_finite_number(value: Any) -> str | None:
    """Why ``value`` (as given to a number parameter) is not a finite number, else None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            v = float(value)
        except ValueError:
            return f"{value!r} is not a number"
    elif isinstance(value, (int, float)):
        v = float(value)
    else:
        return None  # expressions, property definitions: QGIS evaluates them
    if not math.isfinite(v):
        return f"{value!r} is not a finite number"
    return None


class FeedbackLogHandler(logging.Handler):
    """Forwards ``core`` log records to a Processing feedback object."""

    def __init__(self, feedback: QgsProcessingFeedback):
        super().__init__(level=logging.INFO)
        self.feedback = feedback
        self.warnings: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
        except Exception:  # pragma: no cover - formatting errors must not kill the run
            msg = str(record.msg)
        if record.levelno >= logging.WARNING:
            self.warnings.append(msg)
            self.feedback.pushWarning(msg)
        elif record.levelno >= logging.INFO:
            self.feedback.pushInfo(msg)
        else:  # pragma: no cover
            self.feedback.pushDebugInfo(msg)


class StylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies a QML style (and optionally a name) to an output layer once it is loaded."""

    _keep: list[StylePostProcessor] = []  # Processing holds a raw pointer: keep ours alive

    def __init__(self, qml: Path):
        super().__init__()
        self.qml = str(qml)

    def postProcessLayer(self, layer, context, feedback) -> None:
        if layer is not None and Path(self.qml).exists():
            layer.loadNamedStyle(self.qml)
            layer.triggerRepaint()

    @classmethod
    def create(cls, qml: Path) -> StylePostProcessor:
        pp = cls(qml)
        cls._keep.append(pp)
        return pp


class SsmAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses set NAME, DISPLAY_NAME, GROUP, GROUP_ID, HELP and implement
    ``initAlgorithm`` and ``processAlgorithm``."""

    NAME = ""
    DISPLAY_NAME = ""
    GROUP = "Soil moisture"
    GROUP_ID = "soilmoisture"
    HELP = ""
    TAGS = ""

    # identity -------------------------------------------------------------------------
    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:
        return self.tr(self.DISPLAY_NAME)

    def group(self) -> str:
        return self.tr(self.GROUP)

    def groupId(self) -> str:
        return self.GROUP_ID

    def shortHelpString(self) -> str:
        return self.tr(self.HELP)

    def tags(self) -> list[str]:
        return [t.strip() for t in self.TAGS.split(",") if t.strip()]

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def createInstance(self) -> SsmAlgorithm:
        return type(self)()

    def tr(self, text: str) -> str:
        return QCoreApplication.translate("SsmAlgorithm", text)

    # helpers for subclasses ---------------------------------------------------------
    @contextlib.contextmanager
    def core_call(self, feedback: QgsProcessingFeedback) -> Iterator[FeedbackLogHandler]:
        """Run ``core`` code: its log goes to ``feedback``; its errors become
        ``QgsProcessingException``; a cancellation becomes a clear exception too, so
        that nothing downstream (a model) mistakes a partial run for a result."""
        handler = FeedbackLogHandler(feedback)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger = logging.getLogger(LOGGER_NAME)
        old_level = logger.level
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
        try:
            yield handler
        except Cancelled as exc:
            raise QgsProcessingException(self.tr("Cancelled by the user; no incomplete output was left behind.")) from exc
        except SsmError as exc:
            raise QgsProcessingException(str(exc)) from exc
        except MemoryError as exc:
            raise QgsProcessingException(
                self.tr("Out of memory: try a smaller region, fewer days or a smaller block size.")
            ) from exc
        except QgsProcessingException:
            raise
        except OSError as exc:  # a file system error the checks could not foresee (disk full, removed folder)
            where = exc.filename or "a file"
            raise QgsProcessingException(self.tr(
                f"{where}: {exc.strerror or exc}; check that the folder exists, is writable and has free space "
                "(no incomplete output was left under a final name)")) from exc
        except Exception as exc:  # a bug, not a user error: a short message here, the traceback in the log
            feedback.pushDebugInfo("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
            logging.getLogger(LOGGER_NAME).debug("unexpected error", exc_info=True)
            raise QgsProcessingException(self.tr(
                f"Unexpected error in {self.displayName()}: {type(exc).__name__}: {exc}. This is a bug, not a "
                "problem with your data: the details are in the log; please report them.")) from exc
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)

    def checkParameterValues(self, parameters, context):
        """QGIS's checks, plus: number parameters must be numbers and finite (QGIS reads
        ``abc`` as 0 and accepts ``nan``, which would silently change the method)."""
        for d in self.parameterDefinitions():
            if d.type() != "number" or d.name() not in parameters:
                continue
            bad = _not_a_finite_number(parameters[d.name()])
            if bad:
                return False, self.tr(f"{d.name()}: {bad}")
        return super().checkParameterValues(parameters, context)

    @staticmethod
    def progress_args(feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """``progress`` and ``is_cancelled`` keyword arguments for core functions."""
        return {"progress": feedback.setProgress, "is_cancelled": feedback.isCanceled}

    def parameter_path(
        self, parameters: dict, name: str, context: QgsProcessingContext, optional: bool = False
    ) -> str | None:
        """The path of a file/folder parameter; a clear error when it is empty (unless
        ``optional``, then None) or does not exist."""
        path = self.parameterAsFile(parameters, name, context)
        if not path:
            if optional:
                return None
            raise QgsProcessingException(self.tr(f"{name}: give a file or folder"))
        if not Path(path).exists():
            raise QgsProcessingException(self.tr(f"{name}: {path} does not exist"))
        return path

    def raster_path(self, parameters: dict, name: str, context: QgsProcessingContext) -> str | None:
        """The path of a raster-layer parameter (None when empty). A file path is used as
        given: loading it as a QGIS layer would leave a ``.aux.xml`` beside the user's file."""
        value = parameters.get(name)
        if value in (None, ""):
            return None
        if isinstance(value, (str, Path)) and Path(str(value)).is_file():
            return str(value)
        layer = self.parameterAsRasterLayer(parameters, name, context)
        if layer is None:
            raise QgsProcessingException(self.tr(f"{name}: cannot open {value!r} as a raster layer"))
        return layer.source()

    def parameter_date(self, parameters: dict, name: str, context: QgsProcessingContext) -> dt.date | None:
        """A date parameter (``QgsProcessingParameterDateTime`` of type Date) or None when empty."""
        if parameters.get(name) in (None, ""):
            return None
        # QGIS 3.22 has no parameterAsDate; parameterAsDateTime reads dates and ISO strings
        qdt = self.parameterAsDateTime(parameters, name, context)
        if qdt is None or not qdt.isValid():
            raise QgsProcessingException(self.tr(f"{name}: not a valid date: {parameters.get(name)!r}"))
        qdate = qdt.date()
        return dt.date(qdate.year(), qdate.month(), qdate.day())

    def date_range(
        self, parameters: dict, start: str, end: str, context: QgsProcessingContext
    ) -> tuple[dt.date | None, dt.date | None]:
        """``(start, end)`` dates (None = open) with a clear error when reversed."""
        a = self.parameter_date(parameters, start, context)
        b = self.parameter_date(parameters, end, context)
        if a is not None and b is not None and b < a:
            raise QgsProcessingException(self.tr(f"The end date {b} is before the start date {a}."))
        return a, b

    @staticmethod
    def load_raster_on_completion(
        context: QgsProcessingContext, path: str | Path, name: str, style: str | None = None
    ) -> None:
        """Ask Processing to load a raster when the algorithm finishes, styled with ``styles/<style>.qml``."""
        layer = QgsRasterLayer(str(path), name, "gdal")
        if not layer.isValid():
            return
        context.temporaryLayerStore().addMapLayer(layer)
        details = QgsProcessingContext.LayerDetails(name, context.project(), name)
        if style:
            details.setPostProcessor(StylePostProcessor.create(STYLES / f"{style}.qml"))
        context.addLayerToLoadOnCompletion(layer.id(), details)

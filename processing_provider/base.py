"""Shared base of the ``ssm`` algorithms: naming, help, logging/progress bridges, errors.

Algorithms stay thin: parse parameters, call ``core`` inside :meth:`SsmAlgorithm.core_call`,
return outputs. Nothing here touches the GUI interface, the map canvas or the current project.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import re
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..core.errors import Cancelled, SsmError
from .compat import NUMBER_DOUBLE

LOGGER_NAME = "ssm_downscaling"
ICON = Path(__file__).resolve().parent.parent / "ssm_plugin" / "icons" / "icon.svg"
STYLES = Path(__file__).resolve().parent / "styles"
#: metadata key of an enum parameter holding its option keys (the names used in scripts)
ENUM_KEYS = "ssm_enum_keys"
HOMEPAGE = "https://github.com/ssm-downscaling/qgis-ssm-downscaling"


def decimals_for(value: float | None, minimum: float | None = None) -> int:
    """Decimals a dialog shows for a double parameter: those of its default (or minimum),
    at least 1 and at most 3 (not QGIS's six)."""
    for v in (value, minimum):
        if v is None:
            continue
        text = f"{float(v):.6f}".rstrip("0")
        return min(3, max(1, len(text.split(".")[1]) if "." in text else 1))
    return 2


def enum_parameter(name: str, label: str, choices: dict[str, str], default: str) -> QgsProcessingParameterEnum:
    """An enum parameter whose drop-down shows readable ``choices`` labels (``{key: label}``)
    and that accepts, in ``processing.run``, ``qgis_process`` and saved models, the option's
    index (``2``, ``"2"``), its key (``"dispatch"``) or its label (see :func:`enum_key`)."""
    keys = list(choices)
    p = QgsProcessingParameterEnum(name, label, options=list(choices.values()), defaultValue=keys.index(default))
    p.setMetadata({ENUM_KEYS: keys})
    return p


def enum_key(definition: QgsProcessingParameterEnum, value: Any) -> str | None:
    """The key of an enum ``value`` given as an index (int or digit string), a key or a label
    (case-insensitive); the default's key when empty; None when it matches nothing."""
    keys = list(definition.metadata().get(ENUM_KEYS) or definition.options())
    labels = [o.lower() for o in definition.options()]
    if value in (None, "") or (isinstance(value, list) and not value):
        value = definition.defaultValue()
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, int):
        return keys[value] if 0 <= value < len(keys) else None
    if isinstance(value, str):
        text = value.strip().lower()
        for i, key in enumerate(keys):
            if text in (key.lower(), labels[i]):
                return key
    return None


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


class SsmAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses set NAME, DISPLAY_NAME, GROUP, GROUP_ID, HELP and implement
    ``initAlgorithm`` and ``processAlgorithm``. Group names start with the step's number,
    so that the toolbox (which sorts alphabetically) lists the tools in workflow order:
    1 sample data, 2 LST, 3 soil moisture, 4 validation, 5 workflows (the shipped models)."""

    NAME = ""
    DISPLAY_NAME = ""
    GROUP = "3 - Soil moisture"
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
        """The help, with parameter and output ids (``MIN_LST``) replaced by the labels a
        dialog user sees (“Minimum filled LST (K)”)."""
        labels = {d.name(): d.description() for d in self.parameterDefinitions()}
        labels.update({o.name(): o.description() for o in self.outputDefinitions()})
        if not labels:
            return self.tr(self.HELP)
        names = "|".join(sorted(map(re.escape, labels), key=len, reverse=True))
        text = re.sub(r"\s*\((?:" + names + r")\)", "", self.tr(self.HELP))  # "<b>Method</b> (METHOD)"
        pattern = re.compile(r"(?<![\w/.-])(" + names + r")(?![\w/-])")
        return pattern.sub(lambda m: f"“{labels[m.group(1)]}”", text)

    def helpUrl(self) -> str:
        """The tool's section of the README (the dialog's Help button)."""
        heading = f"{self.DISPLAY_NAME} (ssm:{self.NAME})".lower()
        return f"{HOMEPAGE}#" + re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")

    def addParameter(self, definition: QgsProcessingParameterDefinition, createOutput: bool = True) -> bool:
        """Doubles show the decimals of their default (not six); the rest as QGIS does."""
        if isinstance(definition, QgsProcessingParameterNumber) \
                and definition.dataType() == NUMBER_DOUBLE:
            meta = dict(definition.metadata())
            wrapper = dict(meta.get("widget_wrapper") or {})
            if "decimals" not in wrapper:
                lo = definition.minimum() if definition.minimum() > -1e300 else None
                wrapper["decimals"] = decimals_for(definition.defaultValue(), lo)
                meta["widget_wrapper"] = wrapper
                definition.setMetadata(meta)
        return super().addParameter(definition, createOutput)

    def tags(self) -> list[str]:
        return [t.strip() for t in self.TAGS.split(",") if t.strip()]

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def createInstance(self) -> SsmAlgorithm:
        return type(self)()

    def tr(self, text: str) -> str:
        return QCoreApplication.translate("SsmAlgorithm", text)

    # enums: index, key or label -----------------------------------------------------
    def checkParameterValues(self, parameters, context):
        """QGIS's checks, plus: number parameters must be numbers and finite (QGIS reads
        ``abc`` as 0 and accepts ``nan``, which would silently change the method); enum
        values given as keys or labels are mapped to their index before QGIS's own checks
        (which accept indices only); an unknown value gets a message listing the choices."""
        for d in self.parameterDefinitions():
            if d.type() != "number" or d.name() not in parameters:
                continue
            bad = _not_a_finite_number(parameters[d.name()])
            if bad:
                return False, self.tr(f"{d.name()}: {bad}")
        fixed = dict(parameters)
        for d in self.parameterDefinitions():
            if not isinstance(d, QgsProcessingParameterEnum) or ENUM_KEYS not in d.metadata():
                continue
            value = parameters.get(d.name())
            if value in (None, ""):
                continue
            key = enum_key(d, value)
            if key is None:
                return False, self._enum_error(d, value)
            fixed[d.name()] = d.metadata()[ENUM_KEYS].index(key)
        return super().checkParameterValues(fixed, context)

    def _enum_error(self, definition: QgsProcessingParameterEnum, value: Any) -> str:
        keys = definition.metadata().get(ENUM_KEYS) or definition.options()
        choices = ", ".join(f"{i} or {k}" for i, k in enumerate(keys))
        return self.tr(f"{definition.description()}: unknown choice {value!r}; use one of {choices}")

    def parameter_enum(self, parameters: dict, name: str, context: QgsProcessingContext) -> str:
        """The key of an enum parameter (given as index, key or label; empty = its default)."""
        d = self.parameterDefinition(name)
        value = parameters.get(name)
        key = enum_key(d, value)
        if key is None:
            raise QgsProcessingException(self._enum_error(d, value))
        return key

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

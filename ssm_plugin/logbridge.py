"""Bridge from Python ``logging`` (logger ``ssm_downscaling``) to the QGIS message log."""

from __future__ import annotations

import logging

from qgis.core import Qgis, QgsMessageLog

TAG = "SSM downscaling"


class QgsMessageLogHandler(logging.Handler):
    """Writes log records to the QGIS message log panel under the tab ``SSM downscaling``."""

    LEVELS = (
        (logging.ERROR, Qgis.MessageLevel.Critical),
        (logging.WARNING, Qgis.MessageLevel.Warning),
        (logging.NOTSET, Qgis.MessageLevel.Info),
    )

    def emit(self, record: logging.LogRecord) -> None:
        level = next(q for py, q in self.LEVELS if record.levelno >= py)
        try:
            QgsMessageLog.logMessage(self.format(record), TAG, level)
        except Exception:  # pragma: no cover - never let logging break the caller
            self.handleError(record)  # logging's own policy: a traceback on stderr, no exception


def install(logger_name: str = "ssm_downscaling") -> QgsMessageLogHandler:
    handler = QgsMessageLogHandler(level=logging.INFO)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler


def uninstall(handler: logging.Handler, logger_name: str = "ssm_downscaling") -> None:
    logging.getLogger(logger_name).removeHandler(handler)

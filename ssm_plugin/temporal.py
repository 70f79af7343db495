"""Keep QGIS's Temporal Controller in step with the plugin's daily layers: when layers of a
run arrive (or a project is read), its extent becomes the days of those layers and its
step one day, so pressing play animates the season."""

from __future__ import annotations

import datetime as dt

from qgis.core import QgsDateTimeRange, QgsInterval, QgsProject, QgsTemporalNavigationObject
from qgis.PyQt.QtCore import QDate, QDateTime, QObject, QTime, QTimer

from ..processing_provider.compat import TEMPORAL_DAYS
from ..processing_provider.outputs import PROP_DAY


def series_extent(project: QgsProject) -> QgsDateTimeRange | None:
    """Midnight of the first to midnight after the last day of the project's daily layers."""
    days = []
    for layer in project.mapLayers().values():
        value = layer.customProperty(PROP_DAY)
        if value:
            try:
                days.append(dt.date.fromisoformat(str(value)))
            except ValueError:
                continue
    if not days:
        return None
    first, last = min(days), max(days) + dt.timedelta(days=1)
    return QgsDateTimeRange(QDateTime(QDate(first.year, first.month, first.day), QTime(0, 0)),
                            QDateTime(QDate(last.year, last.month, last.day), QTime(0, 0)), True, False)


class TemporalSync(QObject):
    """Sets the project's time range and the Temporal Controller's extent and one-day step
    from the daily layers whenever layers are added or a project is read."""

    def __init__(self, iface, parent=None):
        super().__init__(parent)
        self.iface = iface
        self._last: QgsDateTimeRange | None = None
        project = QgsProject.instance()
        project.layersAdded.connect(self._schedule)
        project.readProject.connect(self._schedule)

    def _schedule(self, *_args) -> None:
        # layers of a Processing run are dated by their post-processors after being added
        QTimer.singleShot(0, self.update)

    def update(self) -> QgsDateTimeRange | None:
        project = QgsProject.instance()
        rng = series_extent(project)
        if rng is None or rng == self._last:
            return rng
        self._last = rng
        project.timeSettings().setTemporalRange(rng)
        nav = self.iface.mapCanvas().temporalController() if self.iface is not None else None
        if isinstance(nav, QgsTemporalNavigationObject):
            nav.setTemporalExtents(rng)
            nav.setFrameDuration(QgsInterval(1, TEMPORAL_DAYS))
        return rng

    def disconnect_all(self) -> None:
        project = QgsProject.instance()
        for signal in (project.layersAdded, project.readProject):
            try:
                signal.disconnect(self._schedule)
            except (TypeError, RuntimeError):
                pass

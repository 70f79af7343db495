"""How the outputs of a run open in QGIS: one style source, ``.qml`` sidecars, temporal
day layers and a layer group named after the run.

Every daily output raster gets a ``.qml`` sidecar (QGIS's default style: the file opens
styled from the Browser too) holding the style of its variable from ``styles/`` and a fixed
temporal range covering its day, so the Temporal Controller animates a series. The
algorithms ask Processing to load the days on completion; :class:`RunGroupPostProcessor`
then puts them in a layer group named after the run (flags switched off). Nothing here
touches the GUI: post-processors run in the main thread on the project of the context.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path

from qgis.core import (
    QgsLayerTreeGroup,
    QgsProcessingContext,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingUtils,
)

from .base import STYLES

#: the variables with a style, their order in a run's group and whether they start visible
KINDS = {
    "validation_stations": (0, True),
    "stations_csv": (1, True),
    "ssm": (10, True),
    "ssm_uncertainty": (20, False),
    "ssm_flags": (30, False),
    "lst": (40, True),
    "lst_flags": (50, False),
    "dem": (90, False),
}
#: at most this many (the latest) days of a series are loaded as layers after a run
MAX_DAYS_LOADED = 120
#: layer custom properties: the variable and the ISO day of a loaded daily layer
PROP_KIND, PROP_DAY = "ssm_downscaling/kind", "ssm_downscaling/day"
_TEMPORAL = re.compile(r"<temporal\b.*?</temporal>", re.S)


def style_path(kind: str) -> Path | None:
    """The QML of a variable (``ssm``, ``ssm_flags``, ``ssm_uncertainty``, ``lst``,
    ``lst_flags``, ``validation_stations``), or None when there is none."""
    p = STYLES / f"{kind}.qml"
    return p if p.exists() else None


def day_range_text(day: dt.date) -> tuple[str, str]:
    """ISO start and end of a day's fixed temporal range (see :func:`day_range`)."""
    return f"{day.isoformat()}T12:00:00", f"{day.isoformat()}T12:00:00"


def day_qml(kind: str, day: dt.date | None) -> str | None:
    """The QML text of ``kind`` with, for a day, an active fixed temporal range."""
    src = style_path(kind)
    if src is None:
        return None
    text = src.read_text(encoding="utf-8")
    if day is not None:
        start, end = day_range_text(day)
        temporal = (f'<temporal fetchMode="0" enabled="1" mode="0">\n    <fixedRange>\n'
                    f"      <start>{start}</start>\n      <end>{end}</end>\n    </fixedRange>\n  </temporal>")
        text = _TEMPORAL.sub(temporal, text, count=1) if _TEMPORAL.search(text) else text
    return text


def write_sidecars(files: Sequence[str | Path], kind: str, days: Sequence[dt.date | None] | None = None) -> list[Path]:
    """Write ``<file>.qml`` next to every raster (style of ``kind``, temporal range of its
    day); returns the sidecars. Days default to the date in each file name."""
    from ..core.series import date_from_name

    written = []
    for i, f in enumerate(files):
        f = Path(f)
        day = days[i] if days is not None else date_from_name(f.name)
        text = day_qml(kind, day)
        if text is None:
            continue
        qml = f.with_suffix(".qml")
        tmp = qml.with_name(f".{qml.name}.part")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(qml)
        written.append(qml)
    return written


def day_range(day: dt.date):
    """The fixed temporal range of a day's layer: the instant at its noon. QGIS 3.22 counts a
    range touching the end of a frame as overlapping it, so a range of the whole day would
    also be drawn in the previous day's frame; an instant at noon shows in exactly one frame
    of any midnight-aligned frames (and survives the project file)."""
    from qgis.core import QgsDateTimeRange
    from qgis.PyQt.QtCore import QDate, QDateTime, QTime

    noon = QDateTime(QDate(day.year, day.month, day.day), QTime(12, 0))
    return QgsDateTimeRange(noon, noon)


def set_day_range(layer, day: dt.date) -> None:
    """Make ``layer`` a temporal layer of ``day`` (see :func:`day_range`)."""
    from .compat import RASTER_TEMPORAL_FIXED

    tp = layer.temporalProperties()
    tp.setMode(RASTER_TEMPORAL_FIXED)
    tp.setFixedTemporalRange(day_range(day))
    tp.setIsActive(True)
    layer.setCustomProperty(PROP_DAY, day.isoformat())


def apply_qml(layer, text: str) -> None:
    """Apply QML ``text`` (style and temporal range) to a layer."""
    from qgis.PyQt.QtXml import QDomDocument

    doc = QDomDocument()
    doc.setContent(text)
    layer.importNamedStyle(doc)


def in_model(context: QgsProcessingContext) -> bool:
    """True when the algorithm runs as a step of a Graphical Modeler model."""
    return context.expressionContext().hasVariable("model_name")


def run_group_name(context: QgsProcessingContext, title: str, folder: str | Path) -> str:
    """A run's layer group: the model's name inside a model, else ``title: folder name``."""
    if in_model(context):
        return str(context.expressionContext().variable("model_name"))
    return f"{title}: {Path(folder).name}"


def is_temporary(path: str | Path) -> bool:
    """True for outputs Processing put in its temporary folder (intermediate model steps)."""
    try:
        Path(path).resolve().relative_to(Path(QgsProcessingUtils.tempFolder()).resolve())
        return True
    except ValueError:
        return False


def load_series_on_completion(context: QgsProcessingContext, files: Sequence[str | Path], kind: str,
                              group: str, series_name: str) -> int:
    """Ask Processing to load the (latest :data:`MAX_DAYS_LOADED`) days of a series when
    the run finishes, into ``group`` / ``series_name``; returns the number of layers. Inside
    a model, intermediate outputs (in the temporary folder) are not loaded."""
    from ..core.series import date_from_name

    files = [Path(f) for f in files][-MAX_DAYS_LOADED:]
    if not files or (in_model(context) and is_temporary(files[0])):
        return 0
    for f in files:
        day = date_from_name(f.name)
        name = f"{series_name} {day}" if day else f.stem
        details = QgsProcessingContext.LayerDetails(name, context.project(), name)
        details.forceName = True  # not the file name, whatever Processing's settings say
        details.setPostProcessor(RunGroupPostProcessor.create(group, series_name, kind, day))
        context.addLayerToLoadOnCompletion(str(f), details)
    return len(files)


def load_layer_on_completion(context: QgsProcessingContext, layer, group: str, kind: str) -> None:
    """Ask Processing to load an already opened layer (not a daily series) into ``group``
    (inside a model, not when it is an intermediate output in the temporary folder)."""
    source = layer.source().split("?")[0].split("|")[0].replace("file://", "")
    if not layer.isValid() or (in_model(context) and is_temporary(source)):
        return
    context.temporaryLayerStore().addMapLayer(layer)
    details = QgsProcessingContext.LayerDetails(layer.name(), context.project(), layer.name())
    details.forceName = True
    details.setPostProcessor(RunGroupPostProcessor.create(group, None, kind))
    context.addLayerToLoadOnCompletion(layer.id(), details)


def stations_csv_layer(path: str | Path, name: str):
    """The station CSV (``station_id, lon, lat, date, sm``) as a WGS84 point layer whose
    features are dated (the Temporal Controller shows each day's observations)."""
    from qgis.core import QgsVectorLayer

    from .compat import VECTOR_TEMPORAL_INSTANT_FIELD

    uri = (f"{Path(path).resolve().as_uri()}?type=csv&delimiter=,&xField=lon&yField=lat&crs=EPSG:4326"
           "&detectTypes=yes&geomType=point")
    layer = QgsVectorLayer(uri, name, "delimitedtext")
    if layer.isValid() and layer.fields().indexOf("date") >= 0:
        tp = layer.temporalProperties()
        tp.setMode(VECTOR_TEMPORAL_INSTANT_FIELD)
        tp.setStartField("date")
        tp.setIsActive(True)
    return layer


def _child_group(parent: QgsLayerTreeGroup, name: str, rank: int) -> QgsLayerTreeGroup:
    """The sub-group ``name`` of ``parent``, created at the place of its rank."""
    found = parent.findGroup(name)
    if found is not None and found.parent() is parent:
        return found
    index = 0
    for child in parent.children():
        other = child.customProperty("ssm_downscaling/rank")
        if other is not None and int(other) <= rank:
            index += 1
    g = parent.insertGroup(index, name)
    g.setCustomProperty("ssm_downscaling/rank", rank)
    return g


class RunGroupPostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Moves a loaded output into its run's group (the series in a collapsed sub-group, the
    latest day on top), styles it from its sidecar or ``styles/`` and switches flags off."""

    _keep: list[RunGroupPostProcessor] = []  # Processing holds a raw pointer: keep ours alive

    def __init__(self, group: str, series: str | None, kind: str, day: dt.date | None):
        super().__init__()
        self.group, self.series, self.kind, self.day = group, series, kind, day

    @classmethod
    def create(cls, group: str, series: str | None, kind: str, day: dt.date | None = None) -> RunGroupPostProcessor:
        pp = cls(group, series, kind, day)
        cls._keep.append(pp)
        return pp

    def postProcessLayer(self, layer, context, feedback) -> None:
        if layer is None:
            return
        text = day_qml(self.kind, self.day)
        if text is not None:  # the default style (sidecar) read on opening has no temporal range
            apply_qml(layer, text)
        layer.setCustomProperty(PROP_KIND, self.kind)
        if self.day is not None:
            set_day_range(layer, self.day)
        layer.triggerRepaint()
        project = context.project() or layer.project()
        if project is None:
            return
        root = project.layerTreeRoot()
        node = root.findLayer(layer.id())
        if node is None:
            return
        rank, visible = KINDS.get(self.kind, (80, True))
        run = _child_group(root, self.group, -1)
        run.setExpanded(True)
        target = run
        if self.series:
            target = _child_group(run, self.series, rank)
            target.setExpanded(False)
            target.setItemVisibilityChecked(visible)
        clone = node.clone()
        clone.setItemVisibilityChecked(True if self.series else visible)
        position = 0
        if self.day is not None:  # days in a series: the newest on top (drawn without the Temporal Controller)
            for child in target.children():
                other = child.customProperty("ssm_downscaling/day")
                if other is not None and str(other) > self.day.isoformat():
                    position += 1
            clone.setCustomProperty("ssm_downscaling/day", self.day.isoformat())
        else:  # a single layer of the run: at the place of its kind
            for child in target.children():
                other = child.customProperty("ssm_downscaling/rank")
                if other is not None and int(other) <= rank:
                    position += 1
            clone.setCustomProperty("ssm_downscaling/rank", rank)
        if self.day is not None:
            clone.setExpanded(False)  # days of a series: no legend each
        target.insertChildNode(position, clone)
        node.parent().removeChildNode(node)
        if self.series:
            target.setExpanded(False)

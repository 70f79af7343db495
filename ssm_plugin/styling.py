"""Renderers for the viewer's layers: fixed, comparable colour ramps for known variables
and paletted flags labelled from the legend in the flag raster's band description."""

from __future__ import annotations

import re
from pathlib import Path

from osgeo import gdal
from qgis.core import (
    QgsColorRampShader,
    QgsPalettedRasterRenderer,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
)
from qgis.PyQt.QtGui import QColor

from .compat import RAMP_INTERPOLATED, STATS_MAX, STATS_MIN

#: colours of flag codes (DESIGN.md 3: 0 observed, 1 seam-filled / LST filled, 2 cloudy, 3 both)
FLAG_COLORS = {0: "#1a9850", 1: "#f46d43", 2: "#4575b4", 3: "#762a83"}

#: (name pattern, min, max, colours, unit) for variables recognised from the folder/file name
RAMPS = (
    (r"uncert|stderr|_se\b|spread", 0.0, 0.08, ("#ffffcc", "#fd8d3c", "#800026"), "m3/m3 (uncertainty)"),
    (r"lst|temp|skin", 260.0, 330.0, ("#313695", "#74add1", "#ffffbf", "#f46d43", "#a50026"), "K"),
    (r"ndvi", -0.1, 0.9, ("#a6611a", "#dfc27d", "#f5f5f5", "#80cdc1", "#018571"), "NDVI"),
    (r"albedo", 0.05, 0.4, ("#2d004b", "#8073ac", "#d8daeb", "#fee0b6", "#e08214"), "albedo"),
    (r"ssm|sm|soil|moist", 0.0, 0.5, ("#8c510a", "#d8b365", "#f6e8c3", "#c7eae5", "#5ab4ac", "#01665e", "#08306b"),
     "m3/m3"),
)


def _ramp_for(name: str):
    low = name.lower()
    for pattern, lo, hi, colours, unit in RAMPS:
        if re.search(pattern, low):
            return lo, hi, colours, unit
    return None


def unit_label(name: str) -> str:
    r = _ramp_for(name)
    return r[3] if r else "value"


def flag_legend(path: str | Path) -> dict[int, str]:
    """``{code: label}`` parsed from a flag raster's band description
    (``"0 observed; 1 filled; 255 no data"`` or ``"0=observed, 1=filled"``)."""
    ds = gdal.Open(str(path))
    text = ds.GetRasterBand(1).GetDescription() if ds is not None else ""
    ds = None
    legend = {}
    for m in re.finditer(r"(\d{1,3})\s*[:=\-]?\s*([^;,\n]+)", text or ""):
        legend[int(m.group(1))] = m.group(2).strip()
    return legend


def apply_style(layer: QgsRasterLayer, path: str | Path, flags: bool = False) -> None:
    """Style ``layer``: paletted flags, or a fixed ramp when the variable is recognised from
    its file/folder name (so days are comparable), else a min-max ramp."""
    if flags:
        legend = flag_legend(path) or {0: "0", 1: "1", 2: "2", 3: "3"}
        classes = [
            QgsPalettedRasterRenderer.Class(code, QColor(FLAG_COLORS.get(code, "#999999")), f"{code} {label}")
            for code, label in sorted(legend.items())
            if code != 255
        ]
        renderer = QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes)
        layer.setRenderer(renderer)
        layer.setOpacity(0.6)
        return
    p = Path(path)
    ramp = _ramp_for(p.parent.name + " " + p.name)
    if ramp is None:
        stats = layer.dataProvider().bandStatistics(1, STATS_MIN | STATS_MAX)
        lo, hi, colours = stats.minimumValue, stats.maximumValue, RAMPS[-1][3]
    else:
        lo, hi, colours, _ = ramp
    fn = QgsColorRampShader(lo, hi)
    fn.setColorRampType(RAMP_INTERPOLATED)
    n = len(colours)
    fn.setColorRampItemList(
        [QgsColorRampShader.ColorRampItem(lo + (hi - lo) * i / (n - 1), QColor(c), f"{lo + (hi - lo) * i / (n - 1):g}")
         for i, c in enumerate(colours)]
    )
    fn.setClip(False)
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(fn)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(lo)
    renderer.setClassificationMax(hi)
    layer.setRenderer(renderer)

"""Styles of the viewer's layers, from the same ``.qml`` files Processing applies to its
outputs (``processing_provider/styles``): the variable is recognised from the folder/file
name and, for flags, from the legend in the band description. Variables without a QML
(NDVI, albedo, anything else) get a fixed ramp here or a min-max ramp."""

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

from ..processing_provider.outputs import apply_qml, day_qml, style_path
from .compat import RAMP_INTERPOLATED, STATS_MAX, STATS_MIN

#: (name pattern, QML style kind or None, min, max, colours, unit) for variables recognised
#: from the folder/file name; ranges and colours of kinds with a QML come from the QML
RAMPS = (
    (r"uncert|stderr|_se\b|spread", "ssm_uncertainty", 0.0, 0.1, (), "m3/m3 (uncertainty)"),
    (r"lst|temp|skin", "lst", 250.0, 330.0, (), "K"),
    (r"ndvi", None, -0.1, 0.9, ("#a6611a", "#dfc27d", "#f5f5f5", "#80cdc1", "#018571"), "NDVI"),
    (r"albedo", None, 0.05, 0.4, ("#2d004b", "#8073ac", "#d8daeb", "#fee0b6", "#e08214"), "albedo"),
    (r"ssm|sm|soil|moist", "ssm", 0.0, 0.5, (), "m3/m3"),
)
_PALETTE = re.compile(r'<paletteEntry[^>]*\bvalue="(\d+)"[^>]*\bcolor="(#[0-9a-fA-F]{6})"')


def _ramp_for(name: str):
    low = name.lower()
    for pattern, kind, lo, hi, colours, unit in RAMPS:
        if re.search(pattern, low):
            return kind, lo, hi, colours, unit
    return None


def unit_label(name: str) -> str:
    r = _ramp_for(name)
    return r[4] if r else "value"


def kind_for(path: str | Path, flags: bool = False) -> str | None:
    """The style kind of a raster (``ssm``, ``ssm_uncertainty``, ``lst``, ``ssm_flags``,
    ``lst_flags``) from its folder/file name and, for flags, its legend; None when unknown."""
    p = Path(path)
    if flags:
        legend = " ".join(flag_legend(p).values()).lower()
        if re.search(r"coarse|seam", legend) or (not legend and re.search(r"ssm|soil", p.parent.name.lower())):
            return "ssm_flags"
        return "lst_flags"
    r = _ramp_for(p.parent.name + " " + p.name)
    return r[0] if r else None


def flag_colors(kind: str | None) -> dict[int, str]:
    """``{code: colour}`` of a flag style, read from its QML (so the plot matches the map)."""
    qml = style_path(kind) if kind else None
    if qml is None:
        return {0: "#1a9850", 1: "#fdae61", 2: "#74add1", 3: "#d73027"}
    return {int(v): c for v, c in _PALETTE.findall(qml.read_text(encoding="utf-8"))}


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


def apply_style(layer: QgsRasterLayer, path: str | Path, flags: bool = False) -> str | None:
    """Style ``layer`` (a day of the raster ``path``) and return its kind: the plugin's QML
    for known variables (fixed ranges, so days are comparable), paletted flags labelled
    from the legend, a fixed ramp for NDVI/albedo, else a min-max ramp."""
    kind = kind_for(path, flags)
    text = day_qml(kind, None) if kind else None
    if text is not None:
        apply_qml(layer, text)
        return kind
    if flags:
        legend = flag_legend(path) or {0: "0", 1: "1", 2: "2", 3: "3"}
        classes = [
            QgsPalettedRasterRenderer.Class(code, QColor(flag_colors(None).get(code, "#999999")), f"{code} {label}")
            for code, label in sorted(legend.items())
            if code != 255
        ]
        renderer = QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes)
        layer.setRenderer(renderer)
        return None
    p = Path(path)
    ramp = _ramp_for(p.parent.name + " " + p.name)
    if ramp is None:
        stats = layer.dataProvider().bandStatistics(1, STATS_MIN | STATS_MAX)
        lo, hi, colours = stats.minimumValue, stats.maximumValue, RAMPS[2][4]
    else:
        _, lo, hi, colours, _ = ramp
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
    return None

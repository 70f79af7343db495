"""What differs between Qt5 (QGIS 3.x) and Qt6 (QGIS 4) in the GUI, in one place."""

from __future__ import annotations

from ..processing_provider.compat import qgis_enum

#: band statistics and colour ramp interpolation (moved into ``Qgis`` in QGIS 3.36 / 3.24+)
STATS_MIN = qgis_enum("Qgis.RasterBandStatistic.Min", "QgsRasterBandStats.Stats.Min")
STATS_MAX = qgis_enum("Qgis.RasterBandStatistic.Max", "QgsRasterBandStats.Stats.Max")
RAMP_INTERPOLATED = qgis_enum("Qgis.ShaderInterpolationMethod.Linear", "QgsColorRampShader.Type.Interpolated")


def figure_canvas_class():
    """matplotlib's Qt canvas for the binding QGIS runs on: ``backend_qtagg`` (matplotlib
    3.5+, follows the already imported PyQt5 or PyQt6), else the Qt5-only ``backend_qt5agg``."""
    try:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    except ImportError:  # matplotlib < 3.5 (Qt5 only)
        from matplotlib.backends.backend_qt5agg import FigureCanvasQTAgg
    return FigureCanvasQTAgg

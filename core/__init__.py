"""The science of the plugin as a plain Python library (numpy, scipy, GDAL; numba and
scikit-learn optional). Never imports QGIS; usable from a notebook or a Dask worker."""

from .errors import Cancelled, GridError, RasterReadError, SeriesError, SsmError
from .grid import Grid, to_wkt, transform_points, warp_to_grid
from .membership import Aggregator, Membership
from .series import DailySeries, LayerSource, RasterWriter, read_raster, write_day, write_raster

__all__ = [
    "Aggregator",
    "Cancelled",
    "DailySeries",
    "Grid",
    "GridError",
    "LayerSource",
    "Membership",
    "RasterReadError",
    "RasterWriter",
    "SeriesError",
    "SsmError",
    "read_raster",
    "to_wkt",
    "transform_points",
    "warp_to_grid",
    "write_day",
    "write_raster",
]

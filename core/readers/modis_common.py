"""Reading one field of a MODIS tile (HDF4-EOS through GDAL, or the same fields in a
netCDF/HDF5 re-packaging such as NASA AppEEARS output) on the exact tile grid."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from osgeo import gdal

from ..grid import Grid
from .base import ProductError, find_subdataset, read_band
from .modis_tiles import tile_grid, tile_of

log = logging.getLogger(__name__)


def read_field(path: str | Path, field: str, product: str) -> tuple[np.ndarray, Grid]:
    """Raw values of ``field`` and the tile grid (snapped to the documented tile corners
    when the file name carries ``hHHvVV`` and the file's own corners agree within 1 m,
    so that tiles mosaic without a seam)."""
    name = find_subdataset(path, field, product)
    hv = tile_of(path)
    try:
        raw, grid, _, _ = read_band(name, path)
    except ProductError:
        if hv is None:
            raise
        # a re-packaging without georeferencing (e.g. HDF5 fields): the tile grid of its name
        raw = _read_raw(name, path)
        return raw, tile_grid(hv[0], hv[1], raw.shape[1])
    if hv is not None and grid.width == grid.height:
        doc = tile_grid(hv[0], hv[1], grid.width)
        if np.allclose(doc.transform, grid.transform, atol=1.0) and "+proj=sinu" in grid.srs.ExportToProj4():
            return raw, doc
        raise ProductError(
            f"{path}: its {field} grid (origin {grid.transform[0]:.1f}, {grid.transform[3]:.1f}) is not where tile "
            f"h{hv[0]:02d}v{hv[1]:02d} lies (origin {doc.transform[0]:.1f}, {doc.transform[3]:.1f})"
        )
    return raw, grid


def _read_raw(name: str, path) -> np.ndarray:
    try:
        ds = gdal.Open(name)
        raw = ds.GetRasterBand(1).ReadAsArray()
    except RuntimeError as exc:
        raise ProductError(f"{path}: {name.rsplit(':', 1)[-1]} cannot be read (truncated?): {exc}") from exc
    if raw.ndim != 2 or raw.shape[0] != raw.shape[1]:
        raise ProductError(f"{path}: {name.rsplit(':', 1)[-1]} has shape {raw.shape}, not a MODIS tile")
    return raw

"""The input checks' sample reader: a spread subset of storage blocks for big rasters."""

from __future__ import annotations

import numpy as np
from osgeo import gdal

from ssm_downscaling.core.checks import read_sample, sample_windows
from ssm_downscaling.core.grid import Grid, to_wkt
from ssm_downscaling.core.series import write_raster


def test_small_rasters_are_read_decimated_whole():
    assert sample_windows(300, 240, 256, 256) is None
    assert sample_windows(1000, 1000, 256, 256) is None  # 16 tiles: all of them anyway


def test_windows_are_whole_blocks_spread_over_rows_and_columns():
    win = sample_windows(5000, 4000, 256, 256, max_pixels=250_000)
    assert 12 <= len(win) <= 16
    rows = {y0 // 256 for _, y0, _, _ in win}
    cols = {x0 // 256 for x0, _, _, _ in win}
    assert len(rows) >= 12 and len(cols) >= 8  # not one column, not one row
    for x0, y0, nx, ny in win:
        assert x0 % 256 == 0 and y0 % 256 == 0
        assert nx == min(256, 5000 - x0) and ny == min(256, 4000 - y0)
    # strips of one row: about 2 x max_pixels pixels in whole rows
    strips = sample_windows(5000, 4000, 5000, 1, max_pixels=250_000)
    assert len(strips) == 100 and all(nx == 5000 and ny == 1 for _, _, nx, ny in strips)


def test_read_sample_of_a_tiled_raster_has_exact_values_from_the_chosen_blocks(tmp_path):
    # every 256 x 256 tile holds its own index; nodata in one tile column
    W, H = 4096, 3072
    grid = Grid.from_bounds(to_wkt("EPSG:3857"), (0.0, 0.0, W * 1000.0, H * 1000.0), 1000.0)
    r, c = np.divmod(np.arange(H * W).reshape(H, W), W)
    a = ((r // 256) * 16 + (c // 256)).astype(np.float32)
    a[:, :256] = np.nan
    path = tmp_path / "big.tif"
    write_raster(path, a, grid)
    ds = gdal.Open(str(path))
    assert ds.GetRasterBand(1).GetBlockSize() == [256, 256]
    ds = None
    s = read_sample(path, max_pixels=100_000)
    win = sample_windows(W, H, 256, 256, max_pixels=100_000)
    expected = np.concatenate([a[y0:y0 + ny, x0:x0 + nx].ravel() for x0, y0, nx, ny in win])
    np.testing.assert_array_equal(np.sort(s.values), np.sort(expected[np.isfinite(expected)]))
    assert np.unique(s.values).size >= 10

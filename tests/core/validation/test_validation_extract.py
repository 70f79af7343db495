"""Point extraction from daily raster series: the pixel containing the station, window
means, other CRSs, missing days and nodata, reading only the windows needed."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from osgeo import gdal

from ssm_downscaling.core.errors import Cancelled, SeriesError
from ssm_downscaling.core.grid import Grid, to_wkt, transform_points
from ssm_downscaling.core.series import DailySeries, write_day
from ssm_downscaling.core.validation.extract import _layout, point_pixels, sample_series


def test_pixel_containing_the_station(world):
    ps = sample_series(world.product, world.lon, world.lat, world.dates)
    assert ps.inside.all()
    assert not ps.days_read[7] and ps.days_read.sum() == len(world.dates) - 1
    for j in range(len(world.dates)):
        expect = world.value(world.rows, world.cols, j)
        if j == 7:
            assert np.isnan(ps.values[:, j]).all()
            continue
        expect = np.where((world.rows == 5) & (world.cols == 5), np.nan, expect)  # the nodata pixel
        np.testing.assert_allclose(ps.values[:, j], expect.astype(np.float32), rtol=0, atol=0, equal_nan=True)


def test_threads_give_the_same_numbers(world):
    one = sample_series(world.product, world.lon, world.lat, world.dates, window=3, threads=1)
    many = sample_series(world.product, world.lon, world.lat, world.dates, window=3, threads=4)
    np.testing.assert_array_equal(one.values, many.values)
    np.testing.assert_array_equal(one.days_read, many.days_read)


def test_window_mean_by_hand(world):
    ps = sample_series(world.product, world.lon, world.lat, world.dates[:3], window=3)
    series = DailySeries.from_folder(world.product)
    for j in range(3):
        full = gdal.Open(str(series.path(world.dates[j]))).ReadAsArray().astype(np.float64)
        full[full == -9999] = np.nan
        for i, (r, c) in enumerate(zip(world.rows, world.cols)):
            win = full[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2]  # clipped at the raster edge
            assert ps.values[i, j] == pytest.approx(np.nanmean(win), abs=1e-12)
    # a linear field: the 3x3 mean of an interior pixel equals the pixel (row 10, col 20)
    i = 1
    assert ps.values[i, 0] == pytest.approx(world.value(10, 20, 0), abs=1e-6)
    with pytest.raises(SeriesError, match="odd"):
        sample_series(world.product, world.lon, world.lat, world.dates[:1], window=2)


def test_other_crs_and_outside_points(tmp_path, world):
    # a geographic grid (value = row * 1000 + col); a longitude given 360 degrees off is found too
    g = Grid.from_bounds(4326, (116.0, 29.0, 118.0, 31.0), 0.01)
    r, c = np.mgrid[0 : g.height, 0 : g.width]
    write_day(tmp_path / "geo", "v", dt.date(2019, 6, 1), (r * 1000 + c).astype(np.float32), g)
    lon = np.array([116.005, 117.5, 117.999, 50.0, 116.005 - 360.0])  # the last one given as -243.995
    lat = np.array([30.995, 30.0, 29.001, 30.0, 30.995])
    ps = sample_series(tmp_path / "geo", lon, lat, [dt.date(2019, 6, 1)])
    assert ps.inside.tolist() == [True, True, True, False, True]
    assert ps.values[:, 0][[0, 1, 2, 4]].tolist() == [0.0, 100 * 1000 + 150, 199 * 1000 + 199, 0.0]
    assert np.isnan(ps.values[3, 0])
    # projected grid: points from their pixel centres round-trip to the same pixel
    rows, cols = point_pixels(world.grid, world.lon, world.lat)
    assert rows.tolist() == world.rows.tolist() and cols.tolist() == world.cols.tolist()


def test_reads_only_windows_around_sparse_stations():
    """Three stations on a 20000 x 20000 grid: three small windows, not the raster."""
    big = Grid.from_bounds("EPSG:3857", (0, 0, 20_000_000, 20_000_000), 1000)
    x = np.array([1_500_500.0, 1_502_500.0, 15_000_500.0])
    y = np.array([2_000_500.0, 2_000_500.0, 9_000_500.0])
    lon, lat = transform_points(x, y, big.crs_wkt, to_wkt(4326))
    lay = _layout(big, lon, lat, half=1, block=256)
    areas = [nr * nc for _, _, nr, nc, _ in lay.groups]
    assert len(lay.groups) == 2  # the first two share a block
    assert sum(areas) <= 3 * 5 * 3 and max(areas) == 3 * 5
    # many stations: never more than one window per 256 x 256 block
    rng = np.random.default_rng(0)
    xs = rng.uniform(0, 20_000_000, 5000)
    ys = rng.uniform(0, 20_000_000, 5000)
    lon, lat = transform_points(xs, ys, big.crs_wkt, to_wkt(4326))
    lay = _layout(big, lon, lat, half=0, block=256)
    assert len(lay.groups) <= len(np.unique((lay.rows // 256) * 1000 + lay.cols // 256))
    assert all(nr <= 256 and nc <= 256 for _, _, nr, nc, _ in lay.groups)


def test_scale_offset_band_and_cancel(tmp_path):
    g = Grid.from_bounds("EPSG:32633", (0, 0, 10_000, 10_000), 1000)
    folder = tmp_path / "scaled"
    folder.mkdir()
    for j in range(3):
        ds = gdal.GetDriverByName("GTiff").Create(str(folder / f"sm_2020-01-0{j + 1}.tif"), 10, 10, 1, gdal.GDT_Int16)
        ds.SetProjection(g.crs_wkt)
        ds.SetGeoTransform(g.transform)
        b = ds.GetRasterBand(1)
        b.SetNoDataValue(-1)
        b.SetScale(0.001)
        a = np.full((10, 10), 250 + j, dtype=np.int16)
        a[0, 0] = -1
        b.WriteArray(a)
        ds = None
    x, y = g.xy(np.array([0, 4]), np.array([0, 4]))
    lon, lat = transform_points(x, y, g.crs_wkt, to_wkt(4326))
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=j) for j in range(3)]
    ps = sample_series(folder, lon, lat, days)
    assert np.isnan(ps.values[0]).all()
    assert ps.values[1] == pytest.approx([0.25, 0.251, 0.252])
    with pytest.raises(Cancelled):
        sample_series(folder, lon, lat, days, is_cancelled=lambda: True)

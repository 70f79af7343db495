"""Grid geometry, CRS handling, pixel areas and warping (core/grid.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from osgeo import gdal

from ssm_downscaling.core.errors import GridError, RasterReadError
from ssm_downscaling.core.grid import Grid, array_to_mem, same_crs, to_wkt, transform_points, warp_to_grid
from ssm_downscaling.core.series import write_raster

LAEA = "+proj=laea +lat_0=30 +lon_0=90 +datum=WGS84 +units=m +no_defs"


def test_from_bounds_shape_res_bounds():
    g = Grid.from_bounds(LAEA, (-5000, -3000, 5000, 3000), 1000)
    assert g.shape == (6, 10)
    assert g.res == (1000.0, 1000.0)
    assert g.bounds == (-5000.0, -3000.0, 5000.0, 3000.0)
    assert g.north_up


def test_degenerate_grids_are_rejected():
    with pytest.raises(GridError):
        Grid(to_wkt(4326), (0, 1, 0, 0, 0, -1), 0, 3)
    with pytest.raises(GridError):
        Grid(to_wkt(4326), (0, 0, 0, 0, 0, 0), 3, 3)
    with pytest.raises(GridError, match="Unknown coordinate reference system"):
        to_wkt("not a crs at all")


def test_centres_and_rowcol_round_trip():
    g = Grid.from_bounds(LAEA, (0, 0, 4000, 3000), 1000)
    x, y = g.centres()
    assert x[0, 0] == 500 and y[0, 0] == 2500  # row 0 is the top
    r, c = g.rowcol(x, y)
    assert (r == np.arange(3)[:, None]).all() and (c == np.arange(4)[None, :]).all()
    r, c = g.rowcol(np.array([-1.0, 4000.0, np.nan]), np.array([10.0, 10.0, 10.0]))
    assert (r == -1).all() and (c == -1).all()


def test_rotated_geotransform_round_trip():
    a = math.radians(20)
    gt = (1000.0, 1000 * math.cos(a), -1000 * math.sin(a), 5000.0, -1000 * math.sin(a), -1000 * math.cos(a))
    g = Grid(to_wkt(LAEA), gt, 7, 5)
    rows, cols = np.mgrid[0:5, 0:7]
    x, y = g.xy(rows, cols)
    r, c = g.rowcol(x, y)
    assert (r == rows).all() and (c == cols).all()
    assert g.res == pytest.approx((1000.0, 1000.0))


def test_window_and_window_of():
    g = Grid.from_bounds(LAEA, (0, 0, 10000, 8000), 1000)
    w = g.window(2, 3, 4, 5)
    assert w.shape == (4, 5)
    assert g.window_of(w) == (2, 3, 4, 5)
    shifted = Grid(w.crs_wkt, (w.transform[0] + 500, *w.transform[1:]), 5, 4)
    assert g.window_of(shifted) is None
    other_crs = Grid(to_wkt(6933), w.transform, 5, 4)
    assert g.window_of(other_crs) is None


def test_covering_crops_to_the_footprint_and_detects_no_overlap():
    coarse = Grid.from_bounds(4326, (80, 20, 100, 40), 0.25)
    fine = Grid.from_bounds(LAEA, (-50_000, -50_000, 50_000, 50_000), 1000)
    win = coarse.covering(fine, margin=0)
    lon0, lat0, lon1, lat1 = win.bounds
    # +-50 km around (90E, 30N) is about +-0.52 deg lon, +-0.45 deg lat
    assert 89.25 <= lon0 <= 89.5 and 90.5 <= lon1 <= 90.75
    assert 29.5 <= lat0 <= 29.75 and 30.25 <= lat1 <= 30.5
    far = Grid.from_bounds(4326, (-10, -10, 0, 0), 0.25)
    with pytest.raises(GridError, match="do not overlap"):
        far.covering(fine)


def test_pixel_areas_equal_area_constant():
    g = Grid.from_bounds(LAEA, (0, 0, 3000, 3000), 1000)
    assert g.pixel_areas().ravel()[0] == pytest.approx(1e6)
    ease = Grid.from_bounds(6933, (0, 0, 36032.22 * 2, 36032.22 * 2), 36032.22)
    assert ease.pixel_areas().ravel()[0] == pytest.approx(36032.22**2)


def test_pixel_areas_geographic_sum_to_the_ellipsoid_surface():
    g = Grid.from_bounds(4326, (-180, -90, 180, 90), 1.0)
    total = float(np.broadcast_to(g.pixel_areas(), g.shape).sum())
    # surface of the WGS84 ellipsoid: 510,065,621.72 km2
    assert total == pytest.approx(5.1006562172e14, rel=1e-9)


def test_pixel_areas_general_projection_uses_the_scale_factor():
    # UTM zone 45N near its central meridian (87E): areas are nominal / k^2, k ~ 0.9996
    g = Grid.from_bounds(32645, (495_000, 3_300_000, 505_000, 3_310_000), 1000)
    areas = g.pixel_areas()
    assert areas.shape == (10, 10)
    assert np.allclose(areas, 1e6 / 0.9996**2, rtol=2e-5)


def test_transform_points_round_trip_and_failures():
    lon = np.array([[85.0, 90.0], [95.0, 100.0]])
    lat = np.array([[25.0, 30.0], [35.0, 40.0]])
    x, y = transform_points(lon, lat, to_wkt(4326), to_wkt(6933))
    assert x.shape == lon.shape
    lo, la = transform_points(x, y, to_wkt(6933), to_wkt(4326))
    assert np.allclose(lo, lon, atol=1e-9) and np.allclose(la, lat, atol=1e-9)
    # a point that cannot be transformed becomes NaN instead of failing the batch
    x2, _ = transform_points(np.array([90.0, np.nan]), np.array([30.0, 30.0]), to_wkt(4326), to_wkt(6933))
    assert np.isfinite(x2[0]) and np.isnan(x2[1])
    assert same_crs(to_wkt(4326), to_wkt("EPSG:4326"))


def _mem_raster(grid: Grid, arr: np.ndarray, nodata=None, scale=None, offset=None) -> gdal.Dataset:
    ds = grid.create_mem(gdal.GDT_Float32 if arr.dtype.kind == "f" else gdal.GDT_Int16)
    b = ds.GetRasterBand(1)
    b.WriteArray(arr)
    if nodata is not None:
        b.SetNoDataValue(nodata)
    if scale is not None:
        b.SetScale(scale)
    if offset is not None:
        b.SetOffset(offset)
    return ds


def test_warp_identity_and_window_read_are_exact():
    g = Grid.from_bounds(LAEA, (0, 0, 6000, 5000), 1000)
    arr = np.arange(30, dtype=np.float32).reshape(5, 6)
    ds = _mem_raster(g, arr)
    assert np.array_equal(warp_to_grid(ds, g), arr)
    w = g.window(1, 2, 3, 3)
    assert np.array_equal(warp_to_grid(ds, w), arr[1:4, 2:5])
    # a window reaching outside the raster is NaN there
    out = warp_to_grid(ds, g.window(-1, -1, 2, 2))
    assert np.isnan(out[0]).all() and np.isnan(out[:, 0]).all() and out[1, 1] == arr[0, 0]


def test_warp_applies_nodata_scale_and_offset():
    g = Grid.from_bounds(LAEA, (0, 0, 3000, 2000), 1000)
    raw = np.array([[0, 15000, 15050], [14900, 0, 15100]], dtype=np.int16)
    ds = _mem_raster(g, raw, nodata=0, scale=0.02, offset=0.0)
    out = warp_to_grid(ds, g)
    assert np.isnan(out[0, 0]) and np.isnan(out[1, 1])
    assert out[0, 1] == pytest.approx(300.0) and out[1, 2] == pytest.approx(302.0)


def test_warp_bilinear_reproduces_a_linear_field_across_crs():
    # a field linear in x of a LAEA grid, read onto a rotated finer grid in the same CRS
    src = Grid.from_bounds(LAEA, (-20_000, -20_000, 20_000, 20_000), 1000)
    x, y = src.centres()
    field = (0.001 * x + 0.0005 * y + 280).astype(np.float32)
    ds = _mem_raster(src, field)
    dst = Grid.from_bounds(LAEA, (-10_000, -10_000, 10_000, 10_000), 500)
    out = warp_to_grid(ds, dst, "bilinear")
    xd, yd = dst.centres()
    assert np.allclose(out, 0.001 * xd + 0.0005 * yd + 280, atol=1e-3)
    # average resampling onto a coarser grid equals the block mean of a linear field
    coarse = Grid.from_bounds(LAEA, (-20_000, -20_000, 20_000, 20_000), 4000)
    agg = warp_to_grid(ds, coarse, "average")
    xc, yc = coarse.centres()
    assert np.allclose(agg, 0.001 * xc + 0.0005 * yc + 280, atol=1e-3)


def test_warp_to_other_crs_nearest_matches_point_lookup():
    src = Grid.from_bounds(4326, (88, 28, 92, 32), 0.25)
    arr = np.arange(src.size, dtype=np.float32).reshape(src.shape)
    ds = _mem_raster(src, arr)
    dst = Grid.from_bounds(LAEA, (-100_000, -100_000, 100_000, 100_000), 5000)
    out = warp_to_grid(ds, dst, "nearest")
    x, y = dst.centres()
    lon, lat = transform_points(x, y, dst.crs_wkt, src.crs_wkt)
    r, c = src.rowcol(lon, lat)
    assert np.array_equal(out, arr[r, c])


def test_unreadable_and_bad_band():
    with pytest.raises(RasterReadError, match="nope.tif"):
        warp_to_grid("/nonexistent/nope.tif", Grid.from_bounds(LAEA, (0, 0, 1, 1), 1))
    g = Grid.from_bounds(LAEA, (0, 0, 2000, 2000), 1000)
    ds = _mem_raster(g, np.zeros((2, 2), np.float32))
    with pytest.raises(RasterReadError, match="band 2"):
        warp_to_grid(ds, g, band=2)
    with pytest.raises(ValueError, match="resampling"):
        warp_to_grid(ds, g, resampling="fancy")


def test_window_reads_in_tile_aligned_strips_equal_one_read(tmp_path, monkeypatch):
    """Strip-wise window reads (strip edges on the 256 px tile rows) give the values of one
    whole read, for windows inside, across and beyond the raster."""
    from ssm_downscaling.core import grid as grid_mod
    from ssm_downscaling.core.series import write_raster

    g = Grid.from_bounds(LAEA, (0, 0, 700_000, 900_000), 1000)
    a = np.random.default_rng(1).normal(300, 5, g.shape).astype(np.float32)
    a[300:310, 5:9] = np.nan
    p = write_raster(tmp_path / "a.tif", a, g)
    calls = []
    real = gdal.Band.ReadAsArray

    def spy(self, xoff=0, yoff=0, xsize=None, ysize=None, *args, **kw):
        calls.append((yoff, ysize))
        return real(self, xoff, yoff, xsize, ysize, *args, **kw)

    monkeypatch.setattr(grid_mod, "READ_STRIP_PIXELS", 256 * 700)  # one tile row per strip
    monkeypatch.setattr(gdal.Band, "ReadAsArray", spy)
    np.testing.assert_array_equal(warp_to_grid(p, g), a)
    assert calls == [(r, min(256, g.height - r)) for r in range(0, g.height, 256)]
    calls.clear()
    w = g.window(250, 3, 300, 600)  # starts mid-tile: first strip ends on a tile edge
    np.testing.assert_array_equal(warp_to_grid(p, w), a[250:550, 3:603])
    assert calls == [(250, 6), (256, 256), (512, 38)]
    out = warp_to_grid(p, g.window(-5, -5, 20, 20))
    assert np.isnan(out[:5]).all() and np.isnan(out[:, :5]).all()
    np.testing.assert_array_equal(out[5:, 5:], a[:15, :15])


@pytest.mark.parametrize("resampling", ["bilinear", "average", "nearest"])
def test_multithreaded_warp_equals_one_thread(monkeypatch, resampling):
    src = Grid.from_bounds(to_wkt(4326), (88.0, 28.0, 92.0, 32.0), 0.009)
    a = np.random.default_rng(2).normal(0.5, 0.1, src.shape).astype(np.float32)
    a[100:120, 40:90] = np.nan
    dst = Grid.from_bounds(LAEA, (-150e3, -150e3, 150e3, 150e3), 1000)
    monkeypatch.setenv("SSM_READ_THREADS", "1")
    one = warp_to_grid(array_to_mem(a, src), dst, resampling)
    monkeypatch.setenv("SSM_READ_THREADS", "2")
    two = warp_to_grid(array_to_mem(a, src), dst, resampling)
    assert np.isfinite(one).mean() > 0.5
    np.testing.assert_array_equal(one, two)


def test_a_files_grid_is_remembered_until_the_file_changes(tmp_path):
    """Grid.from_raster caches by (path, inode, size, mtime): a repeated call returns the
    same grid without opening the file; a rewritten file gives its new grid."""
    import os

    from ssm_downscaling.core import grid as grid_mod

    a = Grid.from_bounds(4326, (100.0, 30.0, 101.0, 31.0), 0.1)
    b = Grid.from_bounds(4326, (100.0, 30.0, 102.0, 31.0), 0.1)
    path = tmp_path / "r.tif"
    write_raster(path, np.zeros(a.shape, np.float32), a)
    g1 = Grid.from_raster(path)
    assert g1 == a and Grid.from_raster(str(path)) is g1
    write_raster(tmp_path / "tmp.tif", np.zeros(b.shape, np.float32), b)
    os.replace(tmp_path / "tmp.tif", path)  # a new file under the same name
    g2 = Grid.from_raster(path)
    assert g2 == b and g2 != g1
    assert grid_mod._file_key("/vsimem/none.tif") is None and grid_mod._file_key(tmp_path) is None

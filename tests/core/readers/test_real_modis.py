"""MODIS readers on the real tiles: MOD11A1 (day, night, QC, tile corners, mosaic,
Terra/Aqua rule) and MOD13A2 (scale, fill, reliability, 16-day composite as daily)."""

from __future__ import annotations

import datetime as dt
import math
import os

import numpy as np
import pytest
from osgeo import gdal

pytestmark = pytest.mark.realdata

LST_A = "modis/MOD11A1.A2021227.h11v05.061.2021228105320.hdf"
LST_B = "modis/MOD11A1.A2019305.h14v09.006.hdf"
NDVI = "modis/MOD13A2.A2021225.h11v06.061.2021320163717.hdf"


def _sub(path, field):
    return f'HDF4_EOS:EOS_GRID:"{path}":{field}'


def test_mod11_pixel_by_hand_and_qc(shared_data):
    from ssm_downscaling.core.readers.modis_lst import qc_mask, read_mod11

    path = shared_data / LST_A
    d = read_mod11(path, qc="error_2k")
    assert d.date == dt.date(2021, 8, 15) and d.platform == "terra" and d.units == "K"
    raw = gdal.Open(_sub(path, "MODIS_Grid_Daily_1km_LST:LST_Day_1km")).ReadAsArray()
    qc = gdal.Open(_sub(path, "MODIS_Grid_Daily_1km_LST:QC_Day")).ReadAsArray()
    rows, cols = np.nonzero((raw > 0) & ((qc & 3) == 0))
    r, c = rows[0], cols[0]
    assert d.data[r, c] == pytest.approx(raw[r, c] * 0.02, abs=1e-4)
    assert np.isnan(d.data[raw == 0]).all()
    vals = d.data[np.isfinite(d.data)]
    assert 250 < vals.min() and vals.max() < 340
    good = read_mod11(path, qc="good")
    loose = read_mod11(path, qc="error_3k")
    n = [np.isfinite(x.data).sum() for x in (good, d, loose)]
    assert n[0] <= n[1] <= n[2] and n[0] == int(((raw > 0) & ((qc & 3) == 0)).sum())
    # bit logic by hand: mandatory 01 with LST error code 01 (<= 2 K) passes error_2k, not error_1k
    q = np.array([0b01000001], dtype=np.uint8)
    assert qc_mask(q, "error_2k")[0] and not qc_mask(q, "error_1k")[0] and not qc_mask(q, "good")[0]


def test_mod11_night_and_difference(shared_data):
    from ssm_downscaling.core.readers.modis_lst import read_mod11, read_mod11_difference

    path = shared_data / LST_B
    day = read_mod11(path)
    night = read_mod11(path, night=True)
    diff = read_mod11_difference(path)
    both = np.isfinite(day.data) & np.isfinite(night.data)
    assert both.sum() > 1000
    assert np.allclose(diff.data[both], day.data[both] - night.data[both], atol=1e-4)
    assert np.isnan(diff.data[~both]).all()
    assert np.nanmean(night.data) < np.nanmean(day.data)  # NE Brazil, November: nights cooler


def test_tile_lands_where_its_corners_say(shared_data):
    from ssm_downscaling.core.grid import to_wkt, transform_points
    from ssm_downscaling.core.readers.modis_lst import read_mod11
    from ssm_downscaling.core.readers.modis_tiles import tile_grid, tiles_for_extent

    d = read_mod11(shared_data / LST_A)
    assert d.grid == tile_grid(11, 5)
    gt = gdal.Open(_sub(shared_data / LST_A, "MODIS_Grid_Daily_1km_LST:LST_Day_1km")).GetGeoTransform()
    assert abs(gt[0] - d.grid.transform[0]) < 1 and abs(gt[3] - d.grid.transform[3]) < 1
    # v05 spans 40 N .. 30 N: y = R * lat (sinusoidal)
    assert d.grid.transform[3] == pytest.approx(6371007.181 * math.radians(40.0), abs=1.0)
    x, y = d.grid.xy(np.array([600]), np.array([600]), offset=0.0)  # tile centre
    lon, lat = transform_points(x, y, d.grid.crs_wkt, to_wkt(4326))
    assert lat[0] == pytest.approx(35.0, abs=1e-6)
    # by hand: x = -20015109.354 + 11.5 * 1111950.52 = -7227678.3 m; lon = x / (R cos 35) = -79.35 deg
    assert lon[0] == pytest.approx(-79.350, abs=1e-3)
    assert lon[0] == pytest.approx(math.degrees(x[0] / (6371007.181 * math.cos(math.radians(35.0)))), abs=1e-6)
    assert (11, 5) in tiles_for_extent((-80.0, 34.0, -79.0, 36.0))


def test_two_tiles_one_day_mosaic_and_platform_rules(shared_data, tmp_path):
    from ssm_downscaling.core.readers import ImportOptions, import_product
    from ssm_downscaling.core.readers.modis_lst import read_mod11
    from ssm_downscaling.core.series import read_raster

    # the h14v09 tile under the name of a same-day file, and an "Aqua" copy of h11v05
    inp = tmp_path / "in"
    inp.mkdir()
    a = inp / "MOD11A1.A2021227.h11v05.061.2021228105320.hdf"
    b = inp / "MOD11A1.A2021227.h14v09.006.hdf"
    aq = inp / "MYD11A1.A2021227.h11v05.061.2021228105320.hdf"
    os.symlink(shared_data / LST_A, a)
    os.symlink(shared_data / LST_B, b)
    os.symlink(shared_data / LST_A, aq)
    s = import_product([a, b], tmp_path / "out", ImportOptions("mod11_lst"))
    assert len(s.written) == 1 and s.grid.shape == (5 * 1200, 4 * 1200)
    m = read_raster(s.written[0])
    ta, tb = read_mod11(a), read_mod11(b)
    assert np.array_equal(m[:1200, :1200], ta.data, equal_nan=True)
    assert np.array_equal(m[4 * 1200 :, 3 * 1200 :], tb.data, equal_nan=True)
    assert np.isnan(m[1200:4800, :]).all()
    terra_only = import_product([a, aq], tmp_path / "t", ImportOptions("mod11_lst", platform_rule="terra"))
    assert any("aqua file left out" in why for _, why in terra_only.skipped)
    mean = import_product([a, aq], tmp_path / "m", ImportOptions("mod11_lst", platform_rule="mean"))
    assert np.array_equal(read_raster(mean.written[0]), ta.data, equal_nan=True)


def test_mod13_ndvi_scale_fill_reliability(shared_data):
    from ssm_downscaling.core.readers.modis_vi import read_mod13

    path = shared_data / NDVI
    d = read_mod13(path, max_reliability=1)
    assert d.date == dt.date(2021, 8, 13)
    sub = _sub(path, 'MODIS_Grid_16DAY_1km_VI:"1 km 16 days NDVI"')
    ds = gdal.Open(sub)
    assert ds.GetRasterBand(1).GetScale() == 10000  # the trap: GDAL reports 10000, NDVI = count / 10000
    raw = ds.ReadAsArray()
    rel = gdal.Open(_sub(path, 'MODIS_Grid_16DAY_1km_VI:"1 km 16 days pixel reliability"')).ReadAsArray()
    rows, cols = np.nonzero(rel == 0)
    r, c = rows[0], cols[0]
    assert d.data[r, c] == pytest.approx(raw[r, c] / 10000.0, abs=1e-6)
    assert np.isnan(d.data[raw == -3000]).all() and np.isnan(d.data[rel == 3]).all()
    assert np.nanmax(d.data) <= 1.0 and np.nanmin(d.data) >= -0.2
    strict = read_mod13(path, max_reliability=0)
    assert np.isfinite(strict.data).sum() == int(((rel == 0) & (raw != -3000)).sum())


def test_mod13_composite_served_as_daily(shared_data, tmp_path):
    from ssm_downscaling.core.readers import ImportOptions, import_product

    s = import_product([shared_data / NDVI], tmp_path, ImportOptions("mod13_ndvi"),
                       start=dt.date(2021, 8, 20), end=dt.date(2021, 9, 30))
    assert s.days[0] == dt.date(2021, 8, 20) and s.days[-1] == dt.date(2021, 8, 28)  # 13 Aug + 15 days
    s2 = import_product([shared_data / NDVI], tmp_path / "c", ImportOptions("mod13_ndvi", composite_as_daily=False))
    assert s2.days == [dt.date(2021, 8, 13)]

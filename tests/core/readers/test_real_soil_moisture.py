"""Coarse soil moisture readers on the real files in ../shared/data: LPRM AMSR2 and ESA CCI.

Reference values are read with netCDF4 (an independent library) at hand-computed indices.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

pytestmark = pytest.mark.realdata

LPRM = "amsr2/LPRM-AMSR2_L3_D_SOILM3_V001_20150401013507.nc4"
CCI = "esa_cci/ESACCI-SOILMOISTURE-L3S-SSMV-PASSIVE-20160606000000-fv05.2.nc"
ALBERS_CHINA = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +x_0=0 +y_0=0 +ellps=krass +units=m +no_defs"


def _raw(path, var):
    netCDF4 = pytest.importorskip("netCDF4")
    with netCDF4.Dataset(path) as f:
        f.set_auto_mask(False)
        f.set_auto_scale(False)
        return np.asarray(f[var][...])


def test_lprm_pixel_by_hand_units_and_orientation(shared_data):
    from ssm_downscaling.core.readers.lprm import read_lprm

    path = shared_data / LPRM
    d = read_lprm(path, "c1")
    assert d.date == dt.date(2015, 4, 1) and d.units == "m3/m3" and d.info["pass"] == "D"
    assert d.grid.shape == (720, 1440) and d.grid.transform == (-180.0, 0.25, 0.0, 90.0, 0.0, -0.25)
    raw = _raw(path, "soil_moisture_c1")  # stored (Longitude, Latitude)
    lon = _raw(path, "Longitude")
    lat = _raw(path, "Latitude")
    assert raw.shape == (1440, 720)
    # 105.125 E, 35.125 N (Loess Plateau): file indices from the coordinate vectors
    i_lon = int(np.argmin(np.abs(lon - 105.125)))
    j_lat = int(np.argmin(np.abs(lat - 35.125)))
    r, c = d.grid.rowcol(np.array([105.125]), np.array([35.125]))
    assert raw[i_lon, j_lat] != -32767
    assert d.data[r[0], c[0]] == pytest.approx(raw[i_lon, j_lat] / 100.0, abs=1e-6)
    # by hand: row (90 - 35.125)/0.25 = 219.5 -> 219, column (105.125 + 180)/0.25 = 1140.5 -> 1140
    assert (r[0], c[0]) == (219, 1140)
    vals = d.data[np.isfinite(d.data)]
    assert 0.0 <= vals.min() and vals.max() <= 1.0 and 0.05 < np.median(vals) < 0.9
    # land has values, open ocean has none (central Pacific, Indian Ocean)
    for lon_, lat_ in ((-150.0, 0.0), (80.0, -30.0), (-30.0, 30.0)):
        rr, cc = d.grid.rowcol(np.array([lon_]), np.array([lat_]))
        assert np.isnan(d.data[rr[0], cc[0]]), (lon_, lat_)


def test_lprm_error_filter_and_band(shared_data):
    from ssm_downscaling.core.readers.lprm import read_lprm

    path = shared_data / LPRM
    all_ = read_lprm(path, "x")
    strict = read_lprm(path, "x", max_error=0.01)
    assert np.isfinite(strict.data).sum() < np.isfinite(all_.data).sum()
    assert strict.info["rejected_by_error"] > 0


def test_lprm_on_china_albers_puts_land_values_over_land(shared_data):
    from ssm_downscaling.core.grid import Grid
    from ssm_downscaling.core.readers import ImportOptions, import_product
    from ssm_downscaling.core.series import read_raster

    grid = Grid.from_bounds(ALBERS_CHINA, (-2_700_000, 1_800_000, 2_300_000, 6_000_000), 25_000)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        s = import_product([shared_data / LPRM], tmp, ImportOptions("lprm"), grid)
        arr = read_raster(Path(tmp) / "ssm_2015-04-01.tif")
    assert [d.isoformat() for d in s.days] == ["2015-04-01"]
    x, y = grid.centres()
    from ssm_downscaling.core.grid import to_wkt, transform_points

    def at(lon, lat):
        px, py = transform_points(np.array([lon]), np.array([lat]), to_wkt(4326), ALBERS_CHINA)
        r, c = grid.rowcol(px, py)
        return arr[r[0], c[0]]

    assert np.isfinite(at(105.1, 35.1))  # Loess Plateau
    assert np.isfinite(at(116.4, 39.9))  # Beijing plain
    assert np.isnan(at(120.0, 15.0))  # South China Sea
    assert np.isnan(at(125.0, 30.0))  # East China Sea
    vals = arr[np.isfinite(arr)]
    assert vals.size > 1000 and vals.max() <= 1.0


def test_esa_cci_pixel_flag_and_grid(shared_data):
    from ssm_downscaling.core.readers.esa_cci import read_esa_cci

    path = shared_data / CCI
    d = read_esa_cci(path)
    assert d.date == dt.date(2016, 6, 6) and d.grid.transform == (-180.0, 0.25, 0.0, 90.0, 0.0, -0.25)
    sm = _raw(path, "sm")[0]  # (lat, lon), latitude descending
    flag = _raw(path, "flag")[0]
    lat = _raw(path, "lat")
    assert lat[0] > lat[-1]
    ok = (sm != -9999) & (flag == 0)
    rows, cols = np.nonzero(ok)
    k = len(rows) // 2
    assert d.data[rows[k], cols[k]] == pytest.approx(float(sm[rows[k], cols[k]]), abs=1e-7)
    assert np.isnan(d.data[(sm == -9999)]).all()
    assert np.isnan(d.data[(flag != 0)]).all()
    vals = d.data[np.isfinite(d.data)]
    assert 0 <= vals.min() and vals.max() <= 1
    # China (Huang-Huai plain, 115 E 34 N) is covered in June
    r, c = d.grid.rowcol(np.array([115.125]), np.array([34.125]))
    assert np.isfinite(d.data[r[0], c[0]]) or np.isfinite(d.data[r[0] - 2 : r[0] + 3, c[0] - 2 : c[0] + 3]).any()


def test_percent_left_in_percent_is_refused(tmp_path):
    from ssm_downscaling.core.grid import Grid
    from ssm_downscaling.core.readers import ProductError
    from ssm_downscaling.core.readers.generic import read_generic
    from ssm_downscaling.core.series import write_raster

    g = Grid.from_bounds(4326, (100, 30, 101, 31), 0.25)
    p = write_raster(tmp_path / "sm_2019-06-01.tif", np.full((4, 4), 25.0, dtype=np.float32), g)
    with pytest.raises(ProductError, match=r"sm_2019-06-01.tif: variable band 1: .*plausible range 0..1 m3/m3"):
        read_generic(p, "m3/m3")
    d = read_generic(p, "percent")
    assert np.allclose(d.data, 0.25)

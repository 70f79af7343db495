"""Time-series cell files (QA4SM / pytesmo layout) on the real samples in coarse_ts/:
daily means per location, units (GLDAS kg m-2 -> m3/m3), quality flags, the native grid
found from the locations, and the cell a location lands in."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

pytestmark = pytest.mark.realdata
netCDF4 = pytest.importorskip("netCDF4")


def _files(shared_data, name):
    return sorted((shared_data / "coarse_ts" / name).glob("[0-9]*.nc"))


def _day_mean(path, var, loc, day, scale=1.0, qvar=None, qok=None):
    with netCDF4.Dataset(path) as f:
        t = netCDF4.num2date(f["time"][:], f["time"].units, only_use_cftime_datetimes=False)
        sel = np.array([x.date() == day for x in t])
        v = np.ma.filled(f[var][loc, sel].astype(float), np.nan) * scale
        if qvar is not None:
            q = np.ma.filled(f[qvar][loc, sel].astype(float), 1)
            v[~qok(q)] = np.nan
        return float(np.nanmean(v)), float(f["lon"][loc]), float(f["lat"][loc])


def test_esa_cci_cells_day_by_hand(shared_data):
    from ssm_downscaling.core.readers.timeseries import cells_to_days, read_cells

    files = _files(shared_data, "ESA_CCI_SM_P_V09_2")
    c = read_cells(files)
    day = dt.date(2018, 7, 1)
    k = c.days.index(day)
    loc = int(np.nanargmax(np.isfinite(c.values[:, k])))  # first location with a value that day
    want, lon, lat = _day_mean(files[0] if loc < 14 else files[1], "sm", loc if loc < 14 else loc - 14, day,
                               qvar="flag", qok=lambda q: q == 0)
    assert c.values[loc, k] == pytest.approx(want, abs=1e-6)
    pds = {p.date: p for p in cells_to_days(c)}
    pd_ = pds[day]
    assert pd_.grid.res == (0.25, 0.25) and pd_.grid.transform[0] % 0.25 == 0
    r, cc = pd_.grid.rowcol(np.array([lon]), np.array([lat]))
    assert pd_.data[r[0], cc[0]] == pytest.approx(want, abs=1e-6)


def test_gldas_cells_kg_m2_to_m3_m3(shared_data):
    from ssm_downscaling.core.readers.timeseries import read_cells

    files = _files(shared_data, "GLDAS_NOAH025_3H_2_1")
    c = read_cells(files)
    day = dt.date(2017, 3, 1)
    k = c.days.index(day)
    want, _, _ = _day_mean(files[0], "SoilMoi0_10cm_inst", 0, day, scale=0.01)  # 8 three-hourly steps
    assert c.values[0, k] == pytest.approx(want, abs=1e-6)
    assert 0.05 < np.nanmedian(c.values) < 0.6  # m3/m3, not kg m-2


def test_smap_and_smos_grids(shared_data):
    from ssm_downscaling.core.grid import ease2_global
    from ssm_downscaling.core.readers.timeseries import native_grid, read_cells

    smap = read_cells(_files(shared_data, "SMAP_V8_AM/netcdf"))  # GDAL cannot read these: netCDF4 fallback
    assert native_grid(smap.lon, smap.lat) == ease2_global(36)
    smos = read_cells(_files(shared_data, "SMOS_105_ASC")[:1])
    g = native_grid(smos.lon, smos.lat)
    # EASE-Grid 2.0 25 km: 584 rows centred on the equator -> top edge 584 * 25025.26 / 2 = 7 307 375.92 m
    assert g == ease2_global(25) and g.transform[3] == pytest.approx(7_307_375.92, abs=0.01)


def test_import_cells_onto_a_date_range(shared_data, tmp_path):
    from ssm_downscaling.core.readers import ImportOptions, import_product
    from ssm_downscaling.core.series import DailySeries

    s = import_product(_files(shared_data, "SMAP_V8_PM/netcdf"), tmp_path, ImportOptions("ts_cells"),
                       start=dt.date(2017, 6, 1), end=dt.date(2017, 6, 10))
    assert len(s.files_read) == 2 and not s.skipped
    series = DailySeries.from_folder(tmp_path)
    assert 1 <= len(series) <= 10 and all(dt.date(2017, 6, 1) <= d <= dt.date(2017, 6, 10) for d in series.dates)
    arr = series.read(series.start)
    assert np.nanmax(arr) <= 1 and np.isfinite(arr).sum() >= 1

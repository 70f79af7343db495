"""Real data, made by no one here: SMAP L3 V8 AM time-series cells (36 km EASE-Grid 2.0)
converted to a daily raster series and validated against the Hawaii ISMN stations; every
number must equal what pytesmo computes on the same matched pairs."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from osgeo import osr
from scipy import stats

from ssm_downscaling.core.grid import ease2_global
from ssm_downscaling.core.validation import metrics as M
from ssm_downscaling.core.validation import read_ismn, validate_stations
from ssm_downscaling.core.validation.timeseries import cells_to_series, grid_around, read_ts_cells

pytesmo_metrics = pytest.importorskip("pytesmo.metrics")

pytestmark = pytest.mark.realdata

START, END = dt.date(2017, 1, 1), dt.date(2018, 12, 31)


@pytest.fixture(scope="module")
def smap(shared_data, tmp_path_factory):
    folder = shared_data / "coarse_ts" / "SMAP_V8_AM" / "netcdf"
    cells = read_ts_cells(sorted(folder.glob("0*.nc")), "soil_moisture")
    out = tmp_path_factory.mktemp("smap") / "smap_am"
    grid = grid_around(cells, ease2_global(36))
    cells_to_series(cells, grid, out, "smap_am", START, END)
    return cells, grid, out


def test_cells_read_through_gdal_match_the_files(shared_data, smap):
    cells, grid, out = smap
    assert cells.values.shape[0] == 13 and cells.days[0] == np.datetime64("2015-03-31")
    # locations are EASE-Grid 2.0 36 km cell centres; the grid point index is (405 - row) * 964 + col
    g = ease2_global(36)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(srs, g.srs)
    for lon, lat, gpi in zip(cells.lon, cells.lat, cells.location_id):
        x, y, _ = ct.TransformPoint(float(lon), float(lat))
        row, col = g.rowcol(np.array(x), np.array(y))
        assert (405 - int(row)) * 964 + int(col) == gpi
    netCDF4 = pytest.importorskip("netCDF4")  # a second, independent reader (test only)
    with netCDF4.Dataset(str(shared_data / "coarse_ts" / "SMAP_V8_AM" / "netcdf" / "0165.nc")) as ds:
        ds.set_auto_mask(False)
        sm = ds["soil_moisture"][:].astype(np.float64)
        sm[sm == -9999.0] = np.nan
        assert (ds["location_id"][:] == cells.location_id[:8]).all()
        t0 = np.datetime64("1858-11-17") + ds["time"][:].astype("timedelta64[D]")
    col = np.searchsorted(cells.days, t0)
    np.testing.assert_array_equal(cells.values[:8][:, col], sm)
    assert len(list(out.glob("smap_am_*.tif"))) > 200


def test_hawaii_every_number_equals_pytesmo_on_the_same_pairs(shared_data, smap, capsys, request):
    cells, grid, out = smap
    res = validate_stations({"SMAP L3 AM": out}, shared_data / "ismn" / "HAWAII", min_obs=10)
    st = read_ismn(shared_data / "ismn" / "HAWAII")  # independently: station daily means
    assert res.stations.ids == st.ids
    # the SMAP cell of each station, found independently of the extraction code
    g = ease2_global(36)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ct = osr.CoordinateTransformation(srs, g.srs)
    t = res.comparison.metrics("SMAP L3 AM")
    days = np.array(res.dates, dtype="datetime64[D]")
    tcol = np.searchsorted(cells.days, days)
    lines = [f"{'station':45s} {'n_obs':>5s} {'R':>7s} {'p_R':>8s} {'BIAS':>8s} {'RMSD':>7s} {'ubRMSD':>7s}"
             f"  {'R 95% CI':>15s}  {'ubRMSD 95% CI':>15s}"]
    checked = 0
    for i, sid in enumerate(res.stations.ids):
        x, y, _ = ct.TransformPoint(float(st.lon[i]), float(st.lat[i]))
        row, col = g.rowcol(np.array(x), np.array(y))
        hit = np.flatnonzero(cells.location_id == (405 - int(row)) * 964 + int(col))
        if hit.size:
            k = int(hit[0])
            prod = np.where(cells.days[tcol] == days, cells.values[k, np.minimum(tcol, cells.days.size - 1)], np.nan)
        else:  # no SMAP time series for this station's cell in the excerpt
            k, prod = -1, np.full(days.size, np.nan)
        prod = prod.astype(np.float32).astype(np.float64)  # the rasters store float32, as the files do
        ref = st.on_axis(res.dates[0], len(res.dates))[i]
        ok = np.isfinite(prod) & np.isfinite(ref)
        np.testing.assert_array_equal(res.comparison.masks["SMAP L3 AM"][i], ok)
        np.testing.assert_array_equal(res.products["SMAP L3 AM"][i][ok], prod[ok])
        assert t["n_obs"][i] == ok.sum()
        if ok.sum() < 10:
            assert np.isnan(t["urmsd"][i])
            lines.append(f"{sid:45s} {int(ok.sum()):5d}   (fewer than min_obs = 10 matched days)")
            continue
        xx, yy = prod[ok], ref[ok]
        b, blo, bhi = pytesmo_metrics.with_analytical_ci(pytesmo_metrics.bias, xx, yy)
        u, ulo, uhi = pytesmo_metrics.with_analytical_ci(pytesmo_metrics.ubrmsd, xx, yy)
        r, rlo, rhi = pytesmo_metrics.with_analytical_ci(pytesmo_metrics.pearson_r, xx, yy)
        expect = {"BIAS": b, "BIAS_ci_lower": blo, "BIAS_ci_upper": bhi, "urmsd": u, "urmsd_ci_lower": ulo,
                  "urmsd_ci_upper": uhi, "R": r, "R_ci_lower": rlo, "R_ci_upper": rhi,
                  "RMSD": pytesmo_metrics.rmsd(xx, yy), "p_R": stats.pearsonr(xx, yy)[1]}
        for key, v in expect.items():
            assert abs(t[key][i] - v) <= 1e-9, (sid, key, t[key][i], v)
        # and pytesmo's metric calculator (float32 results) agrees on names and values
        import pandas as pd
        from pytesmo.validation_framework.metric_calculators import PairwiseIntercomparisonMetrics

        calc = PairwiseIntercomparisonMetrics(min_obs=10, calc_spearman=False, calc_kendall=False)
        pr = calc.calc_metrics(pd.DataFrame({"product": xx, "station": yy}), (k, 0.0, 0.0))
        for key in M.ALL_KEYS:
            assert float(pr[key][0]) == pytest.approx(float(t[key][i]), rel=2e-5, abs=1e-6), key
        checked += 1
        lines.append(f"{sid:45s} {int(t['n_obs'][i]):5d} {t['R'][i]:7.3f} {t['p_R'][i]:8.2g} {t['BIAS'][i]:+8.4f} "
                     f"{t['RMSD'][i]:7.4f} {t['urmsd'][i]:7.4f}  [{t['R_ci_lower'][i]:+.3f}, {t['R_ci_upper'][i]:+.3f}]"
                     f"  [{t['urmsd_ci_lower'][i]:.4f}, {t['urmsd_ci_upper'][i]:.4f}]")
    assert checked >= 5
    a = res.comparison.average("SMAP L3 AM")
    ok = np.isfinite(t["urmsd"])
    assert a["urmsd"] == pytest.approx(np.mean(t["urmsd"][ok]), abs=1e-15) and a["n_stations"] == checked
    lines.append(f"{'station mean':45s} {a['n_obs']:5d} {a['R']:7.3f} {'':8s} {a['BIAS']:+8.4f} {a['RMSD']:7.4f} "
                 f"{a['urmsd']:7.4f}")
    if request.config.getoption("verbose") > 0:  # the per-station table, with -v
        with capsys.disabled():
            print("\nSMAP L3 V8 AM vs Hawaii ISMN (G flags, 0-10 cm), 2017-2018\n" + "\n".join(lines))

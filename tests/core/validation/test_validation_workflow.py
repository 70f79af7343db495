"""validate_stations end to end on the tiny world: known answers, product comparison on
common days, the clear/cloudy split, warnings and errors for bad input, and the outputs."""

from __future__ import annotations

import csv
import datetime as dt
import logging
import shutil

import numpy as np
import pytest
from osgeo import ogr

from ssm_downscaling.core.errors import Cancelled
from ssm_downscaling.core.validation import metrics as M
from ssm_downscaling.core.validation.report import STYLE_FIELD, write_report, write_station_layer
from ssm_downscaling.core.validation.stations import StationError
from ssm_downscaling.core.validation.validate import ValidationError, validate_stations, write_metrics_csv

from .conftest import write_station_csv


def _product_at_stations(world):
    j = np.arange(len(world.dates))
    v = world.value(world.rows[:, None], world.cols[:, None], j[None, :])
    v = v.astype(np.float32).astype(np.float64)
    v[:, 7] = np.nan  # no file that day
    v[(world.rows == 5) & (world.cols == 5), :] = np.nan  # nodata pixel
    return v


def _stations(world, seed=0):
    rng = np.random.default_rng(seed)
    truth = _product_at_stations(world)
    truth = np.where(np.isnan(truth), 0.2, truth)
    off = np.linspace(-0.03, 0.03, len(world.ids))[:, None]
    y = truth - off + rng.normal(0, 0.01, truth.shape)
    y[:, 30:33] = np.nan  # station gaps
    return y


@pytest.fixture()
def csv_path(tmp_path, world):
    return write_station_csv(tmp_path / "stations.csv", world, _stations(world), extra_cols=True)


def test_known_answer_equals_the_metrics_of_the_pairs(world, csv_path):
    res = validate_stations({"prod": world.product}, csv_path, min_obs=10)
    y = np.round(_stations(world), 17)
    x = _product_at_stations(world)
    t = res.comparison.metrics("prod")
    assert res.stations.ids == world.ids and res.dates == world.dates
    for i in range(len(world.ids)):
        ok = np.isfinite(x[i]) & np.isfinite(y[i])
        ref = M.pairwise_metrics(x[i][ok], res.reference[i][ok])
        np.testing.assert_allclose(res.reference[i][ok], y[i][ok], rtol=0, atol=1e-15)
        if i == 3:  # the station on the nodata pixel
            assert t["n_obs"][i] == 0 and np.isnan(t["urmsd"][i])
            continue
        assert t["n_obs"][i] == ok.sum() == 36
        for k in M.ALL_KEYS:
            assert t[k][i] == pytest.approx(ref[k], abs=1e-12)
        # the station offsets come back as biases, the noise as ubRMSD
        assert t["BIAS"][i] == pytest.approx(np.linspace(-0.03, 0.03, 7)[i], abs=0.006)
        assert 0.006 < t["urmsd"][i] < 0.014
    assert any("S03" in w and "fewer than min_obs" in w for w in res.warnings)
    avg = res.comparison.average("prod")
    assert avg["n_stations"] == 6 and avg["urmsd"] == pytest.approx(np.nanmean(t["urmsd"]))


def test_products_are_compared_on_common_days_and_split_by_flags(tmp_path, world, csv_path):
    # product B: the same rasters on even days only, plus 0.05
    b = tmp_path / "B"
    b.mkdir()
    from ssm_downscaling.core.series import DailySeries, read_raster, write_day

    s = DailySeries.from_folder(world.product)
    for d in [d for d in s.dates if (d - world.dates[0]).days % 2 == 0]:
        write_day(b, "b", d, read_raster(s.path(d)) + 0.05, world.grid)
    res = validate_stations({"A": world.product, "B": b}, csv_path, flags=world.flags, min_obs=5)
    ta, tb = res.comparison.metrics("A"), res.comparison.metrics("B")
    ok = np.array([sid != "S03" for sid in world.ids])  # S03 is on a nodata pixel
    np.testing.assert_array_equal(ta["n_obs"], tb["n_obs"])
    assert ta["n_obs"][0] == 18  # even days 0..38 except the gap days 30, 32
    np.testing.assert_allclose((tb["BIAS"] - ta["BIAS"])[ok], 0.05, atol=1e-6)
    np.testing.assert_allclose(tb["urmsd"], ta["urmsd"], atol=1e-6, equal_nan=True)
    assert np.isnan(ta["BIAS"][~ok]).all()
    # flags: SSM legend detected; even days clear (0), odd cloudy (2), column 0 always 3
    assert res.flag_kind == "ssm"
    clear, cloudy = res.comparison.metrics("A", "clear"), res.comparison.metrics("A", "cloudy")
    assert clear["n_obs"][0] == 18 and cloudy["n_obs"][0] == 0
    s4 = world.ids.index("S04")  # row 0, col 0
    assert clear["n_obs"][s4] == 0 and cloudy["n_obs"][s4] == 18
    # without common days A keeps its odd days, and the split shows them as cloudy
    own = validate_stations({"A": world.product, "B": b}, csv_path, flags=world.flags, min_obs=5, common_days=False)
    assert own.comparison.metrics("A")["n_obs"][0] == 36 and own.comparison.metrics("B")["n_obs"][0] == 18
    assert own.comparison.metrics("A", "cloudy")["n_obs"][0] == 18
    # the LST rule reads flag 2 as unknown: nothing cloudy, even days clear
    lst = validate_stations({"A": world.product}, csv_path, flags=world.flags, flag_kind="lst", min_obs=5)
    assert lst.comparison.metrics("A", "cloudy")["n_obs"].sum() == 0
    assert lst.comparison.metrics("A", "clear")["n_obs"][0] == 18


def test_outside_stations_and_date_range(tmp_path, world, csv_path, caplog):
    extra = tmp_path / "more.csv"
    text = csv_path.read_text() + "FAR,10.0,50.0,2019-06-10,0.2,0.05,TEST,x\nEARLY,10.0,50.0,2019-06-02,0.2,0.05,T,x\n"
    extra.write_text(text)
    with caplog.at_level(logging.WARNING, logger="ssm_downscaling"):
        res = validate_stations([world.product], extra, start=dt.date(2019, 6, 5), end=dt.date(2019, 6, 30))
    assert "FAR" not in res.stations.ids
    assert any("outside every product raster" in w and "FAR" in w for w in res.warnings)
    assert any("FAR" in r.message for r in caplog.records)
    assert any("no value between 2019-06-05 and 2019-06-30" in w and "EARLY" in w for w in res.warnings)
    assert res.dates[0] == dt.date(2019, 6, 5) and res.dates[-1] == dt.date(2019, 6, 30)
    assert res.product_names == ["product"]


def test_bad_input_raises_clear_errors(tmp_path, world, csv_path):
    far = tmp_path / "far.csv"
    far.write_text("station_id,lon,lat,date,sm\nF1,10,50,2019-06-02,0.2\nF2,11,51,2019-06-03,0.3\n")
    with pytest.raises(ValidationError, match="Every station lies outside the rasters of 'product'"):
        validate_stations([world.product], far)
    late = tmp_path / "late.csv"
    late.write_text(f"station_id,lon,lat,date,sm\nS,{world.lon[0]},{world.lat[0]},2021-01-01,0.2\n")
    with pytest.raises(ValidationError, match=r"No dates in common: product 'product'.*2019-06-01 to 2019-07-10"):
        validate_stations([world.product], late)
    with pytest.raises(ValidationError, match=r"No station has at least min_obs=50 matched days.*S00 \(36\)"):
        validate_stations([world.product], csv_path, min_obs=50)
    with pytest.raises(ValidationError, match="No station value between"):
        validate_stations([world.product], csv_path, start=dt.date(2020, 1, 1))
    with pytest.raises(ValidationError, match="before the start"):
        validate_stations([world.product], csv_path, start=dt.date(2019, 6, 5), end=dt.date(2019, 6, 1))
    with pytest.raises(ValidationError, match="min_obs"):
        validate_stations([world.product], csv_path, min_obs=2)
    bad = tmp_path / "bad.csv"
    bad.write_text("station_id,lon,lat,sm\nA,1,2,0.3\n")
    with pytest.raises(StationError, match="lacks the column"):
        validate_stations([world.product], bad)
    with pytest.raises(Exception, match="is not a folder"):
        validate_stations([tmp_path / "nothing"], csv_path)


def test_cancel_leaves_nothing(tmp_path, world, csv_path):
    calls = {"n": 0}

    def cancel_later():
        calls["n"] += 1
        return calls["n"] > 10

    with pytest.raises(Cancelled):
        validate_stations([world.product], csv_path, is_cancelled=cancel_later)


def test_outputs_table_layer_and_report(tmp_path, world, csv_path):
    res = validate_stations({"prod": world.product, "copy": world.product}, csv_path, flags=world.flags, min_obs=5)
    out = tmp_path / "out"
    table = write_metrics_csv(res, out / "metrics.csv")
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 7 * 2 * 3
    r0 = next(r for r in rows if r["station_id"] == "S00" and r["product"] == "prod" and r["subset"] == "all")
    assert float(r0["urmsd"]) == pytest.approx(res.comparison.metrics("prod")["urmsd"][0], rel=1e-15)
    r3 = next(r for r in rows if r["station_id"] == "S03" and r["subset"] == "all")
    assert r3["urmsd"] == "" and r3["n_obs"] == "0"
    gpkg = write_station_layer(res, out / "stations.gpkg")
    ds = ogr.Open(str(gpkg))
    lyr = ds.GetLayer(0)
    assert lyr.GetFeatureCount() == 7
    names = [lyr.GetLayerDefn().GetFieldDefn(i).GetName() for i in range(lyr.GetLayerDefn().GetFieldCount())]
    for f in (STYLE_FIELD, "p1_name", "p2_urmsd", "p1_clear_urmsd", "p2_cloudy_n_obs", "p1_R_ci_lower"):
        assert f in names
    feats = {f.GetField("station_id"): f for f in lyr}
    assert feats["S00"].GetField("p1_urmsd") == pytest.approx(res.comparison.metrics("prod")["urmsd"][0])
    assert feats["S03"].IsFieldNull("p1_urmsd") and feats["S00"].GetField("p2_name") == "copy"
    g = feats["S01"].GetGeometryRef()
    assert (g.GetX(), g.GetY()) == pytest.approx((world.lon[1], world.lat[1]))
    ds = None
    files = write_report(res, out / "report.html", table)
    html = files["html"].read_text()
    for piece in ("Station averages", "clear-sky", "cloudy", "S00", "metrics.csv", "report_scatter.png",
                  "report_map.png", "report_timeseries.png", "fewer than min_obs"):
        assert piece in html
    import json

    summary = json.loads(files["summary"].read_text())
    row = next(a for a in summary["averages"] if a["product"] == "copy" and a["subset"] == "cloudy"
               and a["statistic"] == "median")
    assert row["urmsd"] == pytest.approx(res.comparison.average("copy", "cloudy", "median")["urmsd"])
    for k in ("scatter", "map", "timeseries"):
        assert files[k].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*"))  # no temporary file left
    shutil.rmtree(out)


@pytest.mark.parametrize(
    ("description", "values", "kind"),
    [
        ("SSM flags: 0 coarse SSM observed; 1 seam-filled (coarse SSM missing that day); 2 LST gap-filled under "
         "cloud (coarse observed); 3 seam-filled and LST gap-filled; 255 no estimate", [0, 1], "ssm"),
        ("LST flag: 0 observed clear-sky, 1 gap-filled (cloudy), 255 no data", [0, 1], "lst"),
        ("", [0, 2, 3], "ssm"),
        ("", [0, 1], "lst"),
        ("cloud at the 10:30 overpass: 1 cloud, 0 clear, 255 no data", [], "lst"),
    ],
)
def test_flag_kind_detection(tmp_path, world, description, values, kind):
    from ssm_downscaling.core.series import DailySeries, write_day
    from ssm_downscaling.core.validation.matching import detect_flag_kind

    write_day(tmp_path, "f", world.dates[0], np.zeros(world.grid.shape, np.uint8), world.grid, description=description)
    assert detect_flag_kind(DailySeries.from_folder(tmp_path), np.array(values, dtype=float)) == kind

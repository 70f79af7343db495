"""The series driver on small folders of GeoTIFFs: outputs, flags, dates, bad inputs."""

from __future__ import annotations

import datetime as dt
import logging
import shutil

import numpy as np
import pytest
from osgeo import gdal

from ssm_downscaling.core.errors import Cancelled, GridError, RasterReadError, SeriesError, SsmError
from ssm_downscaling.core.grid import Grid, to_wkt
from ssm_downscaling.core.lst import FLAG_FILLED, FLAG_LEGEND, FLAG_NONE, FLAG_OBSERVED, METHODS, gapfill_series
from ssm_downscaling.core.series import DailySeries, read_raster, write_day

START = dt.date(2019, 6, 1)


def run(s, out, **kw):
    root = s["root"]
    args = dict(dem=root / "dem.tif", ndvi=root / "ndvi")
    args.update(kw)
    return gapfill_series(root / "lst", root / "bg", out / "lst", out / "flags", **args)


def listing(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("method", METHODS)
def test_series_outputs_and_flags(series, tmp_path, method):
    s = series(days=5)
    out = tmp_path / "out"
    summary = run(s, out, method=method, window=5)
    assert summary.days_processed == 5 and not summary.days_skipped
    names = listing(out / "lst")
    assert names == [f"lst_{START + dt.timedelta(days=i)}.tif" for i in range(5)]
    assert listing(out / "flags")[0] == f"lst_flag_{START}.tif"
    for i, day in enumerate(DailySeries.from_folder(out / "lst").dates):
        src = read_raster(s["root"] / "lst" / f"lst_{day}.tif")
        res = read_raster(out / "lst" / f"lst_{day}.tif")
        ds = gdal.Open(str(out / "flags" / f"lst_flag_{day}.tif"))
        band = ds.GetRasterBand(1)
        flags = band.ReadAsArray()
        assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 255
        assert band.GetDescription() == FLAG_LEGEND and ds.GetMetadataItem("DATE") == day.isoformat()
        obs = np.isfinite(src)
        assert np.array_equal(res[obs], src[obs]) and (flags[obs] == FLAG_OBSERVED).all()
        assert (flags[s["lake"]] == FLAG_NONE).all()  # water: never observed, NDVI nodata
        gaps = ~obs & ~s["lake"]
        if method in ("anomaly", "background"):
            assert (flags[gaps] == FLAG_FILLED).all()
        else:  # interpolation may lack sources within reach
            assert (flags[gaps] == FLAG_FILLED).mean() > 0.5
        filled = flags == FLAG_FILLED
        err = res[filled] - s["truth"][i][filled]
        assert np.sqrt(np.mean(err**2)) < 8.0
        assert Grid.from_raster(out / "lst" / f"lst_{day}.tif").shape == s["fine"].shape
    assert 0 < summary.gap_percent < 100 and summary.filled_percent > 50
    if method in ("anomaly", "background"):
        assert summary.lapse_rate == pytest.approx(-0.006, abs=0.003)


def test_anomaly_is_the_most_accurate_on_the_small_series(series, tmp_path):
    s = series(days=7)
    rmse = {}
    for m in METHODS:
        run(s, tmp_path / m, method=m, window=7)
        errs = []
        for i in range(7):
            day = START + dt.timedelta(days=i)
            res = read_raster(tmp_path / m / "lst" / f"lst_{day}.tif")
            src = read_raster(s["root"] / "lst" / f"lst_{day}.tif")
            gap = ~np.isfinite(src) & np.isfinite(res)
            errs.append(res[gap] - s["truth"][i][gap])
        rmse[m] = float(np.sqrt(np.mean(np.concatenate(errs) ** 2)))
    assert rmse["anomaly"] == min(rmse.values()), rmse


def test_date_range_writes_only_those_days_but_reads_the_window(series, tmp_path):
    s = series(days=6)
    out = tmp_path / "out"
    # (fixed background model: the learned one depends on the days processed)
    fixed = dict(lapse_rate=-0.006, background_smoothing=0.0)
    summary = run(s, out, start="2019-06-03", end=dt.date(2019, 6, 4), window=5, **fixed)
    assert summary.days_processed == 2
    assert listing(out / "lst") == ["lst_2019-06-03.tif", "lst_2019-06-04.tif"]
    full = tmp_path / "full"
    run(s, full, window=5, **fixed)
    a = read_raster(out / "lst" / "lst_2019-06-03.tif")
    b = read_raster(full / "lst" / "lst_2019-06-03.tif")
    np.testing.assert_array_equal(a, b)  # same window days, same answer


def test_overcast_and_clear_days_on_disk(series, tmp_path):
    s = series(days=5, cloud_days={1: 1.0, 3: 0.0})
    out = tmp_path / "out"
    run(s, out)
    f1 = read_raster(out / "flags" / "lst_flag_2019-06-02.tif", resampling="nearest")
    f3 = read_raster(out / "flags" / "lst_flag_2019-06-04.tif", resampling="nearest")
    land = ~s["lake"]
    assert (f1[land] == FLAG_FILLED).all()
    assert (f3[land] == FLAG_OBSERVED).all()


def test_missing_background_day_is_skipped_with_a_warning(series, tmp_path, caplog):
    s = series(days=5, skip_background=(2,))
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="ssm_downscaling"):
        summary = run(s, out, window=3)
    assert summary.days_processed == 4
    assert summary.days_skipped[0][0] == dt.date(2019, 6, 3)
    assert "no background file" in summary.days_skipped[0][1]
    assert any("2019-06-03 skipped" in r.getMessage() for r in caplog.records)
    assert "lst_2019-06-03.tif" not in listing(out / "lst")
    # the temporal and spatial methods do not need the background
    summary = run(s, tmp_path / "t", method="temporal")
    assert summary.days_processed == 5


def test_background_not_overlapping_is_a_clear_error(series, tmp_path):
    s = series(days=3)
    far = tmp_path / "far"
    far.mkdir()
    g = Grid.from_bounds(to_wkt(4326), (-10.0, 40.0, -9.0, 41.0), 0.1)
    for i in range(3):
        write_day(far, "bg", START + dt.timedelta(days=i), np.full(g.shape, 290.0, np.float32), g)
    out = tmp_path / "out"
    with pytest.raises(GridError, match="overlap") as exc:
        gapfill_series(s["root"] / "lst", far, out / "lst", out / "flags")
    assert "bg_2019-06-01.tif" in str(exc.value)
    assert not out.exists()


def test_no_common_dates_is_a_clear_error(series, tmp_path):
    s = series(days=3)
    other = tmp_path / "bg2020"
    other.mkdir()
    for p in (s["root"] / "bg").iterdir():
        shutil.copy(p, other / p.name.replace("2019", "2020"))
    out = tmp_path / "out"
    with pytest.raises(SeriesError, match="No dates in common") as exc:
        gapfill_series(s["root"] / "lst", other, out / "lst", out / "flags")
    assert str(other) in str(exc.value)
    assert not out.exists()


def test_unreadable_file_is_a_clear_error_and_nothing_is_written(series, tmp_path):
    s = series(days=3)
    bad = s["root"] / "lst" / "lst_2019-06-04.tif"
    bad.write_bytes(b"this is not a GeoTIFF")
    out = tmp_path / "out"
    with pytest.raises(RasterReadError, match="lst_2019-06-04.tif"):
        gapfill_series(s["root"] / "lst", s["root"] / "bg", out / "lst", out / "flags")
    assert not out.exists()
    before = {p.name: p.stat().st_mtime_ns for p in (s["root"] / "lst").iterdir()}
    bad.unlink()
    (s["root"] / "bg" / "lst_background_2019-06-02.tif").write_bytes(b"garbage")
    with pytest.raises(RasterReadError, match="lst_background_2019-06-02.tif"):
        gapfill_series(s["root"] / "lst", s["root"] / "bg", out / "lst", out / "flags")
    assert not out.exists()
    after = {p.name: p.stat().st_mtime_ns for p in (s["root"] / "lst").iterdir()}
    assert {k: v for k, v in before.items() if k != bad.name} == after  # inputs untouched


def test_other_bad_inputs(series, tmp_path):
    s = series(days=2)
    root, out = s["root"], tmp_path / "out"
    with pytest.raises(SsmError, match="output folder is an input"):
        gapfill_series(root / "lst", root / "bg", root / "lst", out / "flags")
    with pytest.raises(SsmError, match="needs a background"):
        gapfill_series(root / "lst", None, out / "lst", out / "flags")
    with pytest.raises(SeriesError, match="no file between"):
        gapfill_series(root / "lst", root / "bg", out / "lst", out / "flags", start="2020-01-01")
    with pytest.raises(SsmError, match="before the start"):
        gapfill_series(root / "lst", root / "bg", out / "lst", out / "flags", start="2019-06-02", end="2019-06-01")
    celsius = tmp_path / "celsius"
    celsius.mkdir()
    for day, p in DailySeries.from_folder(root / "lst").files.items():
        write_day(celsius, "lst", day, read_raster(p) - 273.15, s["fine"])
    with pytest.raises(SsmError, match="kelvin"):
        gapfill_series(celsius, root / "bg", out / "lst", out / "flags")
    assert not out.exists()


def test_cancel_between_days_leaves_only_complete_files(series, tmp_path):
    s = series(days=5)
    out = tmp_path / "out"
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(Cancelled):
        run(s, out, is_cancelled=cancel, method="spatial")
    written = listing(out / "lst")
    assert len(written) < 5
    assert not any(n.startswith(".") for n in written + listing(out / "flags"))
    for n in written:
        assert np.isfinite(read_raster(out / "lst" / n)).any()


def test_progress_reaches_100(series, tmp_path):
    s = series(days=3)
    seen = []
    run(s, tmp_path / "out", progress=seen.append, method="background")
    assert seen and seen[-1] == pytest.approx(100.0) and all(0 <= v <= 100 for v in seen)
    assert seen == sorted(seen)

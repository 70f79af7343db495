"""Validation at archive scale (issue 12): the vectorised station-CSV reader gives the same
station set as the csv-module path, and the metrics computed in blocks of stations equal
those computed at once."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from ssm_downscaling.core.validation import metrics as M
from ssm_downscaling.core.validation import stations as S
from ssm_downscaling.core.validation.metrics import ALL_KEYS, metrics_table

# a plain table (no quotes, every line complete) with every kind of problem issue 9 reports
MESSY = (
    "station_id,lon,lat,date,sm,depth,network,flag\n"
    "B,101.0,31.0,2019-06-02,0.10,0.05,NB,G\n"  # line 2
    "A,100.5,30.25,2019-06-01T06:00,0.20,0.05,NA,G\n"  # A: 0.20 and 0.30 on 06-01 -> 0.25
    "A,100.5,30.25,2019-06-01 18:00:00,0.30,0.05,NA,G\n"
    "A,100.5,30.25,2019-06-03,0.40,0.05,NA,G\n"
    "A,100.5,30.25,2019-06-03,0.45,0.05,NA,G\n"  # line 6: duplicate, another value (ignored)
    "A,100.5,30.25,2029-06-04,0.40,0.05,NA,G\n"  # line 7: implausible year
    "A,100.5,30.25,2019-13-04,0.40,0.05,NA,G\n"  # line 8: not a date
    "A,abc,30.25,2019-06-05,0.40,0.05,NA,G\n"  # line 9: lon
    "A,100.5,30.25,2019-06-06,0.40,0.05,NA,D01\n"  # rejected flag (no message)
    ",100.5,30.25,2019-06-06,0.40,0.05,NA,G\n"  # line 11: empty id
    " B ,101.2,31.0,2019-06-04,0.30,0.05,NB,G\n"  # " B " is B; moved by 0.2 degree
    "B,101.0,31.0,2019-06-05,,0.05,NB,G\n"  # empty sm: missing, no message
    "C,102.0,32.0,2019-06-01,0.2,0.30,NC,G\n"  # too deep: C is left out (no message)
)


def _read(path, pandas: bool, monkeypatch) -> S.StationSet:
    with monkeypatch.context() as m:
        if not pandas:
            m.setattr(S, "_pd", None)
        return S.read_station_csv(path)


@pytest.mark.parametrize("chunk", [2, 250_000])
def test_pandas_and_csv_module_readers_give_the_same_stations(tmp_path, monkeypatch, chunk):
    pytest.importorskip("pandas")
    monkeypatch.setattr(S, "CSV_CHUNK", chunk)
    p = tmp_path / "messy.csv"
    p.write_text(MESSY)
    assert S._plain_table(p, ",", 8)
    fast, slow = _read(p, True, monkeypatch), _read(p, False, monkeypatch)
    for s in (fast, slow):
        assert s.ids == ["A", "B"] and s.network == ["NA", "NB"]
        assert s.start == dt.date(2019, 6, 1) and s.n_days == 4  # B on 06-05 has no value
        # hand-known daily means: A 06-01 mean of 0.20/0.30; 06-03 the first of two rows
        np.testing.assert_allclose(s.values[0, [0, 2]], [0.25, 0.40])
        np.testing.assert_allclose(s.values[1, [1, 3]], [0.10, 0.30])
        assert np.isfinite(s.values).sum() == 4
        assert s.lon.tolist() == [100.5, 101.0] and s.depth_from.tolist() == [0.05, 0.05]
        bad = s.problems[0]
        assert "4 row(s) could not be read" in bad
        for ln, what in ((7, "implausible"), (8, "is not a date"), (9, "lon 'abc' is not a number"),
                         (11, "empty station_id")):
            assert f"line {ln}: " in bad and what in bad
        assert any("B have different coordinates" in m for m in s.problems)
        assert any("duplicate row(s)" in m for m in s.problems)
    assert fast.problems == slow.problems
    np.testing.assert_array_equal(fast.values, slow.values)


def test_only_plain_tables_take_the_fast_path(tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    plain = tmp_path / "plain.csv"
    plain.write_text("station_id,lon,lat,date,sm\nA,1,2,2019-01-01,0.1\nA,1,2,2019-01-02,0.2")  # no final newline
    assert S._plain_table(plain, ",", 5)
    for name, text in (("quoted.csv", 'station_id,lon,lat,date,sm\n"A",1,2,2019-01-01,0.1\n'),
                       ("short.csv", "station_id,lon,lat,date,sm\nA,1,2,2019-01-01\nA,1,2,2019-01-02,0.2,x\n"),
                       ("blank.csv", "station_id,lon,lat,date,sm\nA,1,2,2019-01-01,0.1\n\n"),
                       ("cr.csv", "station_id,lon,lat,date,sm\rA,1,2,2019-01-01,0.1\r")):
        (tmp_path / name).write_text(text)
        assert not S._plain_table(tmp_path / name, ",", 5), name

    def no_csv_module(*a, **k):
        raise AssertionError("the csv module was used for a plain table")

    monkeypatch.setattr(S, "_chunks_csv", no_csv_module)
    s = S.read_station_csv(plain)
    assert s.values.tolist() == [[0.1, 0.2]]


def test_short_row_is_reported_by_either_path(tmp_path, monkeypatch):
    p = tmp_path / "short.csv"  # a long row makes up for the short one's missing delimiters
    p.write_text("station_id,lon,lat,date,sm\nA,1,2,2019-01-01,0.1\nA,1,2,2019-01-03\nA,1,2,2019-01-02,0.2,x\n")
    for pandas in (True, False):
        s = _read(p, pandas, monkeypatch)
        assert "line 3: only 4 field(s)" in s.problems[0]
        assert np.isfinite(s.values).sum() == 2


def test_metrics_in_blocks_equal_metrics_at_once(monkeypatch):
    rng = np.random.default_rng(3)
    y = rng.uniform(0.05, 0.45, (37, 50))
    x = y + rng.normal(0.01, 0.03, y.shape)
    x[rng.random(x.shape) < 0.2] = np.nan
    mask = rng.random(x.shape) < 0.8
    whole = metrics_table(x, y, mask, min_obs=5)
    monkeypatch.setattr(M, "ROW_BLOCK_VALUES", 120)  # blocks of 2 stations
    blocks = metrics_table(x, y, mask, min_obs=5)
    for k in ALL_KEYS:
        np.testing.assert_array_equal(blocks[k], whole[k], err_msg=k)
    # a hand-known row: x = y + 0.1 exactly -> bias 0.1, ubRMSD 0, R 1
    yy = np.linspace(0.1, 0.3, 20)[None, :]
    t = metrics_table(yy + 0.1, yy, min_obs=10)
    assert t["BIAS"][0] == pytest.approx(0.1) and t["urmsd"][0] == pytest.approx(0.0, abs=1e-12)
    assert t["R"][0] == pytest.approx(1.0) and t["n_obs"][0] == 20


def test_product_files_are_read_without_listing_their_folder_but_side_cars_still_count(tmp_path):
    """Files are opened with GDAL_DISABLE_READDIR_ON_OPEN=TRUE in the reading threads only:
    a scale factor stored in a ``.aux.xml`` side-car still applies, and the option is not
    left set in the calling thread."""
    from osgeo import gdal

    from ssm_downscaling.core.grid import Grid, to_wkt, transform_points
    from ssm_downscaling.core.series import write_day
    from ssm_downscaling.core.validation.extract import point_pixels, sample_series

    grid = Grid.from_bounds("EPSG:32650", (500_000, 3_300_000, 504_000, 3_303_000), 1000)  # 4 x 3 px
    days = [dt.date(2019, 6, 1) + dt.timedelta(days=j) for j in range(3)]
    for j, d in enumerate(days):
        write_day(tmp_path / "p", "ssm", d, np.full(grid.shape, 0.1 * (j + 1), dtype=np.float32), grid)
    ds = gdal.Open(str(tmp_path / "p" / "ssm_2019-06-02.tif"))  # read-only: the scale goes to a side-car
    ds.GetRasterBand(1).SetScale(2.0)
    ds = None
    assert (tmp_path / "p" / "ssm_2019-06-02.tif.aux.xml").exists()
    x, y = grid.xy(np.array([1]), np.array([2]))
    lon, lat = transform_points(x, y, grid.crs_wkt, to_wkt(4326))
    assert point_pixels(grid, lon, lat)[0].tolist() == [1]
    ps = sample_series(tmp_path / "p", lon, lat, days)
    np.testing.assert_allclose(ps.values[0], [0.1, 0.4, 0.3], rtol=1e-6)  # 0.2 x 2 on the second day
    assert gdal.GetThreadLocalConfigOption("GDAL_DISABLE_READDIR_ON_OPEN", None) is None

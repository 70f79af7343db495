"""Station readers: CSV (DESIGN.md 3) and ISMN .stm folders (both layouts)."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pytest

from ssm_downscaling.core.validation.stations import (
    StationError,
    parse_date,
    parse_ismn_name,
    read_ismn,
    read_station_csv,
    read_stations,
    read_stm,
)


def test_csv_subdaily_values_are_averaged_per_day_and_unknown_columns_ignored(tmp_path):
    p = tmp_path / "st.csv"
    p.write_text(
        "Station_ID,lon,lat,date,sm,depth,network,extra\n"
        "A,100.5,30.25,2019-06-01T06:00,0.20,0.05,NET,x\n"
        "A,100.5,30.25,2019-06-01 18:00:00,0.30,0.05,NET,y\n"
        "A,100.5,30.25,2019-06-03,0.40,0.05,NET,z\n"
        "B,101.0,31.0,2019/06/02,0.10,0.05,NET,\n"
        "B,101.0,31.0,20190604,,0.05,NET,\n"  # empty sm: missing, not an error
    )
    s = read_station_csv(p)
    assert s.ids == ["A", "B"] and s.network == ["NET", "NET"]
    assert s.start == dt.date(2019, 6, 1) and s.end == dt.date(2019, 6, 3)
    assert s.values[0, 0] == pytest.approx(0.25) and np.isnan(s.values[0, 1]) and s.values[0, 2] == pytest.approx(0.4)
    assert s.values[1, 1] == pytest.approx(0.1)
    assert s.lon.tolist() == [100.5, 101.0] and s.depth_from.tolist() == [0.05, 0.05]
    assert not s.problems


def test_csv_semicolon_and_aliases(tmp_path):
    p = tmp_path / "st.csv"
    p.write_text("id;longitude;latitude;datetime;soil_moisture\nX;10;45;2020-01-05;0.3\n")
    s = read_stations(p)
    assert s.ids == ["X"] and s.values[0, 0] == pytest.approx(0.3)


def test_csv_bad_rows_are_reported_with_line_numbers(tmp_path, caplog):
    p = tmp_path / "bad.csv"
    p.write_text(
        "station_id,lon,lat,date,sm\n"
        "A,100,30,2019-06-01,0.2\n"
        "A,100,30,2019-13-01,0.2\n"  # line 3: month 13
        "A,abc,30,2019-06-02,0.2\n"  # line 4: lon
        "A,100,30,2019-06-03,45\n"  # line 5: percent instead of m3/m3
        "A,100,30\n"  # line 6: short
        ",100,30,2019-06-04,0.2\n"  # line 7: no id
        "A,100,30,2019-06-05,0.3\n"
    )
    with caplog.at_level(logging.WARNING, logger="ssm_downscaling"):
        s = read_station_csv(p)
    msg = s.problems[0]
    for ln in ("line 3", "line 4", "line 5", "line 6", "line 7"):
        assert ln in msg
    assert "5 row(s)" in msg and "outside 0..1" in msg and "is not a date" in msg
    assert "line 2" not in msg and "line 8" not in msg
    assert any("line 3" in r.message for r in caplog.records)
    assert np.isfinite(s.values).sum() == 2


def test_csv_line_numbers_with_quoted_multiline_fields_and_chunks(tmp_path, monkeypatch):
    from ssm_downscaling.core.validation import stations as S

    p = tmp_path / "q.csv"
    p.write_text(
        'station_id,lon,lat,date,sm,comment\n'
        'A,1,2,2019-01-01,0.1,"two\nlines"\n'  # lines 2-3
        'A,1,2,2019-01-02,x,plain\n'  # line 4
        '\n'  # line 5, blank
        'A,1,2,2019-01-03,0.3,"again\nand again"\n'  # lines 6-7
        'A,1,2,2019-13-04,0.3,ok\n'  # line 8
    )
    monkeypatch.setattr(S, "CSV_CHUNK", 2)  # several chunks
    s = read_station_csv(p)
    assert "line 4: sm 'x' is not a number" in s.problems[0]
    assert "line 8: '2019-13-04' is not a date" in s.problems[0]
    assert np.isfinite(s.values).sum() == 2


def test_csv_missing_columns_unparsable_everything_and_empty(tmp_path):
    p = tmp_path / "nocols.csv"
    p.write_text("station,lon,latitude,when,value\nA,1,2,2019-01-01,0.1\n")
    with pytest.raises(StationError, match=r"nocols.csv.*lacks the column\(s\) date"):
        read_station_csv(p)
    p2 = tmp_path / "dates.csv"
    p2.write_text("station_id,lon,lat,date,sm\nA,1,2,01.06.2019,0.1\nA,1,2,June 2,0.1\n")
    with pytest.raises(StationError, match=r"dates.csv: no usable soil moisture value.*line 2.*is not a date"):
        read_station_csv(p2)
    p3 = tmp_path / "empty.csv"
    p3.write_text("")
    with pytest.raises(StationError, match="empty"):
        read_station_csv(p3)
    with pytest.raises(StationError, match="no such file"):
        read_stations(tmp_path / "nope.csv")


def test_csv_quality_flag_and_depth_filters(tmp_path):
    p = tmp_path / "f.csv"
    p.write_text(
        "station_id,lon,lat,date,sm,depth,flag\n"
        "A,1,2,2019-01-01,0.1,0.05,G\n"
        "A,1,2,2019-01-02,0.2,0.05,D01\n"
        "A,1,2,2019-01-03,0.3,0.05,\n"
        "B,1.5,2,2019-01-01,0.4,0.30,G\n"  # too deep for 0..0.1 m
    )
    s = read_station_csv(p)
    assert s.ids == ["A"]
    assert np.isfinite(s.values[0]).tolist() == [True, False, True]
    s_all = read_station_csv(p, depth_range=None, quality_flags=None)
    assert s_all.ids == ["A", "B"] and np.isfinite(s_all.values).sum() == 4
    with pytest.raises(StationError, match="depth range"):
        read_station_csv(p, depth_range=(0.2, 0.1))


def test_parse_helpers():
    assert parse_date("2019-06-01T10:00:00Z") == dt.date(2019, 6, 1)
    assert parse_date("2019/06/01 10:00") == dt.date(2019, 6, 1)
    assert parse_date("20190601") == dt.date(2019, 6, 1)
    with pytest.raises(ValueError):
        parse_date("01/06/2019")
    m = parse_ismn_name("FR_Aqui_FR_Aqui_Fraye_sm_0.050000_0.050000_ThetaProbe-ML2X_20120101_20181231.stm")
    assert m["net"] == "FR_Aqui" and m["station"] == "Fraye" and m["var"] == "sm" and m["d0"] == "0.050000"
    assert parse_ismn_name("readme.txt") is None


# ---------------------------------------------------------------------------------------
# ISMN
# ---------------------------------------------------------------------------------------

CEOP = (
    "2019/06/01 00:00 2019/06/01 00:00 NET        NET             St_One            30.00000   100.00000 1000.00"
    "    0.05    0.05   {v} {f} M\n"
)


def _write_ceop(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(
        f"{d} {t} {d} {t} NET        NET             StOne             30.00000   100.00000 1000.00    0.05    0.05"
        f"   {v:.4f} {f} M\n"
        for d, t, v, f in rows
    )
    path.write_text(text)


def test_ismn_both_layouts_flags_and_line_endings(tmp_path):
    _write_ceop(
        tmp_path / "NET" / "StOne" / "NET_NET_StOne_sm_0.050000_0.050000_Probe_20190601_20190602.stm",
        [("2019/06/01", "00:00", 0.20, "G"), ("2019/06/01", "12:00", 0.30, "G"), ("2019/06/02", "00:00", 0.90, "D03"),
         ("2019/06/02", "01:00", 0.40, "C02,D10")],
    )
    hv = tmp_path / "NET" / "StTwo" / "NET_NET_StTwo_sm_0.050000_0.050000_Probe_20190601_20190602.stm"
    hv.parent.mkdir(parents=True)
    hv.write_bytes(
        b"NET        NET             StTwo             31.00000   101.00000 3000.00    0.05    0.05 Probe \r"
        b"2019/06/01 00:00   0.1000 G M \r2019/06/02 00:00   0.3000 G M \r2019/06/02 06:00   0.5000 G M \r"
    )
    # a soil temperature file in the same folder is not soil moisture
    _write_ceop(tmp_path / "NET" / "StTwo" / "NET_NET_StTwo_ts_0.050000_0.050000_Probe_20190601_20190602.stm",
                [("2019/06/01", "00:00", 280.0, "G")])
    s = read_ismn(tmp_path)
    assert s.ids == ["NET:StOne", "NET:StTwo"]
    assert s.values[0].tolist()[0] == pytest.approx(0.25) and np.isnan(s.values[0, 1])
    assert s.values[1].tolist() == pytest.approx([0.1, 0.4])
    assert s.lat.tolist() == [30.0, 31.0] and s.lon.tolist() == [100.0, 101.0]
    # accepting D03 too brings the 0.9; C02,D10 needs both flags accepted
    s2 = read_ismn(tmp_path, quality_flags="G,D03")
    assert s2.values[0, 1] == pytest.approx(0.9)
    s3 = read_ismn(tmp_path, quality_flags=None)
    assert s3.values[0, 1] == pytest.approx(0.65)


def test_ismn_unreadable_file_is_skipped_with_a_warning(tmp_path, caplog):
    _write_ceop(tmp_path / "NET_NET_Good_sm_0.050000_0.050000_P_20190601_20190601.stm",
                [("2019/06/01", "00:00", 0.2, "G")])
    (tmp_path / "NET_NET_Bad_sm_0.050000_0.050000_P_20190601_20190601.stm").write_bytes(b"\x00\x01garbage" * 50)
    (tmp_path / "NET_NET_Worse_sm_0.050000_0.050000_P_20190601_20190601.stm").write_text(
        "this is not\nan ISMN file at all\n")
    with caplog.at_level(logging.WARNING, logger="ssm_downscaling"):
        s = read_ismn(tmp_path)
    assert s.ids == ["NET:Good"]
    text = " ".join(s.problems)
    assert "NET_NET_Bad_sm" in text and "binary" in text and "NET_NET_Worse_sm" in text
    (tmp_path / "NET_NET_Good_sm_0.050000_0.050000_P_20190601_20190601.stm").unlink()
    with pytest.raises(StationError, match="no readable soil moisture .stm file"):
        read_ismn(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(StationError, match="contains no ISMN .stm file"):
        read_ismn(tmp_path / "empty")
    with pytest.raises(StationError, match="no such file or folder"):
        read_ismn(tmp_path / "missing")


@pytest.mark.realdata
def test_ismn_hawaii(shared_data):
    s = read_ismn(shared_data / "ismn" / "HAWAII")
    # 9 SCAN sensors at 5.08 cm; the COSMOS probe (0-17 cm) is outside 0-10 cm
    assert len(s) == 9 and all(i.startswith("SCAN:") for i in s.ids)
    assert "SCAN:Kainaliu:Hydraprobe-Analog-(2.5-Volt)-A" in s.ids  # two sensors at one station
    assert s.start == dt.date(2017, 1, 1) and s.end == dt.date(2018, 12, 31)
    i = s.ids.index("SCAN:PuaAkala")
    assert s.lat[i] == pytest.approx(19.8) and s.lon[i] == pytest.approx(-155.333)
    assert s.depth_from[i] == pytest.approx(0.0508)
    # daily means of PuaAkala's G-flagged hourly values, recomputed from the file itself
    path = next((shared_data / "ismn" / "HAWAII" / "SCAN" / "PuaAkala").glob("*_sm_*.stm"))
    per_day: dict[str, list[float]] = {}
    for ln in path.read_text().splitlines():
        t = ln.split()
        if t and t[-2] == "G":
            per_day.setdefault(t[0], []).append(float(t[-3]))
    assert len(per_day) > 300
    for day, vals in list(per_day.items())[::40]:
        j = (dt.date.fromisoformat(day.replace("/", "-")) - s.start).days
        assert s.values[i, j] == pytest.approx(np.mean(vals), abs=1e-12)
    assert np.isfinite(s.values[i]).sum() == len(per_day)
    assert np.nanmin(s.values) >= 0 and np.nanmax(s.values) <= 1
    cosmos = read_ismn(shared_data / "ismn" / "HAWAII", depth_range=(0.0, 0.2))
    assert "COSMOS:SilverSword" in cosmos.ids and len(cosmos) == 10


@pytest.mark.realdata
def test_ismn_maqu_header_values_with_cr_line_endings(shared_data):
    folder = shared_data / "ismn" / "MAQU"
    raw = next(folder.rglob("*.stm")).read_bytes()
    assert b"\r" in raw and b"\n" not in raw  # bare CR line endings
    st = read_stm(next((folder / "CST-01").glob("*.stm")))
    assert st.network == "MAQU" and st.station == "CST-01" and st.lat == pytest.approx(33.8833)
    assert st.days[0] == np.datetime64("2008-07-01") and st.values[0] == pytest.approx(0.5)
    assert len(st.values) > 10000 and not st.bad_lines
    # Maqu has no value flagged G: a clear error naming the flags found
    with pytest.raises(StationError, match=r"no value with an accepted quality flag \(G\).*MAQU:CST-01.*U"):
        read_ismn(folder)
    s = read_ismn(folder, quality_flags="G,U")
    assert s.ids == ["MAQU:CST-01", "MAQU:CST-02"]
    assert s.start == dt.date(2008, 7, 1) and np.isfinite(s.values).sum() > 500

"""Granule lists (MODIS tiles from an extent, composite calendars, file patterns) and the
derived series (day-night LST difference, composites as daily)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest


def test_modis_tiles_for_known_places():
    from ssm_downscaling.core.readers.modis_tiles import tiles_for_extent

    # by hand: v = floor((90 - lat) / 10); x = R * lon * cos(lat), h = floor((x + 20015109.354) / 1111950.52)
    # Beijing 116.4 E 39.85 N: x = 9.93e6 m -> h = 26.9 -> h26v05; Loess Plateau 108 E 36 N: h = 26.7 -> h26v05
    assert tiles_for_extent((116.3, 39.8, 116.5, 39.9)) == [(26, 5)]
    assert tiles_for_extent((108.0, 36.0, 108.1, 36.1)) == [(26, 5)]
    # an extent across 40 N meets both v04 and v05
    assert tiles_for_extent((116.3, 39.8, 116.5, 40.1)) == [(26, 4), (26, 5)]
    # all of mainland China (bounding box): every China tile of the MODLAND list is there
    china = tiles_for_extent((73.5, 18.0, 135.1, 53.6))
    for hv in [(23, 4), (23, 5), (24, 5), (25, 5), (25, 6), (26, 5), (26, 6), (27, 5), (28, 5), (29, 5), (28, 6), (25, 3), (26, 3)]:
        assert hv in china


def test_granule_patterns():
    from ssm_downscaling.core.readers.granules import granules, modis_dates

    d0, d1 = dt.date(2019, 6, 1), dt.date(2019, 6, 3)
    g = granules("MOD11A1", (116.3, 39.8, 116.5, 39.9), d0, d1)
    assert g == [f"MOD11A1.A2019{d}.h26v05.061.*.hdf" for d in (152, 153, 154)]
    # MOD13A2: DOY 145 (25 May - 9 June) covers 1-3 June; MYD13A2: DOY 137 (17 May - 1 June) and 153 (2 June)
    assert modis_dates("MOD13A2", d0, d1) == [dt.date(2019, 5, 25)]
    assert modis_dates("MYD13A2", d0, d1) == [dt.date(2019, 5, 17), dt.date(2019, 6, 2)]
    assert granules("LPRM", (0, 0, 1, 1), dt.date(2011, 10, 3), dt.date(2011, 10, 3)) == [
        "LPRM-AMSR_E_L3_A_SOILM3_V002_20111003*.nc", "LPRM-AMSR_E_L3_D_SOILM3_V002_20111003*.nc"]
    assert granules("LPRM", (0, 0, 1, 1), dt.date(2012, 1, 1), dt.date(2012, 1, 1)) == []  # no AMSR gap data
    assert len(granules("GLDAS", (0, 0, 1, 1), d0, d0)) == 8
    (era5,) = granules("ERA5", (100.0, 30.0, 110.0, 40.0), d0, d1)
    assert "area=40.00,100.00,30.00,110.00" in era5 and "day=01,02,03" in era5


def test_write_granule_list(tmp_path):
    from ssm_downscaling.core.readers.granules import write_granule_list

    p = write_granule_list(tmp_path / "need.txt", ["MOD11A1", "ESA_CCI"], (116.3, 39.8, 116.5, 39.9),
                           dt.date(2019, 6, 1), dt.date(2019, 6, 2))
    lines = p.read_text().splitlines()
    assert lines[1] == "# MOD11A1: 2 file(s)" and "ESACCI-SOILMOISTURE-L3S-SSMV-PASSIVE-20190602000000-fv*.nc" in lines


def test_day_night_difference_and_composites(tmp_path):
    from ssm_downscaling.core.grid import Grid
    from ssm_downscaling.core.readers import composites_as_daily, day_night_difference
    from ssm_downscaling.core.series import DailySeries, write_day

    g = Grid.from_bounds(4326, (100, 30, 101, 31), 0.5)
    for d, v in ((dt.date(2019, 6, 1), 300.0), (dt.date(2019, 6, 2), 305.0)):
        write_day(tmp_path / "day", "lst", d, np.full((2, 2), v, dtype=np.float32), g)
    night = np.full((2, 2), 290.0, dtype=np.float32)
    night[0, 0] = np.nan
    write_day(tmp_path / "night", "lst_night", dt.date(2019, 6, 1), night, g)
    out = day_night_difference(tmp_path / "day", tmp_path / "night", tmp_path / "diff")
    assert [p.name for p in out] == ["lst_diff_2019-06-01.tif"]
    arr = DailySeries.from_folder(tmp_path / "diff").read(dt.date(2019, 6, 1))
    assert np.isnan(arr[0, 0]) and np.allclose(arr[1, 1], 10.0)
    for d in (dt.date(2019, 12, 19), dt.date(2020, 1, 1)):
        write_day(tmp_path / "ndvi16", "ndvi", d, np.full((2, 2), 0.5, dtype=np.float32), g)
    out = composites_as_daily(tmp_path / "ndvi16", tmp_path / "ndvi", "ndvi", 16)
    days = DailySeries.from_folder(tmp_path / "ndvi").dates
    # the 19 Dec composite serves 19..31 Dec (it stops at the year's end), the next 1..16 Jan
    assert days[0] == dt.date(2019, 12, 19) and dt.date(2019, 12, 31) in days
    assert days[-1] == dt.date(2020, 1, 16) and len(days) == 13 + 16


@pytest.mark.realdata
def test_granule_of_the_real_tile(shared_data):
    from ssm_downscaling.core.readers.granules import granules

    g = granules("MOD11A1", (-80.0, 34.0, -79.9, 34.1), dt.date(2021, 8, 15), dt.date(2021, 8, 15))
    import fnmatch

    assert fnmatch.fnmatch("MOD11A1.A2021227.h11v05.061.2021228105320.hdf", g[0])

"""Readers of formats without a real sample here, on files written in their documented
layouts (tests/core/readers/layouts.py): JAXA L3 SMC, SMAP L3, MCD43A3, MOD09."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

pytest.importorskip("h5py")


def test_jaxa_l3_scale_fill_and_grid(tmp_path):
    from layouts import write_jaxa

    from ssm_downscaling.core.readers.jaxa import read_jaxa_l3

    p, ref = write_jaxa(tmp_path)
    d = read_jaxa_l3(p)
    assert d.date == dt.date(2015, 4, 1) and d.info["pass"] == "D" and d.units == "m3/m3"
    assert d.data[ref["line"], ref["pixel"]] == pytest.approx(0.253, abs=1e-6)
    r, c = d.grid.rowcol(np.array([105.125]), np.array([35.125]))
    assert (r[0], c[0]) == (ref["line"], ref["pixel"])
    assert d.data[0, 0] == pytest.approx(0.10, abs=1e-6) and np.isnan(d.data[10, 10])
    p2, _ = write_jaxa(tmp_path, "20150402", 0.1)
    assert read_jaxa_l3(p2).grid.shape == (1800, 3600)


@pytest.mark.parametrize("km", [36, 9])
def test_smap_l3_am_pm_quality_and_ease2(tmp_path, km):
    from layouts import write_smap

    from ssm_downscaling.core.grid import ease2_global
    from ssm_downscaling.core.readers.smap import read_smap_l3

    p, ref = write_smap(tmp_path, km=km)
    am = read_smap_l3(p, "AM")
    assert am.grid == ease2_global(km) and am.date == dt.date(2019, 6, 1)
    assert am.data[ref["row"], ref["col"]] == pytest.approx(0.21)
    assert np.isnan(am.data[ref["row"], ref["col"] + 1])  # quality bit 0 set
    assert read_smap_l3(p, "AM", recommended_only=False).data[ref["row"], ref["col"] + 1] == pytest.approx(0.33)
    assert read_smap_l3(p, "PM").data[ref["row"], ref["col"]] == pytest.approx(0.25)
    assert np.isfinite(am.data).sum() == 1


def test_mcd43a3_white_black_blue_and_qa(tmp_path):
    from layouts import write_mcd43a3

    from ssm_downscaling.core.readers.mcd43 import read_mcd43a3
    from ssm_downscaling.core.readers.modis_tiles import tile_grid

    p = write_mcd43a3(tmp_path)
    w = read_mcd43a3(p, "white")
    b = read_mcd43a3(p, "black")
    blue = read_mcd43a3(p, "blue", diffuse_fraction=0.3)
    assert w.grid == tile_grid(25, 5, 40) and w.date == dt.date(2019, 6, 1)
    assert w.data[3, 3] == pytest.approx(0.200) and b.data[3, 3] == pytest.approx(0.150)
    assert blue.data[3, 3] == pytest.approx(0.7 * 0.150 + 0.3 * 0.200)
    assert np.isnan(w.data[0, 0]) and np.isnan(w.data[2, 2])  # fill, QA 255
    assert np.isfinite(w.data[1, 1]) and np.isnan(read_mcd43a3(p, "white", full_inversion_only=True).data[1, 1])


@pytest.mark.parametrize("a1", [True, False])
def test_mod09_ndvi_liang_albedo_and_state(tmp_path, a1):
    from layouts import write_mod09

    from ssm_downscaling.core.readers.mod09 import read_mod09

    p, refl = write_mod09(tmp_path, a1=a1)
    ndvi = read_mod09(p, "ndvi")
    b1, b2 = refl[1] * 1e-4, refl[2] * 1e-4
    assert ndvi.data[3, 3] == pytest.approx((b2 - b1) / (b2 + b1), abs=1e-6)
    alb = read_mod09(p, "albedo")
    want = 0.160 * b1 + 0.291 * b2 + 0.243 * refl[3] * 1e-4 + 0.116 * refl[4] * 1e-4 + 0.112 * refl[5] * 1e-4 \
        + 0.081 * refl[7] * 1e-4 - 0.0015
    assert alb.data[3, 3] == pytest.approx(want, abs=1e-6)
    assert np.isnan(ndvi.data[5, 5])  # fill
    if a1:  # 500 m state: cloudy and shadow out, "not set" kept
        assert np.isnan(ndvi.data[0, 1]) and np.isnan(ndvi.data[0, 2]) and np.isfinite(ndvi.data[0, 3])
    else:  # 1 km state repeated 2 x 2: state_1km[0, 1] (cloudy) covers 500 m columns 2-3
        assert np.isnan(ndvi.data[0, 2]) and np.isnan(ndvi.data[1, 3]) and np.isfinite(ndvi.data[0, 0])


def test_wrong_product_named(tmp_path):
    from layouts import write_mcd43a3

    from ssm_downscaling.core.readers import ProductError
    from ssm_downscaling.core.readers.mod09 import read_mod09
    from ssm_downscaling.core.readers.smap import read_smap_l3

    p = write_mcd43a3(tmp_path)
    with pytest.raises(ProductError, match="MCD43A3.*not MOD09GA/MOD09A1"):
        read_mod09(p)
    with pytest.raises(ProductError, match="MCD43A3.*Soil_Moisture_Retrieval_Data_AM"):
        read_smap_l3(p)

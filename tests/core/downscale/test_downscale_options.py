"""DownscaleOptions: one validated, picklable object; downscale_series takes it or its fields."""

from __future__ import annotations

import pickle

import pytest

from ssm_downscaling.core.downscale.options import DownscaleOptions, options_from
from ssm_downscaling.core.errors import SsmError


def test_defaults_and_normalisation():
    o = DownscaleOptions()
    assert o.method == "gwr" and o.residual is None and o.anomaly_gain == "auto" and o.bandwidth_m is None
    o = DownscaleOptions(residual="interp", bandwidth_km=40, anomaly_gain=1, ssm_range=[0.02, 0.5])
    assert o.residual == "coherent"  # former name
    assert o.bandwidth_m == 40_000.0 and o.anomaly_gain == 1.0 and o.ssm_range == (0.02, 0.5)
    assert DownscaleOptions(bandwidth_km=0).bandwidth_km is None  # 0 = AICc search
    p = o.estimator_params()
    assert p["bandwidth"] == 40_000.0 and p["kernel"] == "gaussian" and p["n_estimators"] == 100


def test_frozen_picklable_and_replace():
    o = DownscaleOptions(method="forest", n_trees=20, seed=3, noise_sd=0.03)
    assert pickle.loads(pickle.dumps(o)) == o
    with pytest.raises(AttributeError):
        o.method = "gwr"  # type: ignore[misc]
    o2 = o.replace(seed=4)
    assert o2.seed == 4 and o.seed == 3 and o2.as_dict()["n_trees"] == 20


@pytest.mark.parametrize("kw, msg", [
    ({"method": "kriging"}, "method"),
    ({"kernel": "box"}, "kernel"),
    ({"residual": "exact"}, "residual"),
    ({"pool_days": -1}, "pool_days"),
    ({"anomaly_days": 1.5}, "anomaly_days"),
    ({"anomaly_gain": "big"}, "anomaly gain"),
    ({"anomaly_gain": 3.0}, "anomaly_gain"),
    ({"noise_sd": float("nan")}, "noise_sd"),
    ({"ssm_range": (0.6, 0.1)}, "min < max"),
    ({"ssm_range": 0.5}, "ssm_range"),
    ({"block_pixels": 0}, "block_pixels"),
    ({"stat_days": 0}, "stat_days"),
    ({"ssm_percent": "yes"}, "ssm_percent"),
])
def test_bad_values_are_refused_in_one_place(kw, msg):
    with pytest.raises(SsmError, match=msg):
        DownscaleOptions(**kw)


def test_options_or_keywords_not_both():
    assert options_from(None, {"method": "bilinear"}) == DownscaleOptions(method="bilinear")
    o = DownscaleOptions(seam_days=3)
    assert options_from(o, {}) is o
    with pytest.raises(SsmError, match="not both"):
        options_from(o, {"seed": 1})
    with pytest.raises(SsmError, match="Unknown downscaling option"):
        options_from(None, {"bandwith_km": 10})

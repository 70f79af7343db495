"""Metrics: closed forms and identities by hand, then agreement with pytesmo to 1e-9."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ssm_downscaling.core.validation import metrics as M

pytesmo_metrics = pytest.importorskip("pytesmo.metrics")
pytesmo_pairwise = pytest.importorskip("pytesmo.metrics.pairwise")

TOL = 1e-9


def test_closed_forms_on_a_hand_example():
    y = np.array([0.10, 0.20, 0.30, 0.40])
    x = y + 0.05  # a pure offset
    assert M.bias(x, y) == pytest.approx(0.05, abs=1e-15)
    assert M.rmsd(x, y) == pytest.approx(0.05, abs=1e-15)
    assert M.ubrmsd(x, y) == pytest.approx(0.0, abs=1e-15)
    assert M.pearson_r(x, y) == pytest.approx(1.0)
    r, p = M.pearson_r_p(x, y)
    assert p == 0.0
    # x = 2y: bias = mean(y), ubRMSD = sd(y) (population), r = 1
    x2 = 2 * y
    assert M.bias(x2, y) == pytest.approx(0.25)
    assert M.ubrmsd(x2, y) == pytest.approx(np.std(y))
    # anti-correlated
    assert M.pearson_r(-y, y) == pytest.approx(-1.0)


def test_identities_and_symmetry():
    rng = np.random.default_rng(3)
    y = rng.uniform(0.05, 0.45, 200)
    x = 0.8 * y + rng.normal(0.03, 0.03, 200)
    b, r, u = M.bias(x, y), M.rmsd(x, y), M.ubrmsd(x, y)
    assert u == pytest.approx(np.sqrt(r**2 - b**2), rel=1e-12)  # DESIGN.md 4
    assert M.bias(y, x) == pytest.approx(-b)
    assert M.rmsd(y, x) == pytest.approx(r) and M.ubrmsd(y, x) == pytest.approx(u)
    assert M.pearson_r(y, x) == pytest.approx(M.pearson_r(x, y))
    # invariances: adding a constant changes only the bias; scaling both scales RMSD
    assert M.ubrmsd(x + 1.0, y) == pytest.approx(u) and M.pearson_r(x + 1, y) == pytest.approx(M.pearson_r(x, y))
    assert M.rmsd(3 * x, 3 * y) == pytest.approx(3 * r)
    # CIs contain the value and shrink with n
    lo, hi = M.bias_ci(x, y, b)
    assert lo < b < hi
    lo2, hi2 = M.bias_ci(x[:50], y[:50], M.bias(x[:50], y[:50]))
    assert hi2 - lo2 > hi - lo
    ulo, uhi = M.ubrmsd_ci(x, y, u)
    assert ulo < u < uhi
    rr = M.pearson_r(x, y)
    rlo, rhi = M.pearson_r_ci(x, y, rr)
    assert -1 < rlo < rr < rhi < 1


def test_ci_coverage_is_about_95_percent():
    """The analytical intervals cover the true value in ~95 % of repeated samples."""
    rng = np.random.default_rng(11)
    n, trials, cover = 60, 600, {"bias": 0, "ub": 0, "r": 0}
    rho, sd = 0.6, 0.04
    for _ in range(trials):
        y = rng.normal(0.25, 0.05, n)
        e = rng.normal(0.0, 1.0, n)
        # x with correlation rho to y (bivariate normal), bias 0.02
        x = 0.25 + 0.02 + sd * (rho * (y - 0.25) / 0.05 + np.sqrt(1 - rho**2) * e)
        t = M.pairwise_metrics(x, y, min_obs=3)
        true_ub = np.sqrt(sd**2 + 0.05**2 - 2 * rho * sd * 0.05)
        true_r = rho
        cover["bias"] += t["BIAS_ci_lower"] <= 0.02 <= t["BIAS_ci_upper"]
        cover["ub"] += t["urmsd_ci_lower"] <= true_ub <= t["urmsd_ci_upper"]
        cover["r"] += t["R_ci_lower"] <= true_r <= t["R_ci_upper"]
    for k, v in cover.items():
        assert 0.92 <= v / trials <= 0.98, (k, v / trials)


def test_degenerate_inputs():
    y = np.array([0.2, 0.3, 0.25, 0.22])
    x = np.full(4, 0.3)  # constant product: no correlation, but an RMSD
    r, p = M.pearson_r_p(x, y)
    assert np.isnan(r) and np.isnan(p)
    t = M.pairwise_metrics(x, y, min_obs=3)
    assert np.isnan(t["R"]) and np.isfinite(t["RMSD"])
    # NaN pairs are dropped, min_obs respected
    t = M.pairwise_metrics(np.array([0.1, np.nan, 0.3]), np.array([0.1, 0.2, np.nan]), min_obs=3)
    assert t["n_obs"] == 1 and np.isnan(t["RMSD"])
    with pytest.raises(ValueError):
        M.bias(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="No analytical CI"):
        M.with_analytical_ci("rmsd", y, y)


def _pytesmo_reference(x, y):
    """pytesmo 0.16.1's numbers for one pair (metric functions and analytical CIs)."""
    b, blo, bhi = pytesmo_metrics.with_analytical_ci(pytesmo_metrics.bias, x, y)
    u, ulo, uhi = pytesmo_metrics.with_analytical_ci(pytesmo_metrics.ubrmsd, x, y)
    r, rlo, rhi = pytesmo_metrics.with_analytical_ci(pytesmo_metrics.pearson_r, x, y)
    # pytesmo's metric calculators take p_R from scipy.stats.pearsonr (BasicMetrics) or
    # from the moments (PairwiseIntercomparisonMetrics): both are checked
    from pytesmo.metrics._fast_pairwise import _moments_welford, _pearsonr_from_moments

    mx, my, vx, vy, cov = _moments_welford(x, y)
    r_mom, p_mom = _pearsonr_from_moments(vx, vy, cov, len(x))
    return {
        "BIAS": b, "BIAS_ci_lower": blo, "BIAS_ci_upper": bhi,
        "RMSD": pytesmo_metrics.rmsd(x, y),
        "urmsd": u, "urmsd_ci_lower": ulo, "urmsd_ci_upper": uhi,
        "R": r, "R_ci_lower": rlo, "R_ci_upper": rhi,
        "p_R": stats.pearsonr(x, y)[1], "p_R_moments": p_mom, "R_moments": r_mom,
    }


def _assert_matches_pytesmo(x, y, ours):
    ref = _pytesmo_reference(x, y)
    for k in ("BIAS", "BIAS_ci_lower", "BIAS_ci_upper", "RMSD", "urmsd", "urmsd_ci_lower", "urmsd_ci_upper", "R",
              "R_ci_lower", "R_ci_upper", "p_R"):
        assert abs(ours[k] - ref[k]) <= TOL, (k, ours[k], ref[k])
    assert abs(ours["p_R"] - ref["p_R_moments"]) <= TOL
    assert abs(ours["R"] - ref["R_moments"]) <= TOL


@pytest.mark.parametrize("seed", range(8))
def test_pure_functions_agree_with_pytesmo_on_seeded_random_data(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(10, 800))
    y = rng.uniform(0.02, 0.5, n)
    x = rng.uniform(0.5, 1.2) * y + rng.normal(rng.uniform(-0.05, 0.05), rng.uniform(0.005, 0.08), n)
    ours = {
        "BIAS": M.bias(x, y), "RMSD": M.rmsd(x, y), "urmsd": M.ubrmsd(x, y), "R": M.pearson_r(x, y),
        "p_R": M.pearson_r_p(x, y)[1],
    }
    ours["BIAS_ci_lower"], ours["BIAS_ci_upper"] = M.bias_ci(x, y, ours["BIAS"])
    ours["urmsd_ci_lower"], ours["urmsd_ci_upper"] = M.ubrmsd_ci(x, y, ours["urmsd"])
    ours["R_ci_lower"], ours["R_ci_upper"] = M.pearson_r_ci(x, y, ours["R"])
    _assert_matches_pytesmo(x, y, ours)
    # the dictionary API and with_analytical_ci give the same numbers
    d = M.pairwise_metrics(x, y)
    _assert_matches_pytesmo(x, y, d)
    assert d["n_obs"] == n
    v, lo, hi = M.with_analytical_ci(M.ubrmsd, x, y)
    assert (v, lo, hi) == (ours["urmsd"], ours["urmsd_ci_lower"], ours["urmsd_ci_upper"])


def test_vectorised_table_equals_pairwise_and_pytesmo():
    """Many stations at once (rows with NaN gaps and different lengths) = one by one."""
    rng = np.random.default_rng(42)
    n_st, n_days = 40, 300
    truth = rng.uniform(0.05, 0.45, (n_st, n_days))
    x = truth + rng.normal(0.02, 0.04, (n_st, n_days))
    y = truth + rng.normal(0.0, 0.02, (n_st, n_days))
    x[rng.random((n_st, n_days)) < 0.3] = np.nan
    y[rng.random((n_st, n_days)) < 0.2] = np.nan
    y[3, 12:] = np.nan  # a station with few days (< min_obs)
    mask = rng.random((n_st, n_days)) < 0.9
    t = M.metrics_table(x, y, mask, min_obs=10)
    assert t["n_obs"][3] < 10 and np.isnan(t["urmsd"][3])
    for i in range(n_st):
        ok = np.isfinite(x[i]) & np.isfinite(y[i]) & mask[i]
        one = M.pairwise_metrics(x[i][ok], y[i][ok], min_obs=10)
        assert t["n_obs"][i] == one["n_obs"] == ok.sum()
        for k in M.ALL_KEYS:
            if k == "n_obs":
                continue
            a, b = t[k][i], one[k]
            assert (np.isnan(a) and np.isnan(b)) or abs(a - b) <= 1e-12, (i, k, a, b)
        if ok.sum() >= 10:
            _assert_matches_pytesmo(x[i][ok], y[i][ok], {k: t[k][i] for k in M.ALL_KEYS})


def test_station_average_uses_validated_stations_only():
    table = {
        "n_obs": np.array([20, 5, 30]),
        "R": np.array([0.5, np.nan, np.nan]),
        "p_R": np.array([0.01, np.nan, np.nan]),
        "BIAS": np.array([0.01, np.nan, 0.03]),
        "RMSD": np.array([0.05, np.nan, 0.07]),
        "urmsd": np.array([0.04, np.nan, 0.06]),
    }
    mean = M.station_average(table)
    assert mean["n_stations"] == 2 and mean["n_obs"] == 50
    assert mean["urmsd"] == pytest.approx(0.05) and mean["BIAS"] == pytest.approx(0.02)
    assert mean["R"] == pytest.approx(0.5)  # the constant-series station has no R
    med = M.station_average({k: np.append(v, v[:1]) for k, v in table.items()}, "median")
    assert med["urmsd"] == pytest.approx(0.04)

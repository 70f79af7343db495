"""Validation metrics with pytesmo's names and definitions, and their analytical CIs.

The pure functions ``f(x, y)`` take two equally long 1-D arrays of matched values,
``x`` the product and ``y`` the reference (station), and follow pytesmo 0.16
(``pytesmo.metrics``): ``bias = mean(x) - mean(y)``, ``rmsd``, ``ubrmsd``,
``pearson_r``, and the confidence-interval functions ``bias_ci``, ``ubrmsd_ci``,
``pearson_r_ci`` with the signature ``(x, y, m, alpha) -> (lower, upper)``.

:func:`pairwise_metrics` returns the result dictionary of pytesmo's
``PairwiseIntercomparisonMetrics(analytical_cis=True)`` for one pair of series (keys
``R, p_R, BIAS, RMSD, urmsd, n_obs`` and ``R/BIAS/urmsd_ci_lower/_ci_upper``), and
:func:`metrics_table` computes the same for many stations at once, vectorised over the
rows of ``(n_stations, n_days)`` arrays with NaN as "no match that day".

pytesmo has analytical CIs for BIAS, urmsd and R only (RMSD's are bootstrapped there), so
these are the CIs reported here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import special, stats

#: metric keys of a result, in report order
METRIC_KEYS = ("n_obs", "R", "p_R", "BIAS", "RMSD", "urmsd")
#: metrics with analytical confidence intervals (``<key>_ci_lower``, ``<key>_ci_upper``)
CI_KEYS = ("R", "BIAS", "urmsd")
#: every key of a result
ALL_KEYS = METRIC_KEYS + tuple(f"{k}_ci_{s}" for k in CI_KEYS for s in ("lower", "upper"))

#: units of the metrics for SSM in m3/m3 (R, p_R and n_obs are unitless)
UNITS = {"BIAS": "m3/m3", "RMSD": "m3/m3", "urmsd": "m3/m3"}


def _as_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    return x, y


# ---------------------------------------------------------------------------------------
# metrics (pytesmo.metrics.pairwise)
# ---------------------------------------------------------------------------------------


def bias(x: np.ndarray, y: np.ndarray) -> float:
    """Difference of the means, ``mean(x) - mean(y)`` (product minus station)."""
    x, y = _as_pair(x, y)
    return float(np.mean(x - y))


def msd(x: np.ndarray, y: np.ndarray) -> float:
    """Mean square deviation ``mean((x - y)**2)``."""
    x, y = _as_pair(x, y)
    return float(np.mean((x - y) ** 2))


def rmsd(x: np.ndarray, y: np.ndarray) -> float:
    """Root-mean-square deviation ``sqrt(mean((x - y)**2))``."""
    return float(np.sqrt(msd(x, y)))


def ubrmsd(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased RMSD: the RMSD after removing each mean, ``sqrt(rmsd**2 - bias**2)``."""
    x, y = _as_pair(x, y)
    d = (x - np.mean(x)) - (y - np.mean(y))
    return float(np.sqrt(np.mean(d * d)))


def pearson_r(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's linear correlation coefficient (NaN when either series is constant)."""
    return pearson_r_p(x, y)[0]


def pearson_p(r: float | np.ndarray, n: int | np.ndarray) -> float | np.ndarray:
    """Two-sided p-value of Pearson's ``r`` from ``n`` pairs (t-test with n - 2 degrees of
    freedom, written as the regularised incomplete beta function as pytesmo and scipy do)."""
    r = np.asarray(r, dtype=np.float64)
    df = np.asarray(n, dtype=np.float64) - 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        t2 = r * r * (df / ((1.0 - r) * (1.0 + r)))
        z = np.minimum(df / (df + t2), 1.0)
        p = special.betainc(0.5 * df, 0.5, z)
    p = np.where(np.abs(r) == 1.0, 0.0, p)
    p = np.where(np.isfinite(r) & (df > 0), p, np.nan)
    return float(p) if p.ndim == 0 else p


def pearson_r_p(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Pearson's ``r`` and its two-sided p-value (as ``scipy.stats.pearsonr``)."""
    x, y = _as_pair(x, y)
    n = x.size
    if n < 2:
        return float("nan"), float("nan")
    xm = x - x.mean()
    ym = y - y.mean()
    vx, vy = float(np.dot(xm, xm)), float(np.dot(ym, ym))
    if vx == 0.0 or vy == 0.0:
        return float("nan"), float("nan")
    r = float(np.clip(np.dot(xm, ym) / np.sqrt(vx * vy), -1.0, 1.0))
    return r, float(pearson_p(r, n))


# ---------------------------------------------------------------------------------------
# analytical confidence intervals (pytesmo.metrics.pairwise.*_ci)
# ---------------------------------------------------------------------------------------


def bias_ci(x: np.ndarray, y: np.ndarray, b: float, alpha: float = 0.05) -> tuple[float, float]:
    """CI of the bias: that of a mean, ``b -/+ t(1-alpha/2, n-1) * sd(x - y) / sqrt(n)``."""
    x, y = _as_pair(x, y)
    n = x.size
    delta = np.std(x - y, ddof=1) / np.sqrt(n) * stats.t.ppf(1 - alpha / 2, n - 1)
    return float(b - delta), float(b + delta)


def ubrmsd_ci(x: np.ndarray, y: np.ndarray, ubrmsd: float, alpha: float = 0.05) -> tuple[float, float]:
    """CI of ubRMSD from the chi-square distribution of ``n * ubMSD / sigma^2`` (n-1 dof)."""
    n = np.asarray(x).size
    ub_msd = ubrmsd**2
    lower = n * ub_msd / stats.chi2.ppf(1 - alpha / 2, n - 1)
    upper = n * ub_msd / stats.chi2.ppf(alpha / 2, n - 1)
    return float(np.sqrt(lower)), float(np.sqrt(upper))


def pearson_r_ci(x: np.ndarray, y: np.ndarray, r: float, alpha: float = 0.05) -> tuple[float, float]:
    """CI of Pearson's r by Fisher's z: ``tanh(atanh(r) -/+ z(1-alpha/2) / sqrt(n - 3))``."""
    n = np.asarray(x).size
    v = np.arctanh(r)
    z = stats.norm.ppf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = z / np.sqrt(n - 3)
    return float(np.tanh(v - half)), float(np.tanh(v + half))


_CI_FUNCS: dict[str, Callable] = {"bias": bias_ci, "ubrmsd": ubrmsd_ci, "pearson_r": pearson_r_ci}


def with_analytical_ci(metric_func: Callable | str, x: np.ndarray, y: np.ndarray, alpha: float = 0.05):
    """``(value, lower, upper)`` of a metric with an analytical CI (bias, ubrmsd, pearson_r)."""
    name = metric_func if isinstance(metric_func, str) else metric_func.__name__
    if name not in _CI_FUNCS:
        raise ValueError(f"No analytical CI implemented for {name}.")
    func = globals()[name]
    m = func(x, y)
    lo, hi = _CI_FUNCS[name](x, y, m, alpha)
    return m, lo, hi


# ---------------------------------------------------------------------------------------
# all metrics of one pair, and of many stations at once
# ---------------------------------------------------------------------------------------


def pairwise_metrics(x: np.ndarray, y: np.ndarray, min_obs: int = 10, alpha: float = 0.05) -> dict[str, float]:
    """Every metric of :data:`ALL_KEYS` for product ``x`` against station ``y``.

    Pairs where either value is NaN are dropped first. With fewer than ``min_obs`` pairs
    only ``n_obs`` is set and every other value is NaN (as pytesmo does).
    """
    x, y = _as_pair(x, y)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = int(x.size)
    out = {k: float("nan") for k in ALL_KEYS}
    out["n_obs"] = n
    if n < max(int(min_obs), 2):
        return out
    out["BIAS"] = bias(x, y)
    out["RMSD"] = rmsd(x, y)
    out["urmsd"] = ubrmsd(x, y)
    out["R"], out["p_R"] = pearson_r_p(x, y)
    out["BIAS_ci_lower"], out["BIAS_ci_upper"] = bias_ci(x, y, out["BIAS"], alpha)
    out["urmsd_ci_lower"], out["urmsd_ci_upper"] = ubrmsd_ci(x, y, out["urmsd"], alpha)
    out["R_ci_lower"], out["R_ci_upper"] = pearson_r_ci(x, y, out["R"], alpha)
    return out


def metrics_table(
    x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None, min_obs: int = 10, alpha: float = 0.05
) -> dict[str, np.ndarray]:
    """:func:`pairwise_metrics` for every row of ``(n_stations, n_days)`` arrays at once.

    A day counts for a station where ``x`` and ``y`` are both finite (and ``mask`` is True
    when given). Returns a dict of float64 arrays of shape ``(n_stations,)``; ``n_obs`` is
    int64. Rows with fewer than ``min_obs`` pairs have NaN metrics.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"x and y must be 2-D arrays of the same shape, got {x.shape} and {y.shape}")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != x.shape:
            raise ValueError(f"mask has shape {mask.shape}, x and y {x.shape}")
    # blocks of stations: the temporaries (a dozen arrays of a block's size) stay small
    # however long the series (2,000 stations x 6,205 days would need about 1 GB at once)
    step = max(1, ROW_BLOCK_VALUES // max(x.shape[1], 1))
    parts = [_metrics_rows(x[a : a + step], y[a : a + step], None if mask is None else mask[a : a + step],
                           min_obs, alpha) for a in range(0, x.shape[0], step)]
    if not parts:
        return _metrics_rows(x, y, mask, min_obs, alpha)
    return {k: np.concatenate([p[k] for p in parts]) for k in ALL_KEYS}


#: values (stations x days) per block in :func:`metrics_table` (about 8 MB per temporary)
ROW_BLOCK_VALUES = 1 << 20


def _metrics_rows(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None, min_obs: int, alpha: float
                  ) -> dict[str, np.ndarray]:
    """The body of :func:`metrics_table` for one block of rows ``(m, n_days)``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if mask is not None:
        ok &= mask
    n = ok.sum(axis=1)
    nf = n.astype(np.float64)
    valid = n >= max(int(min_obs), 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        xs = np.where(ok, x, 0.0)
        ys = np.where(ok, y, 0.0)
        mx = xs.sum(axis=1) / nf
        my = ys.sum(axis=1) / nf
        xm = np.where(ok, x - mx[:, None], 0.0)
        ym = np.where(ok, y - my[:, None], 0.0)
        d = xm - ym  # (x - mean x) - (y - mean y)
        vx = (xm * xm).sum(axis=1)
        vy = (ym * ym).sum(axis=1)
        cxy = (xm * ym).sum(axis=1)
        diff = np.where(ok, x - y, 0.0)
        b = diff.sum(axis=1) / nf
        rmsd_ = np.sqrt((diff * diff).sum(axis=1) / nf)
        ub_ss = (d * d).sum(axis=1)
        urmsd = np.sqrt(ub_ss / nf)
        const = (vx == 0.0) | (vy == 0.0)
        r = np.where(const, np.nan, np.clip(cxy / np.sqrt(vx * vy), -1.0, 1.0))
        p = pearson_p(r, n)
        # CIs: bias (t), urmsd (chi2), R (Fisher z); sd(x - y, ddof=1)^2 = ub_ss / (n - 1)
        df = np.where(valid, nf - 1.0, np.nan)
        t = stats.t.ppf(1 - alpha / 2, df)
        delta = np.sqrt(ub_ss / (nf - 1.0)) / np.sqrt(nf) * t
        ub_msd = urmsd * urmsd
        u_lo = np.sqrt(nf * ub_msd / stats.chi2.ppf(1 - alpha / 2, df))
        u_hi = np.sqrt(nf * ub_msd / stats.chi2.ppf(alpha / 2, df))
        zq = stats.norm.ppf(1 - alpha / 2)
        v = np.arctanh(r)
        half = zq / np.sqrt(nf - 3.0)
        r_lo, r_hi = np.tanh(v - half), np.tanh(v + half)
    out = {
        "n_obs": n.astype(np.int64),
        "R": r,
        "p_R": p,
        "BIAS": b,
        "RMSD": rmsd_,
        "urmsd": urmsd,
        "R_ci_lower": r_lo,
        "R_ci_upper": r_hi,
        "BIAS_ci_lower": b - delta,
        "BIAS_ci_upper": b + delta,
        "urmsd_ci_lower": u_lo,
        "urmsd_ci_upper": u_hi,
    }
    for k in ALL_KEYS:
        if k != "n_obs":
            out[k] = np.where(valid, np.asarray(out[k], dtype=np.float64), np.nan)
    return out


def station_average(table: dict[str, np.ndarray], how: str = "mean") -> dict[str, float]:
    """Mean or median of each metric over the stations that have it (``n_obs`` >= min_obs);
    also ``n_stations`` (how many entered) and ``n_obs`` (their total matched days)."""
    func = {"mean": np.mean, "median": np.median}[how]
    used = np.isfinite(np.asarray(table["RMSD"]))
    out: dict[str, float] = {"n_stations": int(used.sum()), "n_obs": int(np.asarray(table["n_obs"])[used].sum())}
    for k in ("R", "p_R", "BIAS", "RMSD", "urmsd"):
        v = np.asarray(table[k], dtype=np.float64)[used]
        if k in ("R", "p_R"):
            v = v[np.isfinite(v)]  # constant series have no R but still an RMSD
        out[k] = float(func(v)) if v.size else float("nan")
    return out

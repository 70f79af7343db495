"""Accuracy and speed of the SSM downscaling methods on sample scenes (``make bench-ssm``).

For the default sample scene (tibet, 360 km, 92 days, cloudiness 0.5, seed 1) and three
other places / seeds / cloudiness levels, every method downscales the scene's coarse SSM
with the scene's inputs (the true all-weather LST ``truth/lst`` stands in for a gap-filled
LST; ``truth/cloud`` serves as the LST gap-fill flags, so flags 2/3 mark cloudy pixels).
The 1 km result is compared with ``truth/ssm`` over all land pixel-days:

* ubRMSE, bias (product - truth) and R, pooled over pixel-days: all; pixels of observed
  coarse cells (flags 0/2); seam-filled pixels (1/3); clear-sky and cloudy pixels (truth/cloud);
* ``anom_r``: correlation of the within-cell anomalies (1 km value minus its coarse cell's
  mean) with the truth's (same pixels);
* ``unc_rms``: root-mean-square of the method's uncertainty layer over the same pixel-days
  (gwr: prediction standard error; forest: tree spread), to set against ``ub_all``;
* ``cover95`` / ``cov95_ub``: % of pixel-days whose truth lies inside the 95 % interval
  (1.96 x the uncertainty), and the same after taking the coarse product's constant
  retrieval bias (``coarse_ssm_bias`` in scene.json; the coarse data cannot reveal it, so
  no method's interval can hold it) off the error: how well the interval covers the
  random error alone;
* ``stn_ub``: station-average ubRMSE at the scene's stations (pixel containing the station,
  stations with >= 10 matched days; ``ubRMSE = std(product - station)``), next to the
  same number for the truth itself (the floor set by the stations' point-scale noise);
* ``min_cov``: the lowest daily % of land pixels with an estimate over the days that have
  coarse data (a skipped day counts 0 %);
* ``s/day``: wall time per day (reading, fitting, writing).

For reference, what the inputs allow (computed from the truth, :func:`bounds`): the
ubRMSE floor of any product whose cell means equal the coarse values (the coarse retrieval
noise), and the within-cell skill of the best global linear combination of the predictors
fitted to the truth itself.

Then one China-sized day (5000 x 4000 km, place china) per method: wall and CPU time and
peak memory (each in a child process); for the default method also the GDAL I/O floor
measured in the same run (each of the day's inputs read once, the three outputs written;
multi-threaded and single-threaded GDAL I/O), the ratio to it, and where the time goes
(read, set-up, aggregate, fit/search, predict, residual, write: :data:`STAGES`).
``--only-china`` runs just this part. Targets of issue 4 are checked and printed. Results go to
``--out`` as bench_ssm.json and bench_ssm.csv.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "build" / "plugins"))

from ssm_downscaling.core.downscale import build_membership, downscale_series  # noqa: E402
from ssm_downscaling.core.downscale.interp import interpolate, node_positions  # noqa: E402
from ssm_downscaling.core.downscale.residual import _fill_nodes  # noqa: E402
from ssm_downscaling.core.grid import Grid, to_wkt, transform_points  # noqa: E402
from ssm_downscaling.core.scene import GENERATOR_VERSION, SceneConfig, generate_scene  # noqa: E402
from ssm_downscaling.core.series import DailySeries, LayerSource, read_raster  # noqa: E402

METHODS = ("gwr", "gwr-coherent", "forest", "dispatch", "bilinear", "nearest")
#: variants run like methods: name -> (method, options of downscale_series)
VARIANTS: dict[str, tuple[str, dict]] = {
    "gwr-coherent": ("gwr", {"residual": "coherent"}),  # cell means = coarse values (the default before issue 8)
}
#: the method whose targets are checked (the tool's default)
DEFAULT = "gwr"
#: the four bench scenes of issue 4, then four more that vary seed, place, cloudiness,
#: centre and the coarse grid (EASE-Grid 2.0 36 km or geographic 0.25 degree)
SCENES = {
    "tibet-s1-c0.5 (default)": dict(place="tibet", seed=1, cloudiness=0.5),
    "loess-s2-c0.3": dict(place="loess", seed=2, cloudiness=0.3),
    "northeast-s3-c0.7": dict(place="northeast", seed=3, cloudiness=0.7),
    "south-s4-c0.6": dict(place="south", seed=4, cloudiness=0.6),
    "tibet-s5-c0.3-geo": dict(place="tibet", seed=5, cloudiness=0.3, coarse_grid="geo_0.25deg"),
    "loess-s6-c0.8-geo": dict(place="loess", seed=6, cloudiness=0.8, coarse_grid="geo_0.25deg"),
    "northeast-s7-c0.2": dict(place="northeast", seed=7, cloudiness=0.2, centre_lon=127.5, centre_lat=47.5),
    "south-s8-c0.9-geo": dict(place="south", seed=8, cloudiness=0.9, coarse_grid="geo_0.25deg", centre_lon=110.0,
                              centre_lat=25.0),
}
CHINA = dict(place="china", width_km=5000, height_km=4000, days=1, spinup_days=3, n_stations=0, seed=1)
SUBSETS = ("all", "obs", "seam", "clear", "cloudy")


# ---------------------------------------------------------------------------------------
# scenes
# ---------------------------------------------------------------------------------------


def scene(work: Path, name: str, cfg: dict) -> Path:
    """Generate the scene once (reused while its config is unchanged)."""
    folder = work / "scenes" / name.split(" ")[0]
    stamp = folder / "bench_config.json"
    want = json.dumps(dict(cfg, generator_version=GENERATOR_VERSION), sort_keys=True)
    if stamp.exists() and stamp.read_text() == want and (folder / "scene.json").exists():
        return folder
    t = time.perf_counter()
    generate_scene(SceneConfig(**cfg), folder)
    stamp.write_text(want)
    print(f"  generated {name} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return folder


def run_method(sc: Path, out: Path, method: str, **kw) -> tuple[object, float]:
    t = time.perf_counter()
    s = downscale_series(sc / "inputs" / "ssm_coarse", sc / "truth" / "lst", sc / "inputs" / "ndvi",
                         sc / "inputs" / "albedo", out / "ssm", out / "flags", out / "unc", dem=sc / "inputs" / "dem.tif",
                         lst_flags=sc / "truth" / "cloud", method=method, coverage_csv=out / "coverage.csv", **kw)
    return s, time.perf_counter() - t


# ---------------------------------------------------------------------------------------
# metrics (streamed sums, pooled over pixel-days)
# ---------------------------------------------------------------------------------------


class Moments:
    """Sums for bias, ubRMSE and R of x (product) against y (truth)."""

    def __init__(self) -> None:
        self.n = 0
        self.sx = self.sy = self.sxx = self.syy = self.sxy = 0.0

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        x = x.astype(np.float64)
        y = y.astype(np.float64)
        self.n += x.size
        self.sx += x.sum()
        self.sy += y.sum()
        self.sxx += (x * x).sum()
        self.syy += (y * y).sum()
        self.sxy += (x * y).sum()

    def result(self) -> dict:
        if self.n < 3:
            return {"n": self.n, "ubrmse": math.nan, "bias": math.nan, "r": math.nan}
        n = self.n
        mx, my = self.sx / n, self.sy / n
        vx, vy = self.sxx / n - mx * mx, self.syy / n - my * my
        cxy = self.sxy / n - mx * my
        vd = vx + vy - 2 * cxy
        return {"n": n, "ubrmse": math.sqrt(max(vd, 0.0)), "bias": mx - my,
                "r": cxy / math.sqrt(vx * vy) if vx > 0 and vy > 0 else math.nan}


def read_stations(path: Path, fine: Grid) -> tuple[dict[str, tuple[int, int]], dict[str, dict[dt.date, float]]]:
    rows = list(csv.DictReader(open(path)))
    where: dict[str, tuple[int, int]] = {}
    values: dict[str, dict[dt.date, float]] = {}
    coords = {}
    for r in rows:
        coords.setdefault(r["station_id"], (float(r["lon"]), float(r["lat"])))
        if r["sm"] not in ("", "nan"):
            values.setdefault(r["station_id"], {})[dt.date.fromisoformat(r["date"][:10])] = float(r["sm"])
    ids = list(coords)
    if not ids:
        return {}, {}
    lon = np.array([coords[i][0] for i in ids])
    lat = np.array([coords[i][1] for i in ids])
    x, y = transform_points(lon, lat, to_wkt(4326), fine.crs_wkt)
    rr, cc = fine.rowcol(x, y)
    for i, r, c in zip(ids, rr, cc):
        if r >= 0:
            where[i] = (int(r), int(c))
    return where, values


def station_scores(series: dict[str, list[tuple[float, float]]], min_obs: int = 10) -> dict:
    """Station time-series scores of (product, station) pairs: per station with at least
    ``min_obs`` days the ubRMSD (std of the differences) and R; their mean and median."""
    ub, rr = [], []
    for pairs in series.values():
        a = np.array(pairs, dtype=np.float64)
        if len(a) >= min_obs:
            ub.append(np.std(a[:, 0] - a[:, 1]))
            if a[:, 0].std() > 0 and a[:, 1].std() > 0:
                rr.append(np.corrcoef(a[:, 0], a[:, 1])[0, 1])

    def f(v: list, g) -> float:
        return float(g(v)) if v else math.nan

    return {"ub": f(ub, np.mean), "ub_median": f(ub, np.median), "r": f(rr, np.mean), "r_median": f(rr, np.median),
            "n": len(ub)}


class PixelSeries:
    """Per-pixel time-series sums of product x against truth y (streamed over days)."""

    def __init__(self, shape: tuple[int, int]):
        self.n = np.zeros(shape, dtype=np.int32)
        self.s = {k: np.zeros(shape) for k in ("x", "y", "xx", "yy", "xy")}

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        ok = np.isfinite(x) & np.isfinite(y)
        x = np.where(ok, x, 0.0).astype(np.float64)
        y = np.where(ok, y, 0.0).astype(np.float64)
        self.n += ok
        for k, v in (("x", x), ("y", y), ("xx", x * x), ("yy", y * y), ("xy", x * y)):
            self.s[k] += v

    def result(self, min_days: int = 10) -> dict:
        """Mean and median over pixels with >= ``min_days`` of the per-pixel ubRMSD and R."""
        sel = self.n >= min_days
        n = self.n[sel].astype(np.float64)
        if not n.size:
            return {"ub": math.nan, "ub_median": math.nan, "r": math.nan, "r_median": math.nan, "n": 0}
        mx, my = self.s["x"][sel] / n, self.s["y"][sel] / n
        vx = self.s["xx"][sel] / n - mx * mx
        vy = self.s["yy"][sel] / n - my * my
        cxy = self.s["xy"][sel] / n - mx * my
        ub = np.sqrt(np.maximum(vx + vy - 2 * cxy, 0.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = cxy / np.sqrt(vx * vy)
        r = r[np.isfinite(r)]
        return {"ub": float(ub.mean()), "ub_median": float(np.median(ub)),
                "r": float(r.mean()) if r.size else math.nan, "r_median": float(np.median(r)) if r.size else math.nan,
                "n": int(sel.sum())}


class EdgeJumps:
    """Mean |difference| of neighbouring pixels across coarse-cell edges and inside cells."""

    def __init__(self, index: np.ndarray):
        self.pairs = []
        for a, b in ((np.s_[:, 1:], np.s_[:, :-1]), (np.s_[1:, :], np.s_[:-1, :])):
            ia, ib = index[a], index[b]
            both = (ia >= 0) & (ib >= 0)
            self.pairs.append((a, b, both & (ia != ib), both & (ia == ib)))
        self.sums = np.zeros(4)

    def add(self, v: np.ndarray, ok: np.ndarray) -> None:
        for a, b, cross, inside in self.pairs:
            d = np.abs(v[a].astype(np.float64) - v[b])
            good = ok[a] & ok[b]
            self.sums += [d[cross & good].sum(), (cross & good).sum(), d[inside & good].sum(), (inside & good).sum()]

    def ratio(self) -> float:
        c, nc, i, ni = self.sums
        if not (nc and ni):
            return math.nan
        return float((c / nc) / (i / ni)) if i > 0 else math.inf  # inf: constant inside every cell


def large_scale(cell_means: np.ndarray, m, fr: np.ndarray, fc: np.ndarray) -> np.ndarray:
    """Cell means ``(rows, cols)`` interpolated bilinearly between cell centres at the fine
    pixels' positions ``fr, fc`` (cells without a mean take the nearest cell's): a field
    without cell edges, float64 on the fine grid of membership ``m``."""
    return interpolate(_fill_nodes(cell_means.ravel().astype(np.float64), m.coarse.shape), fr, fc, m.coarse.shape)


def evaluate(sc: Path, out: Path, summary, membership, ssm_range: tuple[float, float] = (0.01, 0.6)) -> dict:
    """Every accuracy measure of one run against the truth (see the module docstring)."""
    truth = DailySeries.from_folder(sc / "truth" / "ssm")
    cloud = DailySeries.from_folder(sc / "truth" / "cloud")
    mom = {k: Moments() for k in SUBSETS}
    anom = Moments()
    unc_sum = unc_n = 0.0
    inside95 = inside95_ub = n95 = 0
    clipped = truth_at_bound = n_all = 0
    coarse_bias = float(json.loads((sc / "scene.json").read_text()).get("coarse_ssm_bias", 0.0))
    where, stn = read_stations(sc / "stations.csv", summary.fine)
    pairs: dict[str, list] = {}
    truth_pairs: dict[str, list] = {}
    m = membership
    pix = PixelSeries(summary.fine.shape)
    # the time-series error split: product = L_p + A_p (its cell means interpolated between
    # cell centres + the rest), the same for the truth; error = (L_p - L_t) + (A_p - A_t)
    pix_ls, pix_an = PixelSeries(summary.fine.shape), PixelSeries(summary.fine.shape)
    fr, fc = node_positions(m.fine, m.coarse)
    jumps, tjumps = EdgeJumps(m.index), EdgeJumps(m.index)
    lo, hi = ssm_range
    for d in summary.days:
        p = read_raster(out / "ssm" / f"ssm_{d}.tif")
        t = read_raster(truth.path(d))
        f = read_raster(out / "flags" / f"ssm_flags_{d}.tif")
        c = read_raster(cloud.path(d))
        ok = np.isfinite(p) & np.isfinite(t)
        sel = {"all": ok, "obs": ok & np.isin(f, (0, 2)), "seam": ok & np.isin(f, (1, 3)),
               "clear": ok & (c == 0), "cloudy": ok & (c == 1)}
        for k, s in sel.items():
            mom[k].add(p[s], t[s])
        pix.add(np.where(ok, p, np.nan), t)
        jumps.add(p, ok)
        tjumps.add(t, ok)
        n_all += int(ok.sum())
        clipped += int((ok & ((p <= lo + 1e-6) | (p >= hi - 1e-6))).sum())
        truth_at_bound += int((ok & ((t <= lo + 1e-6) | (t >= hi - 1e-6))).sum())
        up = out / "unc" / f"ssm_uncertainty_{d}.tif"
        if up.exists():
            u = read_raster(up)
            good = ok & np.isfinite(u)
            unc_sum += float((u[good].astype(np.float64) ** 2).sum())
            unc_n += int(good.sum())
            err = p[good].astype(np.float64) - t[good]
            inside95 += int((np.abs(err) <= 1.96 * u[good]).sum())
            inside95_ub += int((np.abs(err - coarse_bias) <= 1.96 * u[good]).sum())
            n95 += int(good.sum())
        pm, _ = m.aggregate(np.where(ok, p, np.nan))
        tm, _ = m.aggregate(np.where(ok, t, np.nan))
        inside = ok & (m.index >= 0)
        anom.add((p - m.expand(pm))[inside], (t - m.expand(tm))[inside])
        lp, lt = large_scale(pm, m, fr, fc), large_scale(tm, m, fr, fc)
        pix_ls.add(np.where(inside, t + (lp - lt), np.nan), t)
        pix_an.add(np.where(inside, lt + (p - lp), np.nan), t)
        for sid, (r, cc) in where.items():
            v = stn.get(sid, {}).get(d)
            if v is None:
                continue
            if np.isfinite(p[r, cc]):
                pairs.setdefault(sid, []).append((p[r, cc], v))
            if np.isfinite(t[r, cc]):
                truth_pairs.setdefault(sid, []).append((t[r, cc], v))
    res = {k: v.result() for k, v in mom.items()}
    res["anom_r"] = anom.result()["r"]
    res["unc_rms"] = math.sqrt(unc_sum / unc_n) if unc_n else math.nan  # vs the actual error (ub_all)
    res["cover95"] = 100.0 * inside95 / n95 if n95 else math.nan
    res["cover95_unbiased"] = 100.0 * inside95_ub / n95 if n95 else math.nan
    res["clipped_pct"] = 100.0 * clipped / n_all if n_all else math.nan
    res["truth_at_bound_pct"] = 100.0 * truth_at_bound / n_all if n_all else math.nan
    res["pixel_ts"] = pix.result()
    res["px_ub_ls_err"] = pix_ls.result()["ub"]
    res["px_ub_anom_err"] = pix_an.result()["ub"]
    st = station_scores(pairs)
    res["stn_ub"], res["stn_ub_median"], res["stn_r"], res["n_stations"] = st["ub"], st["ub_median"], st["r"], st["n"]
    res["stn_ub_truth"] = station_scores(truth_pairs)["ub"]
    res["block_ratio"] = jumps.ratio()
    res["block_ratio_truth"] = tjumps.ratio()
    coarse_days = DailySeries.from_folder(sc / "inputs" / "ssm_coarse").dates
    cov = {r["date"]: r["estimated_pct"] for r in summary.coverage}
    res["min_cov"] = min(cov.get(d.isoformat(), 0.0) for d in coarse_days)
    return res


def bounds(sc: Path, membership, step: int = 2) -> dict:
    """What the inputs allow, from the truth itself (every ``step``-th day):

    * ``floor_ub``: ubRMSE of the truth shifted per cell onto the coarse values (a perfect
      within-cell pattern under the mean constraint; what is left is the coarse product's
      retrieval noise);
    * ``oracle_r``: within-cell anomaly R of the best single linear combination of the
      predictors' within-cell anomalies (LST, albedo, NDVI, DEM) fitted to the truth's;
    * ``oracle_ub``: ubRMSE of the coarse values plus those oracle anomalies.
    """
    m = membership
    truth = DailySeries.from_folder(sc / "truth" / "ssm")
    coarse = DailySeries.from_folder(sc / "inputs" / "ssm_coarse")
    lst = DailySeries.from_folder(sc / "truth" / "lst")
    alb = LayerSource.open(sc / "inputs" / "albedo", 8)
    ndvi = LayerSource.open(sc / "inputs" / "ndvi", 16)
    dem = read_raster(sc / "inputs" / "dem.tif")
    T, C, X, Tc = [], [], [], []
    for d in truth.dates[::step]:
        if d not in coarse:
            continue
        t = read_raster(truth.path(d))
        arrs = [read_raster(lst.path(d)), alb.read(d), ndvi.read(d), dem]
        y = read_raster(coarse.path(d), m.coarse, "nearest")
        ok = np.isfinite(t) & np.logical_and.reduce([np.isfinite(a) for a in arrs]) & (m.index >= 0)
        ok &= np.isfinite(m.expand(y))
        tm, _ = m.aggregate(np.where(ok, t, np.nan))
        T.append((t - m.expand(tm))[ok])
        Tc.append(t[ok])
        C.append(m.expand(y)[ok])
        cols = []
        for a in arrs:
            am, _ = m.aggregate(np.where(ok, a, np.nan))
            cols.append((a - m.expand(am))[ok])
        X.append(np.column_stack(cols))
    T, C, X, Tc = map(np.concatenate, (T, C, X, Tc))
    b = np.linalg.lstsq(X, T, rcond=None)[0]
    a = X @ b
    floor = Moments()
    floor.add(C + T, Tc)
    orc = Moments()
    orc.add(C + a, Tc)
    # time series at every pixel: the truth's own cell means interpolated between cell
    # centres (a perfect, noise-free large-scale field), alone and plus the oracle anomalies
    fr, fc = node_positions(m.fine, m.coarse)
    ls_only, ls_orc = PixelSeries(m.fine.shape), PixelSeries(m.fine.shape)
    for d in truth.dates:
        t = read_raster(truth.path(d))
        arrs = [read_raster(lst.path(d)), alb.read(d), ndvi.read(d), dem]
        ok = np.isfinite(t) & np.logical_and.reduce([np.isfinite(a_) for a_ in arrs]) & (m.index >= 0)
        tm, _ = m.aggregate(np.where(ok, t, np.nan))
        large = large_scale(tm, m, fr, fc)
        anom = np.zeros(t.shape)
        for k, a_ in enumerate(arrs):
            am, _ = m.aggregate(np.where(ok, a_, np.nan))
            anom += b[k] * (a_ - m.expand(am))
        ls_only.add(np.where(ok, large, np.nan), t)
        ls_orc.add(np.where(ok, large + anom, np.nan), t)
    return {"floor_ub": floor.result()["ubrmse"], "oracle_r": float(np.corrcoef(a, T)[0, 1]),
            "oracle_ub": orc.result()["ubrmse"], "px_ub_truth_large_scale": ls_only.result()["ub"],
            "px_ub_oracle": ls_orc.result()["ub"]}


# ---------------------------------------------------------------------------------------
# China-sized day (child processes)
# ---------------------------------------------------------------------------------------


#: where the wall time of a China-sized day goes: (module, attribute path, stage); each
#: wrapped call's time counts for its stage minus the time of wrapped calls inside it
#: (entries missing from the code under test are skipped)
STAGES = [
    ("ssm_downscaling.core.downscale.predictors", "DayCache.block", "read"),
    ("ssm_downscaling.core.downscale.predictors", "FolderPredictors.read_sample", "read"),
    ("ssm_downscaling.core.downscale.predictors", "FolderCoarse.read", "read"),
    ("ssm_downscaling.core.series", "LayerSource.read", "read"),
    ("ssm_downscaling.core.membership", "Membership.build", "set-up"),
    ("ssm_downscaling.core.downscale.run", "Engine.__init__", "set-up"),
    ("ssm_downscaling.core.downscale.run", "downscale_preflight", "set-up"),
    ("ssm_downscaling.core.downscale.run", "check_covers", "set-up"),
    ("ssm_downscaling.core.downscale.gwr", "GWRDownscaler.fit", "fit/search"),
    ("ssm_downscaling.core.downscale.run", "_anomaly_pairs", "fit/search"),  # the anomaly gains' super-cell fits
    ("ssm_downscaling.core.downscale.run", "Engine.aggregate", "aggregate"),
    ("ssm_downscaling.core.downscale.run", "Engine.predict_day", "predict"),
    ("ssm_downscaling.core.downscale.run", "smooth_anomaly", "residual"),  # the static within-cell pattern
    ("ssm_downscaling.core.downscale.run", "estimate_covariance", "residual"),  # the coarse residuals' filter
    ("ssm_downscaling.core.downscale.run", "krige", "residual"),
    ("ssm_downscaling.core.downscale.run", "Engine.apply", "residual"),
    ("ssm_downscaling.core.series", "RasterWriter.__enter__", "write"),
    ("ssm_downscaling.core.series", "RasterWriter.write", "write"),
    ("ssm_downscaling.core.series", "RasterWriter.__exit__", "write"),
]


class StageTimer:
    """Exclusive wall and CPU time (of the whole process, all threads) per stage of wrapped
    functions (see :data:`STAGES`); CPU seconds are less disturbed by a busy machine."""

    def __init__(self) -> None:
        self.secs: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.stack: list[list[float]] = []

    def wrap(self, fn, stage: str):
        import functools

        @functools.wraps(fn)
        def timed(*a, **k):
            self.stack.append([0.0, 0.0])
            t, c = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **k)
            finally:
                dt_, dc = time.perf_counter() - t, time.process_time() - c
                inner = self.stack.pop()
                self.secs[stage] = self.secs.get(stage, 0.0) + dt_ - inner[0]
                self.cpu[stage] = self.cpu.get(stage, 0.0) + dc - inner[1]
                if self.stack:
                    self.stack[-1][0] += dt_
                    self.stack[-1][1] += dc

        return timed

    def install(self) -> list[str]:
        import importlib

        missing = []
        for mod, path, stage in STAGES:
            owner = importlib.import_module(mod)
            *parents, name = path.split(".")
            for p in parents:
                owner = getattr(owner, p, None)
            fn = getattr(owner, name, None) if owner is not None else None
            if fn is None:
                missing.append(f"{mod}.{path}")
                continue
            setattr(owner, name, self.wrap(fn, stage))
        return missing


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def china_child(sc: Path, method: str, out: Path) -> None:
    """Run one method on the China-sized day; print time, CPU, peak RSS and the time per
    stage as JSON."""
    timer = StageTimer()
    missing = timer.install()
    import ssm_downscaling.core.series as series_mod

    reads: dict[str, int] = {}  # pixels read onto the 1 km grid (or a strip of it) per input file
    real_read = series_mod.read_raster
    fine_width = Grid.from_raster(next(iter(DailySeries.from_folder(sc / "truth" / "lst").files.values()))).width

    def counting_read(path, grid=None, *a, **k):
        out = real_read(path, grid, *a, **k)
        if grid is not None and grid.width == fine_width:
            reads[str(path)] = reads.get(str(path), 0) + out.size
        return out

    series_mod.read_raster = counting_read
    base, opts = VARIANTS.get(method, (method, {}))
    c0 = _cpu()
    s, secs = run_method(sc, out, base, **opts)
    cpu = _cpu() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    g = s.fine
    stages = dict(timer.secs)
    stages["other"] = secs - sum(stages.values())
    stages_cpu = dict(timer.cpu)
    stages_cpu["other"] = cpu - sum(stages_cpu.values())
    print(json.dumps({"method": method, "seconds": secs, "cpu_seconds": cpu, "peak_rss_mb": peak, "width": g.width,
                      "height": g.height, "coverage": s.mean_estimated_pct,
                      "bandwidth_km": s.coverage[0].get("bandwidth_km"), "stages": stages, "stages_cpu": stages_cpu,
                      "not_timed": missing, "load": os.getloadavg()[0],
                      "input_files": len(reads), "read_passes": {Path(k).name: v / g.size for k, v in reads.items()}}))


def io_floor_child(sc: Path, outputs: Path, threads: str) -> None:
    """The GDAL I/O floor of one China-sized day: read each of the day's inputs once
    (whole rasters, onto the 1 km grid) and write the three outputs (the values of the
    run in ``outputs``, loaded before timing) with the product's writer, ``threads``
    compression (and tile decoding) threads. Prints seconds (read, write) as JSON."""
    from ssm_downscaling.core.memory import keep_freed_memory, tune_huge_pages
    from ssm_downscaling.core.series import RasterWriter

    os.environ["SSM_WRITE_THREADS"] = threads  # read by the writer's creation options
    os.environ["SSM_READ_THREADS"] = threads  # and by the readers
    day = DailySeries.from_folder(sc / "inputs" / "ssm_coarse").start
    fine = LayerSource.open(sc / "truth" / "lst").grid()
    arrays = [(k, read_raster(next((outputs / k).glob("*.tif"))), dt_) for k, dt_ in
              (("ssm", "float32"), ("flags", "uint8"), ("unc", "float32"))]
    ins = [LayerSource.open(sc / "truth" / "lst"), LayerSource.open(sc / "inputs" / "ndvi", 16),
           LayerSource.open(sc / "inputs" / "albedo", 8), LayerSource.open(sc / "inputs" / "dem.tif"),
           LayerSource.open(sc / "truth" / "cloud")]
    tune_huge_pages()  # the process's memory set as in a run
    with keep_freed_memory():
        t0, c0 = time.perf_counter(), time.process_time()
        for src in ins:
            src.read(day, fine)
        coarse = DailySeries.from_folder(sc / "inputs" / "ssm_coarse")
        coarse.read(day)
        t1 = time.perf_counter()
        tmp = outputs.parent / f"floor-{method_safe(threads)}"
        for k, a, dtype in arrays:
            with RasterWriter(tmp / f"{k}.tif", fine, dtype, date=day) as w:
                a = a if dtype == "float32" else np.where(np.isfinite(a), a, 255).astype(np.uint8)
                w.write(a, 0)
        t2 = time.perf_counter()
    print(json.dumps({"read": t1 - t0, "write": t2 - t1, "seconds": t2 - t0, "cpu_seconds": time.process_time() - c0,
                      "threads": threads}))


def method_safe(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text)


def _child(args: list[str], env: dict[str, str] | None = None) -> dict:
    r = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                       env=None if env is None else {**os.environ, **env})
    if r.returncode != 0:
        return {"error": r.stderr[-500:]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def china(work: Path, methods: list[str]) -> list[dict]:
    """One child per method on the China-sized day, with the grid cache (set-up arrays
    kept on disk by grid signature, :mod:`core.gridcache`) in ``work``. When that cache
    is empty, the default method runs once more first: the set-up of the first run on a
    pair of grids is reported on its own (``cold_setup_s``), the timed rows are runs as
    every later day and run sees them."""
    scene(work, "china-day", CHINA)
    cache = work / "grid-cache"
    env = {"SSM_GRID_CACHE": str(cache)}
    cold = None
    if DEFAULT in methods and not any(cache.glob("*.npz")):
        cold = _child(["--child-china", DEFAULT, "--work", str(work)], env)
    rows = []
    for method in methods:
        r = _child(["--child-china", method, "--work", str(work)], env)
        rows.append(dict(r, method=method))
        if method == DEFAULT and "error" not in r:
            if cold is not None and "error" not in cold:
                rows[-1]["cold_seconds"] = cold["seconds"]
                rows[-1]["cold_setup_s"] = cold["stages"].get("set-up", math.nan)
            for threads in ("1", "ALL_CPUS"):
                f = _child(["--child-floor", threads, "--work", str(work)], env)
                rows[-1][f"io_floor_{threads}"] = f
    return rows


def print_china(rows: list[dict]) -> None:
    """The China-sized day: time, CPU, memory; for the default method the time per stage
    and the ratio to the I/O floor measured in the same run."""
    print("\nChina-sized day (one day, child process per method)")
    for r in rows:
        if "error" in r:
            print(f"  {r['method']:<12} failed: {r['error']}")
            continue
        print(f"  {r['method']:<12} {r['width']} x {r['height']} px: {r['seconds']:7.1f} s wall, "
              f"{r.get('cpu_seconds', math.nan):6.1f} s CPU ({r.get('cpu_seconds', math.nan) / r['seconds']:.2f} cores), "
              f"peak RSS {r['peak_rss_mb']:7.0f} MB, coverage {r['coverage']:.2f} %")
    for r in rows:
        fl = r.get("io_floor_ALL_CPUS")
        if not fl or "error" in fl:
            continue
        fl1 = r.get("io_floor_1", {})
        print(f"\n  {r['method']} on the China-sized day against the GDAL I/O floor (read the day's inputs once, write the"
              " three outputs)")
        print(f"  I/O floor: {fl['seconds']:.2f} s wall, {fl.get('cpu_seconds', math.nan):.2f} s CPU (read "
              f"{fl['read']:.2f} s, write {fl['write']:.2f} s) with multi-threaded GDAL I/O; "
              f"{fl1.get('seconds', math.nan):.2f} s wall single-threaded (load average {r.get('load', math.nan):.1f})")
        print(f"  {r['method']}: {r['seconds']:.2f} s wall = {r['seconds'] / fl['seconds']:.2f} x the I/O floor, "
              f"{r['cpu_seconds']:.2f} s CPU = {r['cpu_seconds'] / fl['cpu_seconds']:.2f} x the floor's CPU "
              "(targets: <= 10 s wall and <= 2 x)")
        if "cold_setup_s" in r:
            print(f"  (grid cache): the first run on these grids took {r['cold_seconds']:.2f} s, its set-up "
                  f"{r['cold_setup_s']:.2f} s against {r['stages'].get('set-up', math.nan):.2f} s with the cache")
        passes = r.get("read_passes", {})
        if passes:
            print(f"  inputs read: {len(passes)} files, each read {min(passes.values()):.2f}-{max(passes.values()):.2f} "
                  "times its 1 km grid")
        cpu = r.get("stages_cpu", {})
        print(f"  {'stage':<12} | {'wall s':>8} | {'share':>6} | {'CPU s':>8} | {'share':>6}")
        for k, v in sorted(r.get("stages", {}).items(), key=lambda kv: -kv[1]):
            c = cpu.get(k, math.nan)
            print(f"  {k:<12} | {v:8.2f} | {100 * v / r['seconds']:5.1f} % | {c:8.2f} | "
                  f"{100 * c / r['cpu_seconds']:5.1f} %")


# ---------------------------------------------------------------------------------------
# table
# ---------------------------------------------------------------------------------------

COLS = [("ub_all", "all", "ubrmse"), ("bias", "all", "bias"), ("R", "all", "r"), ("ub_obs", "obs", "ubrmse"),
        ("ub_seam", "seam", "ubrmse"), ("ub_clear", "clear", "ubrmse"), ("ub_cloudy", "cloudy", "ubrmse")]
LABEL = {"nearest": "coarse"}  # the coarse input read at 1 km


def flat_row(scene_name: str, method: str, res: dict, secs_per_day: float) -> dict:
    row = {"scene": scene_name, "method": LABEL.get(method, method)}
    for name, sub, key in COLS:
        row[name] = res[sub][key]
    px = res["pixel_ts"]
    row.update({"px_ub": px["ub"], "px_ub_med": px["ub_median"], "px_r": px["r"], "px_r_med": px["r_median"],
                "stn_ub": res["stn_ub"], "stn_ub_med": res["stn_ub_median"], "stn_r": res["stn_r"],
                "stn_ub_truth": res["stn_ub_truth"], "block": res["block_ratio"], "block_truth": res["block_ratio_truth"],
                "px_ub_ls_err": res["px_ub_ls_err"], "px_ub_anom_err": res["px_ub_anom_err"],
                "anom_r": res["anom_r"], "unc_rms": res["unc_rms"], "cover95": res["cover95"],
                "cov95_ub": res["cover95_unbiased"],
                "clip_pct": res["clipped_pct"], "truth_bound_pct": res["truth_at_bound_pct"],
                "n_stn": res["n_stations"], "min_cov": res["min_cov"], "s_per_day": secs_per_day,
                "n_seam_px": res["seam"]["n"], "n_px": res["all"]["n"]})
    return row


TABLE = [("ub_all", "{:8.4f}"), ("bias", "{:+8.4f}"), ("R", "{:8.3f}"), ("px_ub", "{:8.4f}"), ("px_r", "{:8.3f}"),
         ("stn_ub", "{:8.4f}"), ("stn_r", "{:8.3f}"), ("block", "{:8.2f}"), ("anom_r", "{:8.3f}"),
         ("cover95", "{:8.1f}"), ("clip_pct", "{:8.3f}"), ("s_per_day", "{:8.2f}")]
TABLE2 = [("ub_obs", "{:8.4f}"), ("ub_seam", "{:8.4f}"), ("ub_clear", "{:8.4f}"), ("ub_cloudy", "{:8.4f}"),
          ("px_ub_med", "{:8.4f}"), ("stn_ub_med", "{:8.4f}"), ("unc_rms", "{:8.4f}"), ("cov95_ub", "{:8.1f}"),
          ("min_cov", "{:8.2f}")]


def print_table(rows: list[dict], cols: list[tuple[str, str]] = TABLE) -> None:
    print(f"{'scene':<24} | {'method':<12} | " + " | ".join(f"{c:>8}" for c, _ in cols))
    for r in rows:
        print(f"{r['scene']:<24} | {r['method']:<12} | " + " | ".join(f.format(r[c]) for c, f in cols))


def targets(rows: list[dict]) -> list[dict]:
    """The targets of issue 8 for the default method, per scene, and the average gain."""
    out = []
    by = {(r["scene"], r["method"]): r for r in rows}
    gains = []
    for sc in dict.fromkeys(r["scene"] for r in rows):
        g, b, c = by.get((sc, DEFAULT)), by.get((sc, "bilinear")), by.get((sc, "coarse"))
        if g is None:
            continue
        checks = []
        if b is not None:
            for key, what in (("px_ub", "pixel"), ("stn_ub", "station")):
                ratio = g[key] / b[key]
                checks.append((f"{what} time-series ubRMSD <= 0.9 x bilinear", f"{ratio:.3f} x", ratio <= 0.9))
            gain = 100 * (1 - g["ub_all"] / b["ub_all"])
            gains.append(gain)
            checks.append(("pooled ubRMSE below bilinear", f"{gain:.1f} %", gain > 0))
        if c is not None:
            for key, what in (("px_ub", "pixel"), ("stn_ub", "station")):
                checks.append((f"{what} time-series ubRMSD below the coarse input's", f"{g[key]:.4f} < {c[key]:.4f}",
                               g[key] < c[key]))
        rb = g["block"] / g["block_truth"]
        checks.append(("block ratio <= 1.3 x the truth's", f"{rb:.2f} x", rb <= 1.3))
        checks.append(("within-cell anomaly R >= 0.5", f"{g['anom_r']:.3f}", g["anom_r"] >= 0.5))
        checks.append(("95 % interval coverage 90-97 %", f"{g['cover95']:.1f} %", 90 <= g["cover95"] <= 97))
        checks.append(("no pile-up at the bounds (clipped <= 0.1 % or truth there)",
                       f"{g['clip_pct']:.3f} % (truth {g['truth_bound_pct']:.3f} %)",
                       g["clip_pct"] <= max(0.1, 2 * g["truth_bound_pct"])))
        checks.append(("daily coverage >= 99 %", f"{g['min_cov']:.2f} %", g["min_cov"] >= 99))
        for name, value, ok in checks:
            out.append({"scene": sc, "target": name, "value": value, "met": bool(ok)})
    if gains:
        avg = float(np.mean(gains))
        out.append({"scene": "(all scenes)", "target": "pooled ubRMSE >= 20 % below bilinear on average",
                    "value": f"{avg:.1f} %", "met": avg >= 20})
    return out


def bench_scene(job: tuple) -> tuple[str, list[dict], dict, dict | None]:
    """Every method on one scene (a worker of the scene pool): rows, details, limits."""
    name, work, days, methods, extra_opts = job
    cfg = dict(SCENES[name], days=days)
    sc = scene(work, name, cfg)
    membership = None
    rows, extra = [], {}
    for method in methods:
        out = work / "runs" / name.split(" ")[0] / method
        base, opts = VARIANTS.get(method, (method, {}))
        if base not in ("bilinear", "nearest"):
            opts = {**opts, **extra_opts}
        s, secs = run_method(sc, out, base, **opts)
        if membership is None:
            membership = build_membership(s.fine, Grid.from_raster(
                next(iter(DailySeries.from_folder(sc / "inputs" / "ssm_coarse").files.values()))))
        res = evaluate(sc, out, s, membership)
        rows.append(flat_row(name, method, res, secs / max(len(s.days), 1)))
        extra[f"{name}/{method}"] = {"metrics": res, "bandwidth_km": [r.get("bandwidth_km") for r in s.coverage],
                                    "retrieval_error": [r.get("retrieval_error") for r in s.coverage][:1],
                                    "days": len(s.days), "skipped": len(s.skipped)}
        print(f"  {name} {method}: ubRMSE {res['all']['ubrmse']:.4f} in {secs:.1f} s", file=sys.stderr)
    return name, rows, extra, (bounds(sc, membership) if membership is not None else None)


def _value(text: str):
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "bench-ssm",
                    help="where scenes and runs are kept (scenes are reused)")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="extra downscale_series options for every model-based run (experiments)")
    ap.add_argument("--scenes", nargs="+", default=None, help="subset of scene names (prefixes)")
    ap.add_argument("--days", type=int, default=92, help="days per scene")
    ap.add_argument("--jobs", type=int, default=1, help="scenes run in parallel processes")
    ap.add_argument("--skip-china", action="store_true", help="skip the China-sized day")
    ap.add_argument("--only-china", action="store_true", help="only the China-sized day (no accuracy scenes)")
    ap.add_argument("--child-china", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-floor", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_china:
        china_child(args.work / "scenes" / "china-day", args.child_china, args.work / "runs" / "china" / args.child_china)
        return 0
    if args.child_floor:
        io_floor_child(args.work / "scenes" / "china-day", args.work / "runs" / "china" / DEFAULT, args.child_floor)
        return 0
    if args.only_china:
        args.scenes = []

    extra_opts = {k: _value(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    rows, extra, limits = [], {}, {}
    names = [n for n in SCENES if args.scenes is None or any(n.startswith(p) for p in args.scenes)]
    jobs = [(n, args.work, args.days, list(args.methods), extra_opts) for n in names]
    if args.jobs > 1 and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(bench_scene, jobs))
    else:
        results = [bench_scene(j) for j in jobs]
    for name, r_rows, r_extra, r_limits in results:
        rows += r_rows
        extra.update(r_extra)
        if r_limits is not None:
            limits[name] = r_limits
    print("\nSSM downscaling accuracy (m3/m3) against truth/ssm. Pooled over land pixel-days: ub_all, bias, R;"
          "\ntime series: px_ub / px_r = mean over land pixels (>= 10 days) of each pixel's ubRMSD / R,"
          "\nstn_ub / stn_r = the same at the stations against their observations; block = mean |jump| across"
          "\ncoarse-cell edges / inside cells (truth: see block_truth in the CSV); cover95 = % of pixel-days"
          "\ninside the 95 % interval; clip_pct = % of pixel-days at MIN_SSM or MAX_SSM; coarse = the input")
    print_table(rows)
    print("\nSubsets (pooled ubRMSE) and medians; cov95_ub = cover95 without the coarse product's constant bias")
    print_table(rows, TABLE2)
    bt = {r["scene"]: r["block_truth"] for r in rows}
    print("block ratio of the truth: " + ", ".join(f"{k.split(' ')[0]} {v:.2f}" for k, v in bt.items()))
    if limits:
        print("\nWhat the inputs allow (from the truth): floor_ub = truth shifted onto the coarse cell values (retrieval"
              "\nnoise only); oracle_r / oracle_ub = best global linear within-cell combination of LST, albedo, NDVI, DEM"
              "\nfitted to the truth, on the coarse cell values; bilinear ub x 0.8 = the 20 % target")
        print("px_ls = pixel time-series ubRMSD of the truth's own cell means interpolated between cell centres"
              "\n(a noise-free large-scale field, no within-cell detail); px_oracle = the same plus the oracle's"
              "\nwithin-cell anomalies; px_ours = the default method's, split into the error of its large-scale"
              "\nfield (ls_err: its cell means interpolated, against the truth's) and of its within-cell part"
              "\n(an_err: the truth's large-scale field plus our within-cell part); px_target = 0.9 x bilinear's")
        print(f"{'scene':<24} | floor_ub | oracle_r | oracle_ub | bilinear x 0.8 |  px_ls | px_oracle | px_ours |"
              f" ls_err | an_err | px_target")
        for name, lim in limits.items():
            b = next((r for r in rows if r["scene"] == name and r["method"] == "bilinear"), {})
            g = next((r for r in rows if r["scene"] == name and r["method"] == DEFAULT), {})
            print(f"{name:<24} | {lim['floor_ub']:8.4f} | {lim['oracle_r']:8.3f} | {lim['oracle_ub']:9.4f} | "
                  f"{0.8 * b.get('ub_all', math.nan):14.4f} | {lim['px_ub_truth_large_scale']:6.4f} | "
                  f"{lim['px_ub_oracle']:9.4f} | {g.get('px_ub', math.nan):7.4f} | {g.get('px_ub_ls_err', math.nan):6.4f} | "
                  f"{g.get('px_ub_anom_err', math.nan):6.4f} | {0.9 * b.get('px_ub', math.nan):9.4f}")
    tgt = targets(rows)
    print(f"\nTargets ({DEFAULT}, issue 8)")
    for t in tgt:
        print(f"  {t['scene']:<24} {t['target']:<42} {t['value']:>9}  {'met' if t['met'] else 'MISSED'}")
    china_rows = [] if args.skip_china else china(args.work, args.methods)
    if china_rows:
        print_china(china_rows)
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {"rows": rows, "targets": tgt, "china_day": china_rows, "details": extra, "limits": limits,
               "scenes": {k: dict(v, days=args.days) for k, v in SCENES.items()}, "china_config": CHINA}
    (args.out / "bench_ssm.json").write_text(json.dumps(payload, indent=1, default=str))
    with open(args.out / "bench_ssm.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["scene"])
        w.writeheader()
        w.writerows(rows)
    print(f"\nwritten: {args.out / 'bench_ssm.json'}, {args.out / 'bench_ssm.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

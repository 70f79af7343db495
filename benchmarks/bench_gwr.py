"""Speed of the GWR engine against ``mgwr`` and against the exact bandwidth search (``make bench-gwr``).

Data: coarse cells of the 36 km EASE-Grid 2.0 over a China-sized ellipse (5000 x 4000 km),
their centres transformed to a Lambert azimuthal equal-area CRS centred on the ellipse (as
the downscaling sees them: coarse cell centres in the 1 km grid's CRS, not a lattice), the
``n`` cells nearest the centre. Five predictors (smooth random fields at 300-1500 km plus
cell-to-cell variation, standardised like :class:`GWRDownscaler` does) and a response
whose coefficients vary smoothly in space (scales of 500-1500 km), plus noise.

For 1,000, 4,000 and 15,000 cells, in the same run and on the same data:

* fixed-bandwidth fit (Gaussian kernel, the bandwidth our search picked): ours vs
  ``mgwr.gwr.GWR(...).fit()``, and the largest coefficient difference;
* AICc bandwidth search: ours (:func:`select_bandwidth`: golden section with coarse
  truncations first, then Brent's parabolic steps) vs mgwr's golden-section
  ``Sel_BW.search`` and vs our exact search (the plain golden section to the same
  tolerance, every pair of cells, no truncation, ``eps=0``, no coarse truncations first,
  no parabolic steps).

mgwr runs with ``n_jobs=1`` (its parallel mode forks processes per call), after one
untimed fit and search on 200 cells (its first fit in a process costs about 2.5 s more);
its fit is the best of :data:`FIT_REPEAT` calls (the same count as ours: on a shared
machine the best of a few calls is the figure least disturbed by other work), its search
one call. Ours runs on every core numba sees; its search is the best of 3 (2 at 15,000
cells). Up to ``--mgwr-full-max`` cells (4,000)
mgwr's fit and search run in full. Above, mgwr's fit is ``n`` independent calls of ``GWR._local_fit``: ``--mgwr-sample``
of them are timed and scaled to ``n``, coefficients compared at those locations; its
search as its lite local fits x ``n`` x the evaluations its search made at the largest
fully run size (marked ``*``, bandwidth ``-``). mgwr searches its own interval (half the
smallest to twice the largest distance, on a linear scale, tolerance 1e-6), so its
bandwidth may be another local optimum; coefficients are compared at our bandwidth.

Then the China-sized search (14,600 cells, 5 predictors): ours vs the exact search, the
chosen bandwidths and AICc side by side; the same golden section at our fit truncation
without the coarse levels first; the fit at the chosen bandwidth; one search on the 2 x 2
super-cells (the anomaly-gain step runs two per day). Writes bench_gwr.json and bench_gwr.csv to ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "build" / "plugins"))

from ssm_downscaling.core.downscale.gwr import gwr_fit, select_bandwidth  # noqa: E402
from ssm_downscaling.core.grid import ease2_global, to_wkt, transform_points  # noqa: E402

SIZES = (1000, 4000, 15000)
CHINA_CELLS = 14600
N_PRED = 5


def china_cells(n: int, seed: int = 1, k: int = N_PRED, rows_cols: bool = False):
    """``coords (n,2)`` (m, LAEA), ``y (n,)``, standardised ``X (n,k)`` of the ``n`` EASE-Grid
    2.0 36 km cells nearest the centre of a 5000 x 4000 km ellipse over China (and their
    EASE-Grid ``(row, col) (n,2)`` with ``rows_cols``)."""
    g = ease2_global(36)
    x0, dx, _, y0, _, dy = g.transform
    lon0, lat0 = 104.0, 35.0
    cx, cy = transform_points(np.array([lon0]), np.array([lat0]), to_wkt(4326), g.crs_wkt)
    c0 = int((cx[0] - x0) / dx)
    r0 = int((cy[0] - y0) / dy)
    rr, cc = np.mgrid[r0 - 90 : r0 + 90, c0 - 100 : c0 + 100]
    ex = x0 + (cc.ravel() + 0.5) * dx
    ey = y0 + (rr.ravel() + 0.5) * dy
    laea = f"+proj=laea +lat_0={lat0} +lon_0={lon0} +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"
    px, py = transform_points(ex, ey, g.crs_wkt, to_wkt(laea))
    ell = (px / 2.5e6) ** 2 + (py / 2.0e6) ** 2
    order = np.argsort(ell, kind="stable")[:n]
    coords = np.column_stack([px[order], py[order]])
    rng = np.random.default_rng(seed)

    def field(scale_m: float, terms: int = 12) -> np.ndarray:
        f = np.zeros(n)
        for _ in range(terms):
            kx, ky = rng.normal(0, 2 * math.pi / scale_m, 2)
            f += np.cos(kx * coords[:, 0] + ky * coords[:, 1] + rng.uniform(0, 2 * math.pi))
        return f / math.sqrt(terms / 2)

    X = np.column_stack([field(rng.uniform(3e5, 1.5e6)) + 0.5 * rng.normal(size=n) for _ in range(k)])
    X = (X - X.mean(0)) / X.std(0)
    beta = [0.25 + 0.05 * field(1.5e6)] + [0.03 * (0.5 + field(rng.uniform(5e5, 1.5e6))) for _ in range(k)]
    y = beta[0] + sum(b * X[:, j] for j, b in enumerate(beta[1:])) + rng.normal(0, 0.02, n)
    if rows_cols:
        return coords, y, X, np.column_stack([rr.ravel()[order], cc.ravel()[order]])
    return coords, y, X


def super_cells(coords, y, X, rc):
    """2 x 2 blocks of cells averaged (the anomaly-gain step's super-cells)."""
    key = (rc[:, 0] // 2) * 100000 + rc[:, 1] // 2
    _, inv = np.unique(key, return_inverse=True)
    cnt = np.bincount(inv)
    avg = lambda v: np.bincount(inv, weights=v) / cnt  # noqa: E731
    return (np.column_stack([avg(coords[:, 0]), avg(coords[:, 1])]), avg(y),
            np.column_stack([avg(X[:, j]) for j in range(X.shape[1])]))


CPU: dict[str, float] = {}
#: fixed-bandwidth fits timed per side (ours and mgwr alike); the best one counts
FIT_REPEAT = 5


def timed(fn, repeat: int = 1):
    """Best wall time of ``repeat`` calls and the last result (the process CPU time of
    that call in ``CPU["last"]``: on a machine shared with other work the wall time
    includes waiting for a core, the CPU time does not)."""
    best = math.inf
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        c = time.process_time()
        out = fn()
        dt = time.perf_counter() - t
        if dt < best:
            best = dt
            CPU["last"] = time.process_time() - c
    return best, out


def mgwr_patch() -> None:
    """Warm mgwr up outside the timings: compile its numba distance function and make
    one small fit and search (its first fit in a process costs about 2.5 s more than the
    next ones, which would flatter our ratio at 1,000 cells)."""
    import mgwr.kernels
    from mgwr.gwr import GWR
    from mgwr.sel_bw import Sel_BW

    mgwr.kernels.local_cdist(np.zeros((2, 2)), np.zeros((1, 2)), "euclidean")
    coords, y, X = china_cells(200, seed=7)
    GWR(coords, y[:, None], X, 100e3, kernel="gaussian", fixed=True, n_jobs=1).fit()
    Sel_BW(coords, y[:, None], X, kernel="gaussian", fixed=True, n_jobs=1).search()


def mgwr_sampled(coords, y, X, bw: float, n_sample: int, lite: bool, seed: int = 0):
    """mgwr's fit is ``n`` calls of ``GWR._local_fit`` (plus assembling the results): time
    ``n_sample`` of them at random locations; returns (seconds per location, locations,
    their coefficients)."""
    from mgwr.gwr import GWR

    g = GWR(coords, y[:, None], X, bw, kernel="gaussian", fixed=True, n_jobs=1)
    g.fit_params = {"ini_params": None, "tol": 1e-5, "max_iter": 20, "solve": "iwls", "lite": lite}
    idx = np.sort(np.random.default_rng(seed).choice(len(y), size=min(n_sample, len(y)), replace=False))
    t = time.perf_counter()
    betas = np.array([g._local_fit(int(i))[3] for i in idx])
    return (time.perf_counter() - t) / len(idx), idx, betas


def row_for(n: int, mgwr_full_max: int, n_sample: int, mgwr_evals: list[int]) -> dict:
    from mgwr.gwr import GWR
    from mgwr.sel_bw import Sel_BW

    coords, y, X = china_cells(n)
    t_s, (bw, aicc, hist) = timed(lambda: select_bandwidth(coords, y, X, "gaussian"), repeat=3 if n <= 4000 else 2)
    t_x, (bw_x, aicc_x, hist_x) = timed(lambda: select_bandwidth(coords, y, X, "gaussian", eps=0.0, adaptive=False, refine=False))
    fit_bw = bw if math.isfinite(bw) else 1e12
    t_f, fit = timed(lambda: gwr_fit(coords, y, X, fit_bw, "gaussian"), repeat=FIT_REPEAT)
    note = ""
    if n <= mgwr_full_max:
        t_mf, ref = timed(lambda: GWR(coords, y[:, None], X, fit_bw, kernel="gaussian", fixed=True, n_jobs=1).fit(),
                          repeat=FIT_REPEAT)
        coef_diff = float(np.max(np.abs(fit.params - ref.params)))
        sel = Sel_BW(coords, y[:, None], X, kernel="gaussian", fixed=True, n_jobs=1)
        t_ms, bw_m = timed(lambda: sel.search())
        mgwr_evals.append(len(sel.sel_hist))
        evals = len(sel.sel_hist)
    else:  # mgwr sampled: per-location time x n; its search: lite fits x n x its evaluations at smaller n
        per, idx, betas = mgwr_sampled(coords, y, X, fit_bw, n_sample, lite=False)
        t_mf = per * n
        coef_diff = float(np.max(np.abs(fit.params[idx] - betas)))
        per_lite, _, _ = mgwr_sampled(coords, y, X, fit_bw, n_sample, lite=True, seed=1)
        evals = max(mgwr_evals) if mgwr_evals else len(hist)
        t_ms = per_lite * n * evals
        bw_m = math.nan
        note = (f"* mgwr extrapolated: {len(idx)} of its local fits timed ({per * 1e3:.2f} ms each, lite "
                f"{per_lite * 1e3:.2f} ms) x {n} locations; search x {evals} evaluations (its count at "
                f"{max(mgwr_full_max, 0)} cells); coefficients compared at those {len(idx)} locations")
    return {"n": n, "ours_fit_s": t_f, "mgwr_fit_s": t_mf, "fit_ratio": t_mf / t_f,
            "ours_search_s": t_s, "mgwr_search_s": t_ms, "search_ratio": t_ms / t_s, "mgwr_note": note,
            "max_coef_diff": coef_diff, "bw_ours_km": bw / 1e3, "bw_exact_km": bw_x / 1e3,
            "bw_mgwr_km": float(bw_m) / 1e3, "aicc_ours": aicc, "aicc_exact": aicc_x,
            "exact_search_s": t_x, "evals_ours": len(hist), "evals_exact": len(hist_x), "mgwr_evals": evals}


def china_row() -> dict:
    coords, y, X, rc = china_cells(CHINA_CELLS, rows_cols=True)
    t_s, (bw, aicc, hist) = timed(lambda: select_bandwidth(coords, y, X, "gaussian"), repeat=3)
    cpu_s = CPU["last"]
    t_p, (bw_p, aicc_p, _) = timed(lambda: select_bandwidth(coords, y, X, "gaussian", adaptive=False, refine=False))
    t_x, (bw_x, aicc_x, hist_x) = timed(lambda: select_bandwidth(coords, y, X, "gaussian", eps=0.0, adaptive=False, refine=False))
    cpu_x = CPU["last"]
    sc, sy, sX = super_cells(coords, y, X, rc)
    t_sup, (bw_sup, _, _) = timed(lambda: select_bandwidth(sc, sy, sX, "gaussian"), repeat=3)
    t_fit, _ = timed(lambda: gwr_fit(coords, y, X, bw, "gaussian"), repeat=3)
    return {"n": CHINA_CELLS, "k": N_PRED, "ours_search_s": t_s, "exact_search_s": t_x, "ratio": t_x / t_s,
            "bw_ours_km": bw / 1e3, "bw_exact_km": bw_x / 1e3, "aicc_ours": aicc, "aicc_exact": aicc_x,
            "evals_ours": len(hist), "evals_exact": len(hist_x), "plain_search_s": t_p, "bw_plain_km": bw_p / 1e3,
            "aicc_plain": aicc_p, "fit_s": t_fit, "super_cells": len(sy), "super_search_s": t_sup,
            "bw_super_km": bw_sup / 1e3, "ours_search_cpu_s": cpu_s, "exact_search_cpu_s": cpu_x}


def fmt(v, spec: str) -> str:
    return "-" if isinstance(v, float) and not math.isfinite(v) else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--mgwr-full-max", type=int, default=4000,
                    help="largest size at which mgwr's fit and search run in full (above: sampled, extrapolated)")
    ap.add_argument("--mgwr-sample", type=int, default=200, help="mgwr local fits timed above --mgwr-full-max")
    ap.add_argument("--skip-mgwr", action="store_true", help="only the China-sized search against the exact one")
    ap.add_argument("--skip-china", action="store_true", help="only the table against mgwr")
    args = ap.parse_args(argv)
    load0 = os.getloadavg()
    # compile (numba caches) outside the timings
    c, y, X = china_cells(300)
    select_bandwidth(c, y, X)
    select_bandwidth(c, y, X, eps=0.0, adaptive=False, refine=False)
    gwr_fit(c, y, X, 1e5)
    rows: list[dict] = []
    if not args.skip_mgwr:
        mgwr_patch()
        evals: list[int] = []
        for n in sorted(args.sizes):
            rows.append(row_for(n, args.mgwr_full_max, args.mgwr_sample, evals))
            print(f"  done {n} cells", file=sys.stderr)
    ch = {} if args.skip_china else china_row()
    load1 = os.getloadavg()
    hdr = (f"{'n cells':>8} {'ours fit s':>10} {'mgwr fit s':>10} {'ratio':>7} {'ours srch s':>11} {'mgwr srch s':>11} "
           f"{'ratio':>7} {'max|dcoef|':>10} {'bw ours/exact/mgwr km':>24} {'AICc ours/exact':>22}")
    print(hdr)
    for r in rows:
        star = "*" if r["mgwr_note"] else " "
        bws = f"{fmt(r['bw_ours_km'], '.1f')}/{fmt(r['bw_exact_km'], '.1f')}/{fmt(r['bw_mgwr_km'], '.1f')}"
        print(f"{r['n']:>8} {r['ours_fit_s']:>10.4f} {r['mgwr_fit_s']:>9.1f}{star} {r['fit_ratio']:>7.0f} "
              f"{r['ours_search_s']:>11.3f} {r['mgwr_search_s']:>10.1f}{star} {r['search_ratio']:>7.0f} "
              f"{r['max_coef_diff']:>10.1e} {bws:>24} {r['aicc_ours']:>11.3f}/{r['aicc_exact']:.3f}")
    for r in rows:
        if r["mgwr_note"]:
            print(f"  n={r['n']}: {r['mgwr_note']}")
    if ch:
        print_china(ch)
    print(f"load average (1 min) {load0[0]:.2f} before, {load1[0]:.2f} after; numba threads "
          f"{_threads()}; cpus {os.cpu_count()}")
    args.out.mkdir(parents=True, exist_ok=True)
    return write(args.out, rows, ch, load0, load1)


def print_china(ch: dict) -> None:
    print(f"China-sized search ({ch['n']} cells, {ch['k']} predictors): ours {ch['ours_search_s']:.3f} s "
          f"({ch['evals_ours']} AICc evaluations), exact {ch['exact_search_s']:.2f} s ({ch['evals_exact']}); "
          f"{ch['ratio']:.0f}x; bandwidth {fmt(ch['bw_ours_km'], '.2f')} / {fmt(ch['bw_exact_km'], '.2f')} km, "
          f"AICc {ch['aicc_ours']:.4f} / {ch['aicc_exact']:.4f}")
    print(f"  CPU time (all threads): ours {ch['ours_search_cpu_s']:.3f} s, exact {ch['exact_search_cpu_s']:.2f} s")
    print(f"  same golden section without the coarse truncations first: {ch['plain_search_s']:.3f} s "
          f"(bandwidth {fmt(ch['bw_plain_km'], '.2f')} km, AICc {ch['aicc_plain']:.4f}); fit at the chosen "
          f"bandwidth {ch['fit_s']:.3f} s; one anomaly-gain super-cell search ({ch['super_cells']} 2x2 super-cells) "
          f"{ch['super_search_s']:.3f} s (bandwidth {fmt(ch['bw_super_km'], '.1f')} km)")


def write(out: Path, rows: list[dict], ch: dict, load0, load1) -> int:
    meta = {"load_before": load0, "load_after": load1, "numba_threads": _threads(), "cpus": os.cpu_count()}
    (out / "bench_gwr.json").write_text(json.dumps({"rows": rows, "china": ch, "meta": meta}, indent=2))
    with open(out / "bench_gwr.csv", "w", newline="") as fh:
        keys = list(rows[0]) if rows else []
        w = csv.writer(fh)
        if keys:
            w.writerow(keys)
            for r in rows:
                w.writerow([r[k] for k in keys])
        if ch:
            w.writerow([])
            w.writerow(list(ch))
            w.writerow(list(ch.values()))
    return 0


def _threads() -> int:
    try:
        import numba

        return int(numba.get_num_threads())
    except ImportError:  # pragma: no cover
        return 1


if __name__ == "__main__":
    sys.exit(main())

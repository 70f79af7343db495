"""Benchmark of the station validation: speed at scale, the Hawaii real-data table, and the
sample-scene accuracy check.

1. Speed: 2000 stations x 365 days on the sample scene's grid size (360 x 360 km at 1 km,
   Lambert azimuthal equal-area over Tibet): 365 daily product rasters, a second product,
   a flag series and a station CSV of 730 000 rows are generated, then timed: reading the
   CSV, one product, two products + flags (clear/cloudy split), a 3 x 3 window, and
   writing the outputs (CSV, GeoPackage, HTML + PNGs). Each case runs in a fresh child
   process that reports its wall time and peak RSS (``resource.getrusage``).
2. Archive scale (issue 12): 2000 stations x 6205 days (2003-2019, a 684 MB CSV of 11.8
   million rows) with one product and SSM flags on a small grid, in at most 60 s and 2 GB;
   and 2000 x 365 days run with both this code and the code before issue 12 (commit
   ``BASELINE_REF``, from ``git archive``), for the ratios measured in the same run.
3. Hawaii: SMAP L3 V8 AM (36 km EASE-Grid 2.0 time-series cells) vs the ISMN stations,
   with the per-station table (skipped when ../shared/data is absent).
4. Sample scene: truth and coarse input vs the scene's stations (stated noise sd).

    python benchmarks/bench_validation.py --out benchmarks/results [--quick]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import multiprocessing as mp
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "build" / "plugins"))

from ssm_downscaling.core.grid import Grid, to_wkt, transform_points  # noqa: E402
from ssm_downscaling.core.series import write_day  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
START = dt.date(2019, 1, 1)


# ---------------------------------------------------------------------------------------
# synthetic data at scale
# ---------------------------------------------------------------------------------------


def make_data(root: Path, n_stations: int, n_days: int, size_px: int, seed: int = 1) -> dict:
    """Daily rasters on a size_px x size_px 1 km LAEA grid, and a station CSV sampling them."""
    laea = "+proj=laea +lat_0=29.8 +lon_0=89.5 +datum=WGS84 +units=m +no_defs"
    half = size_px * 500.0
    grid = Grid.from_bounds(laea, (-half, -half, half, half), 1000.0)
    rng = np.random.default_rng(seed)
    # a smooth static pattern plus a moving daily signal
    yy, xx = np.mgrid[0:size_px, 0:size_px] / size_px
    base = 0.15 + 0.1 * np.sin(3 * xx) * np.cos(2 * yy)
    rows = rng.integers(0, size_px, n_stations)
    cols = rng.integers(0, size_px, n_stations)
    x, y = grid.xy(rows, cols)
    lon, lat = transform_points(x, y, grid.crs_wkt, to_wkt(4326))
    offsets = rng.normal(0, 0.02, n_stations)
    days = [START + dt.timedelta(days=j) for j in range(n_days)]
    station_vals = np.empty((n_stations, n_days), dtype=np.float64)
    for j, d in enumerate(days):
        field = (base + 0.05 * np.sin(2 * np.pi * (j / 40.0 + xx - yy))).astype(np.float32)
        write_day(root / "product", "ssm", d, field, grid)
        write_day(root / "product2", "ssm_b", d, field + np.float32(rng.normal(0, 0.01)), grid)
        flags = (rng.random(grid.shape) < 0.4).astype(np.uint8) * 2
        write_day(root / "flags", "ssm_flags", d, flags, grid, description="0 coarse observed, 1 seam-filled, "
                  "2 LST gap-filled under cloud, 3 both, 255 no estimate")
        station_vals[:, j] = np.clip(field[rows, cols] + offsets + rng.normal(0, 0.02, n_stations), 0.01, 0.6)
    station_vals[rng.random(station_vals.shape) < 0.05] = np.nan
    path = root / "stations.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["station_id", "lon", "lat", "date", "sm", "depth", "network"])
        for i in range(n_stations):
            sid, lo, la = f"ST{i:05d}", f"{lon[i]:.6f}", f"{lat[i]:.6f}"
            for j, d in enumerate(days):
                v = station_vals[i, j]
                if np.isfinite(v):
                    w.writerow([sid, lo, la, d.isoformat(), f"{v:.4f}", "0.05", "BENCH"])
    return {"product": root / "product", "product2": root / "product2", "flags": root / "flags",
            "stations": path, "grid": f"{size_px} x {size_px} px (1 km LAEA)"}


ARCHIVE_START = dt.date(2003, 1, 1)  # the reference product's archive: 2003-2019, 6205 days


def make_archive_data(root: Path, n_stations: int, n_days: int, size_px: int = 64, seed: int = 2,
                      start: dt.date = ARCHIVE_START) -> dict:
    """The archive-scale case: ``n_days`` daily rasters (product and SSM flags) on a small
    ``size_px`` x ``size_px`` 1 km grid, and a station CSV of ``n_stations`` x ``n_days`` rows
    (about 5 % missing), written with whole-column string operations (12 million rows in
    seconds, not minutes). Station values are the product plus noise, so the expected
    ubRMSD is about 0.02 m3/m3."""
    laea = "+proj=laea +lat_0=35.0 +lon_0=105.0 +datum=WGS84 +units=m +no_defs"
    half = size_px * 500.0
    grid = Grid.from_bounds(laea, (-half, -half, half, half), 1000.0)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size_px, 0:size_px] / size_px
    base = 0.15 + 0.1 * np.sin(3 * xx) * np.cos(2 * yy)
    rows = rng.integers(0, size_px, n_stations)
    cols = rng.integers(0, size_px, n_stations)
    x, y = grid.xy(rows, cols)
    lon, lat = transform_points(x, y, grid.crs_wkt, to_wkt(4326))
    days = [start + dt.timedelta(days=j) for j in range(n_days)]
    at_st = np.empty((n_stations, n_days), dtype=np.float64)
    desc = "0 coarse observed, 1 seam-filled, 2 LST gap-filled under cloud, 3 both, 255 no estimate"
    for j, d in enumerate(days):
        field = (base + 0.05 * np.sin(2 * np.pi * (j / 40.0 + xx - yy))).astype(np.float32)
        write_day(root / "product", "ssm", d, field, grid)
        flags = (rng.random(grid.shape) < 0.4).astype(np.uint8) * 2
        write_day(root / "flags", "ssm_flags", d, flags, grid, description=desc)
        at_st[:, j] = field[rows, cols]
    vals = np.clip(at_st + rng.normal(0, 0.02, n_stations)[:, None] + rng.normal(0, 0.02, at_st.shape), 0.01, 0.6)
    ok = rng.random(vals.shape) >= 0.05
    path = root / "stations.csv"
    date_s = np.array([d.isoformat() for d in days], dtype=object)
    with open(path, "w", newline="") as fh:
        fh.write("station_id,lon,lat,date,sm,depth,network\n")
        for i in range(n_stations):
            head = f"ST{i:05d},{lon[i]:.6f},{lat[i]:.6f},"
            v = np.char.mod("%.4f", vals[i, ok[i]]).astype(object)
            lines = head + date_s[ok[i]] + "," + v + ",0.05,BENCH\n"
            fh.write("".join(lines))
    return {"product": root / "product", "flags": root / "flags", "stations": path,
            "grid": f"{size_px} x {size_px} px (1 km LAEA)"}


# ---------------------------------------------------------------------------------------
# cases, each run in a child process
# ---------------------------------------------------------------------------------------


def _case(name: str, data: dict, out: str, q: mp.Queue) -> None:
    from ssm_downscaling.core.validation import read_station_csv, validate_stations, write_metrics_csv
    from ssm_downscaling.core.validation.report import write_report, write_station_layer

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = ru0.ru_utime + ru0.ru_stime
    t0 = time.perf_counter()
    extra: dict = {}
    if name == "read station CSV":
        st = read_station_csv(data["stations"])
        extra = {"stations": len(st), "values": int(np.isfinite(st.values).sum())}
    else:
        products = {"1 km": data["product"]}
        kw: dict = {}
        if name.startswith("2 products"):
            products["other"] = data["product2"]
            kw["flags"] = data["flags"]
        if "3x3" in name:
            kw["window"] = 3
        res = validate_stations(products, data["stations"], **kw)
        a = res.comparison.average("1 km")
        extra = {"stations": a["n_stations"], "matched_days": a["n_obs"], "mean_urmsd": round(a["urmsd"], 5)}
        if name.endswith("+ outputs"):
            o = Path(out)
            t1 = time.perf_counter()
            write_metrics_csv(res, o / "metrics.csv")
            write_station_layer(res, o / "stations.gpkg")
            write_report(res, o / "report.html", o / "metrics.csv")
            extra["outputs_s"] = round(time.perf_counter() - t1, 2)
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu = ru.ru_utime + ru.ru_stime - cpu0
    peak = ru.ru_maxrss / 1024.0  # MB (Linux: kB)
    q.put({"case": name, "seconds": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb": round(peak, 1), **extra})


def run_case(name: str, data: dict, out: Path) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_case, args=(name, {k: str(v) for k, v in data.items()}, str(out), q))
    p.start()
    res = q.get()
    p.join()
    return res


# ---------------------------------------------------------------------------------------
# archive scale: this code against the implementation before issue 12, in the same run
# ---------------------------------------------------------------------------------------

#: the last commit before the archive-scale work (issue 12): the "before" of the ratios
BASELINE_REF = "0358032"

_ARCHIVE_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from ssm_downscaling.core.validation import validate_stations
t0 = time.perf_counter()
res = validate_stations({"1 km": sys.argv[2] + "/product"}, sys.argv[2] + "/stations.csv",
                        flags=sys.argv[2] + "/flags")
wall = time.perf_counter() - t0
a, c = res.comparison.average("1 km"), res.comparison.average("1 km", "cloudy")
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": round(wall, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
                  "peak_rss_mb": round(ru.ru_maxrss / 1024.0, 1), "stations": a["n_stations"],
                  "matched_days": a["n_obs"], "mean_urmsd": a["urmsd"], "cloudy_urmsd": c["urmsd"]}))
"""


def baseline_package(tmp: Path, ref: str = BASELINE_REF) -> Path | None:
    """The plugin as of ``ref`` (git archive) under ``tmp/<ref>/ssm_downscaling``; its
    parent folder goes on ``sys.path``. None when git or the commit is not available."""
    import subprocess  # nosec B404 - git, with fixed arguments

    dest = tmp / f"baseline_{ref}" / "ssm_downscaling"
    dest.mkdir(parents=True)
    try:
        tar = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True)  # nosec B603 B607
        subprocess.run(["tar", "-x", "-C", str(dest)], input=tar.stdout, check=True)  # nosec B603 B607
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"  (no baseline: git archive {ref} failed: {exc})")
        return None
    return dest.parent


def archive_case(package_parent: Path, data_root: Path) -> dict:
    """Validate one product + flags (clear/cloudy split) against the station CSV, in a fresh
    process importing the plugin from ``package_parent``; wall time, CPU and peak RSS."""
    import subprocess  # nosec B404 - this interpreter, with fixed arguments

    out = subprocess.run([sys.executable, "-c", _ARCHIVE_CHILD, str(package_parent), str(data_root)],  # nosec B603
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def archive(tmp: Path, n_stations: int, n_days: int, baseline_days: int, baseline_ref: str | None,
            size_px: int) -> list[dict]:
    """The archive-scale case (issue 12: 2,000 stations x 6,205 days in at most 60 s and
    2 GB) and a ``baseline_days`` subset, each with this code and (where asked) the code
    of ``baseline_ref`` on the same files."""
    base = baseline_package(tmp, baseline_ref) if baseline_ref else None
    rows = []
    sizes = [baseline_days, n_days] if baseline_days and baseline_days != n_days else [n_days]
    for nd in sizes:
        t0 = time.perf_counter()
        root = tmp / f"archive_{nd}"
        make_archive_data(root, n_stations, nd, size_px)
        gen = time.perf_counter() - t0
        csv_mb = (root / "stations.csv").stat().st_size / 1e6
        now = archive_case(ROOT / "build" / "plugins", root)
        row = {"case": f"{n_stations} x {nd}", "csv_mb": round(csv_mb), "generation_s": round(gen, 1),
               **{f"now_{k}": v for k, v in now.items() if k in ("seconds", "cpu_s", "peak_rss_mb")},
               "stations": now["stations"], "matched_days": now["matched_days"],
               "mean_urmsd": round(now["mean_urmsd"], 5)}
        if base is not None and (nd == baseline_days or baseline_days == 0):
            before = archive_case(base, root)
            row.update({f"before_{k}": v for k, v in before.items() if k in ("seconds", "cpu_s", "peak_rss_mb")})
            row["speedup"] = round(before["seconds"] / now["seconds"], 1)
            row["memory_ratio"] = round(before["peak_rss_mb"] / now["peak_rss_mb"], 1)
            row["same_metrics"] = (before["matched_days"] == now["matched_days"]
                                   and abs(before["mean_urmsd"] - now["mean_urmsd"]) < 1e-12
                                   and abs(before["cloudy_urmsd"] - now["cloudy_urmsd"]) < 1e-12)
        row["meets_60s_2GB"] = now["seconds"] <= 60 and now["peak_rss_mb"] <= 2048 if nd == n_days else ""
        rows.append(row)
        shutil.rmtree(root, ignore_errors=True)
    return rows


# ---------------------------------------------------------------------------------------
# Hawaii and the sample scene
# ---------------------------------------------------------------------------------------


def hawaii(tmp: Path) -> tuple[list[dict], dict]:
    from ssm_downscaling.core.grid import ease2_global
    from ssm_downscaling.core.validation import validate_stations
    from ssm_downscaling.core.validation.timeseries import cells_to_series, grid_around, read_ts_cells

    t0 = time.perf_counter()
    cells = read_ts_cells(sorted((SHARED / "coarse_ts" / "SMAP_V8_AM" / "netcdf").glob("0*.nc")))
    out = tmp / "smap_am"
    cells_to_series(cells, grid_around(cells, ease2_global(36)), out, "smap_am", dt.date(2017, 1, 1),
                    dt.date(2018, 12, 31))
    res = validate_stations({"SMAP L3 AM": out}, SHARED / "ismn" / "HAWAII")
    wall = time.perf_counter() - t0
    t = res.comparison.metrics("SMAP L3 AM")
    rows = []
    for i, sid in enumerate(res.stations.ids):
        rows.append({"station": sid, **{k: (int(t[k][i]) if k == "n_obs" else round(float(t[k][i]), 4))
                                        for k in ("n_obs", "R", "p_R", "BIAS", "RMSD", "urmsd", "R_ci_lower",
                                                  "R_ci_upper", "urmsd_ci_lower", "urmsd_ci_upper")}})
    avg = res.comparison.average("SMAP L3 AM")
    med = res.comparison.average("SMAP L3 AM", how="median")
    return rows, {"seconds": round(wall, 2), "mean": avg, "median": med}


def scene_check(tmp: Path, quick: bool) -> list[dict]:
    try:
        from ssm_downscaling.core.scene import SceneConfig, generate_scene, small_scene
    except ImportError:
        return []
    from ssm_downscaling.core.validation import validate_stations

    out = tmp / "scene"
    t0 = time.perf_counter()
    if quick:
        small_scene(out, days=30, n_stations=20)
    else:
        generate_scene(SceneConfig(), out)
    gen = time.perf_counter() - t0
    sj = json.loads((out / "scene.json").read_text())
    rows = []
    for name, folder in (("truth", out / "truth" / "ssm"), ("coarse input", out / "inputs" / "ssm_coarse")):
        t0 = time.perf_counter()
        res = validate_stations({name: folder}, out / "stations.csv", flags=out / "truth" / "cloud")
        wall = time.perf_counter() - t0
        for s in res.comparison.subsets:
            a = res.comparison.average(name, s)
            m = res.comparison.average(name, s, "median")
            rows.append({"product": name, "subset": s, "stations": a["n_stations"], "matched_days": a["n_obs"],
                         "mean_R": round(a["R"], 3), "mean_bias": round(a["BIAS"], 4), "mean_urmsd": round(a["urmsd"], 4),
                         "median_urmsd": round(m["urmsd"], 4), "stated_station_noise_sd": sj["station_noise_sd"],
                         "scene": f"{sj['width_km']}x{sj['height_km']} km, {sj['days']} days, {sj['n_stations']} st.",
                         "validate_s": round(wall, 2), "scene_generation_s": round(gen, 1)})
    return rows


# ---------------------------------------------------------------------------------------


def _table(rows: list[dict], cols: list[str]) -> str:
    w = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    line = "  ".join(c.ljust(w[c]) for c in cols)
    out = [line, "-" * len(line)]
    for r in rows:
        out.append("  ".join(str(r.get(c, "")).ljust(w[c]) for c in cols))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--stations", type=int, default=2000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--size", type=int, default=360, help="grid size in 1 km pixels (square)")
    ap.add_argument("--quick", action="store_true", help="small sizes (200 stations, 60 days) and the small scene")
    ap.add_argument("--archive-days", type=int, default=6205,
                    help="days of the archive-scale case (0: skip it); 6205 = 2003-2019")
    ap.add_argument("--archive-px", type=int, default=64, help="grid size of the archive-scale case (1 km px)")
    ap.add_argument("--baseline-days", type=int, default=365,
                    help="days of the subset also run with the code before issue 12 (0: the full archive case)")
    ap.add_argument("--baseline-ref", default=BASELINE_REF,
                    help="git commit of the 'before' code ('' for none)")
    ap.add_argument("--archive-only", action="store_true", help="run only the archive-scale section")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="  (warning) %(message)s")
    if args.quick:
        args.stations, args.days = 200, 60
        args.archive_days, args.baseline_days = min(args.archive_days, 730), min(args.baseline_days, 365)
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench_validation_"))
    report: dict = {"machine": {"python": platform.python_version(), "cpus": mp.cpu_count(),
                                "platform": platform.platform(), "load_average": list(os.getloadavg())},
                    "size": {"stations": args.stations, "days": args.days, "grid_px": args.size}}
    try:
        speed: list[dict] = []
        srows: list[dict] = []
        if not args.archive_only:
            t0 = time.perf_counter()
            data = make_data(tmp / "data", args.stations, args.days, args.size)
            gen = time.perf_counter() - t0
            print(f"Generated {args.days} daily rasters x 3 series on {data['grid']} and "
                  f"{args.stations} x {args.days} station values in {gen:.1f} s\n")
            cases = ["read station CSV", "1 product", "1 product, 3x3 window", "2 products + flags",
                     "2 products + flags + outputs"]
            speed = []
            for c in cases:
                out = tmp / "out" / c.replace(" ", "_").replace(",", "").replace("+", "")
                out.mkdir(parents=True)
                r = run_case(c, data, out)
                speed.append(r)
            print(f"Speed: {args.stations} stations x {args.days} days, {data['grid']} (each case in a fresh process; "
                  f"load average before: {os.getloadavg()[0]:.1f} on {mp.cpu_count()} CPUs)")
            print(_table(speed, ["case", "seconds", "cpu_s", "peak_rss_mb", "stations", "matched_days", "mean_urmsd",
                                 "outputs_s"]))
            report["speed"] = speed
            report["data_generation_s"] = round(gen, 1)

        if args.archive_days:
            arows = archive(tmp, args.stations, args.archive_days, args.baseline_days, args.baseline_ref or None,
                            args.archive_px)
            print(f"\nArchive scale (issue 12: at most 60 s and 2 GB for 2000 x 6205): one product + SSM flags "
                  f"(clear/cloudy split) on a {args.archive_px} x {args.archive_px} px grid, a fresh process per run; "
                  f"'before' = commit {args.baseline_ref or '-'}")
            print(_table(arows, ["case", "csv_mb", "now_seconds", "now_cpu_s", "now_peak_rss_mb", "before_seconds",
                                 "before_cpu_s", "before_peak_rss_mb", "speedup", "memory_ratio", "same_metrics",
                                 "stations", "matched_days", "mean_urmsd", "meets_60s_2GB"]))
            report["archive"] = arows

        if not args.archive_only and (SHARED / "ismn" / "HAWAII").is_dir():
            rows, summary = hawaii(tmp)
            print(f"\nHawaii: SMAP L3 V8 AM (36 km EASE-Grid 2.0) vs ISMN, G flags, 0-10 cm, 2017-2018 "
                  f"({summary['seconds']} s incl. netCDF conversion)")
            print(_table(rows, ["station", "n_obs", "R", "p_R", "BIAS", "RMSD", "urmsd", "R_ci_lower", "R_ci_upper",
                                "urmsd_ci_lower", "urmsd_ci_upper"]))
            for k in ("mean", "median"):
                a = summary[k]
                print(f"station {k:6s}: {a['n_stations']} stations, R {a['R']:.3f}, bias {a['BIAS']:+.4f}, "
                      f"RMSD {a['RMSD']:.4f}, ubRMSD {a['urmsd']:.4f} m3/m3")
            report["hawaii"] = {"stations": rows, **summary}

        if not args.archive_only:
            srows = scene_check(tmp, args.quick)
        if srows:
            print("\nSample scene: truth and coarse input vs the scene's stations (split by the truth cloud mask)")
            print(_table(srows, ["product", "subset", "stations", "matched_days", "mean_R", "mean_bias", "mean_urmsd",
                                 "median_urmsd", "stated_station_noise_sd", "scene", "validate_s"]))
            report["scene"] = srows

        name = "bench_validation_archive.json" if args.archive_only else "bench_validation.json"
        (args.out / name).write_text(json.dumps(report, indent=1, default=str))
        if speed:
            with open(args.out / "bench_validation.csv", "w", newline="") as fh:
                keys = sorted({k for r in speed for k in r})
                w = csv.DictWriter(fh, fieldnames=["section", *keys])
                w.writeheader()
                for r in speed:
                    w.writerow({"section": "speed", **r})
        if report.get("archive"):
            with open(args.out / "bench_validation_archive.csv", "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=sorted({k for r in report["archive"] for k in r}))
                w.writeheader()
                w.writerows(report["archive"])
        if "hawaii" in report:
            with open(args.out / "bench_validation_hawaii.csv", "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(report["hawaii"]["stations"][0]))
                w.writeheader()
                w.writerows(report["hawaii"]["stations"])
        if srows:
            with open(args.out / "bench_validation_scene.csv", "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(srows[0]))
                w.writeheader()
                w.writerows(srows)
        print(f"\nResults in {args.out}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

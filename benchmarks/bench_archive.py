"""Archive throughput: one season of a large scene, serial against a Dask LocalCluster
(``make bench-archive``).

The scene (place china, ``--width-km`` x ``--height-km`` at 1 km, ``--days`` days) is
downscaled with the default method (gwr, filter) three times, each in a child process:

* ``serial``: every stage in the driver process (the reference);
* ``dask-N``: the days mapped over a ``LocalCluster`` of ``--workers`` single-threaded
  worker processes (:class:`core.runner.DaskExecutor`); the outputs must be byte-identical
  to the serial run's (checked: SHA-256 of every file);
* ``serial-N/4``: the first quarter of the days, serially: the peak memory of a run of N
  days against one of 4N days (memory must not grow with the run's length).

The LST gap filling of the same season (``anomaly``, the scene's clear-sky LST, background,
DEM and NDVI) is run the same two ways (``lst-serial``, ``lst-dask-N``) in chunks of
``--lst-chunk-days`` days (the tool's default is 128; a season needs shorter chunks to
give every worker one), and must be byte-identical too. ``--only lst`` runs only that.

Reported: wall time, days per hour, peak RSS of the driver and of each worker (MB), the
load of the machine (``uptime``) before and after; the speed-up is the ratio of the two
runs measured here. JSON and CSV go to ``--out`` (bench_archive.json / .csv).

The China archive (5000 x 4000 px, 6205 days) is extrapolated from the measured
throughput per pixel-day; on a cluster the days scale with the workers (the stages between
days are coarse-sized and cheap), see the README's "Running the archive on a cluster".
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "build" / "plugins"))
os.environ.setdefault("NUMBA_CACHE_DIR", str(ROOT / "build" / "numba-cache"))  # compiled kernels shared by the runs

from ssm_downscaling.core.scene import GENERATOR_VERSION, SceneConfig, generate_scene  # noqa: E402

#: the China product: 5000 x 4000 px a day, 2003-2019
CHINA_PX = 5000 * 4000
CHINA_DAYS = 6205


def scene(work: Path, cfg: dict) -> Path:
    folder = work / "scenes" / f"archive-{int(cfg['width_km'])}x{int(cfg['height_km'])}-{cfg['days']}d"
    stamp = folder / "bench_config.json"
    want = json.dumps(dict(cfg, generator_version=GENERATOR_VERSION), sort_keys=True, default=str)
    if stamp.exists() and stamp.read_text() == want:
        return folder
    t = time.perf_counter()
    generate_scene(SceneConfig(**cfg), folder, overwrite=True)
    stamp.write_text(want)
    print(f"  generated {folder.name} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return folder


def lst_child(sc: Path, out: Path, mode: str, workers: int, chunk_days: int) -> None:
    """One gap-filling run in this (child) process; prints a JSON line."""
    from ssm_downscaling.core.grid import Grid
    from ssm_downscaling.core.lst import gapfill_series
    from ssm_downscaling.core.runner import DaskExecutor, SerialExecutor

    ex = SerialExecutor() if mode == "lst-serial" else DaskExecutor(None, workers)
    i = sc / "inputs"
    worker_peaks: list[float] = []
    worker_cpu = 0.0
    t = time.perf_counter()
    with ex:
        s = gapfill_series(i / "lst", i / "lst_background", out / "lst", out / "flags", dem=i / "dem.tif",
                           ndvi=i / "ndvi", executor=ex, chunk_days=chunk_days)
        secs = time.perf_counter() - t
        if mode != "lst-serial":
            worker_peaks = sorted(ex.client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                                / 1024.0).values())
            worker_cpu = float(sum(ex.client.run(lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])).values()))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    g = Grid.from_raster(s.lst_files[0])
    print(json.dumps({"mode": mode, "workers": 1 if mode == "lst-serial" else workers, "days": s.days_processed,
                      "seconds": secs, "cpu_seconds": ru.ru_utime + ru.ru_stime + worker_cpu,
                      "driver_peak_mb": ru.ru_maxrss / 1024.0, "worker_peak_mb": worker_peaks,
                      "width": g.width, "height": g.height, "chunk_days": chunk_days}))


def child(sc: Path, out: Path, mode: str, workers: int, days: int | None) -> None:
    """One run in this (child) process; prints a JSON line."""
    from ssm_downscaling.core.downscale import downscale_series
    from ssm_downscaling.core.runner import DaskExecutor, SerialExecutor
    from ssm_downscaling.core.series import DailySeries

    end = None
    if days:
        end = DailySeries.from_folder(sc / "inputs" / "ssm_coarse").dates[days - 1]
    ex = SerialExecutor() if mode == "serial" else DaskExecutor(None, workers)
    worker_peaks: list[float] = []
    t = time.perf_counter()
    with ex:
        s = downscale_series(sc / "inputs" / "ssm_coarse", sc / "truth" / "lst", sc / "inputs" / "ndvi",
                             sc / "inputs" / "albedo", out / "ssm", out / "flags", out / "unc",
                             dem=sc / "inputs" / "dem.tif", lst_flags=sc / "truth" / "cloud", end=end,
                             coverage_csv=out / "coverage.csv", executor=ex)
        secs = time.perf_counter() - t
        worker_cpu = 0.0
        if mode != "serial":
            peaks = ex.client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
            worker_peaks = sorted(peaks.values())
            cpu = ex.client.run(lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2]))
            worker_cpu = float(sum(cpu.values()))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    driver = ru.ru_maxrss / 1024.0
    g = s.fine
    print(json.dumps({"mode": mode, "workers": 1 if mode == "serial" else workers, "days": len(s.days),
                      "seconds": secs, "cpu_seconds": ru.ru_utime + ru.ru_stime + worker_cpu, "driver_peak_mb": driver, "worker_peak_mb": worker_peaks,
                      "width": g.width, "height": g.height, "coarse_cells": int(s.coarse.size)}))


def digests(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def uptime() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ")[:3].__str__()
    except OSError:  # pragma: no cover
        return "?"


def run_child(sc: Path, out: Path, mode: str, workers: int, days: int | None, lst_chunk_days: int = 0) -> dict:
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, __file__, "--child", mode, "--scene", str(sc), "--run-out", str(out),
           "--workers", str(workers)] + (["--child-days", str(days)] if days else []) + \
        (["--lst-chunk-days", str(lst_chunk_days)] if lst_chunk_days else [])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--work", type=Path, default=ROOT / "build" / "bench")
    ap.add_argument("--width-km", type=float, default=1000.0)
    ap.add_argument("--height-km", type=float, default=800.0)
    ap.add_argument("--days", type=int, default=48, help="days of the season (a multiple of 4)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--lst-chunk-days", type=int, default=12)
    ap.add_argument("--only", choices=("all", "lst", "ssm"), default="all")
    ap.add_argument("--child", choices=("serial", "dask", "lst-serial", "lst-dask"))
    ap.add_argument("--scene", type=Path)
    ap.add_argument("--run-out", type=Path)
    ap.add_argument("--child-days", type=int)
    args = ap.parse_args(argv)
    if args.child in ("lst-serial", "lst-dask"):
        lst_child(args.scene, args.run_out, args.child, args.workers, args.lst_chunk_days)
        return 0
    if args.child:
        child(args.scene, args.run_out, args.child, args.workers, args.child_days)
        return 0

    cfg = dict(place="china", width_km=args.width_km, height_km=args.height_km, days=args.days, spinup_days=5,
               n_stations=0, seed=1, cloudiness=0.5)
    sc = scene(args.work, cfg)
    runs = args.work / "archive-runs"
    args.out.mkdir(parents=True, exist_ok=True)
    lst_ok = True
    if args.only in ("all", "lst"):
        lst_ok = lst_bench(sc, runs, args)
    if args.only == "lst":
        return 0 if lst_ok else 1
    load0 = uptime()
    rows = []
    # the short run first: it also compiles the kernels into the cache for the timed runs
    for mode, days in (("serial", args.days // 4), ("serial", None), ("dask", None)):
        r = run_child(sc, runs / f"{mode}-{days or 'all'}", mode, args.workers, days)
        r["label"] = f"{mode}-{r['workers']}" + (f" ({days} days)" if days else "")
        rows.append(r)
        print(f"  {r['label']}: {r['days']} days in {r['seconds']:.0f} s", file=sys.stderr)
    load1 = uptime()
    same = digests(runs / "serial-all") == digests(runs / "dask-all")
    quarter, serial, dask = rows
    for r in rows:
        r["days_per_hour"] = 3600.0 * r["days"] / r["seconds"]
        r["max_worker_peak_mb"] = max(r["worker_peak_mb"]) if r["worker_peak_mb"] else r["driver_peak_mb"]
    px = serial["width"] * serial["height"]
    speedup = dask["days_per_hour"] / serial["days_per_hour"]
    cpu_ratio = (dask["cpu_seconds"] / dask["days"]) / (serial["cpu_seconds"] / serial["days"])
    # China: per-day work scales with the pixels (reading, the 1 km predictions, writing);
    # a cluster worker has its core to itself, so a worker-second is a CPU-second of the Dask
    # run (driver and scheduler included; on this shared machine wall time is not one)
    worker_hours_per_china_day = (dask["cpu_seconds"] / dask["days"]) * (CHINA_PX / px) / 3600.0
    extrap = {n: CHINA_DAYS * worker_hours_per_china_day / n for n in (32, 128)}
    result = {
        "cpu_ratio": cpu_ratio, "scene": cfg, "pixels_per_day": px, "coarse_cells": serial["coarse_cells"], "load_before": load0,
        "load_after": load1, "runs": rows, "byte_identical": same, "speedup": speedup,
        "memory_n_vs_4n_mb": [quarter["driver_peak_mb"], serial["driver_peak_mb"]],
        "china_worker_hours_per_day": worker_hours_per_china_day,
        "china_archive_wall_hours": {str(k): v for k, v in extrap.items()},
        "cpu_count": os.cpu_count(),
    }
    print(f"\nArchive throughput: {cfg['width_km']:.0f} x {cfg['height_km']:.0f} km ({px / 1e6:.2f} M px/day, "
          f"{serial['coarse_cells']} coarse cells), {args.days} days, gwr; load {load0} -> {load1}")
    print_runs(rows, 22, 0, 1)
    print(f"speed-up dask-{dask['workers']} / serial (wall): {speedup:.2f}x; CPU per day dask / serial: "
          f"{cpu_ratio:.2f} (the parallel overhead; on {dask['workers']} free cores the speed-up would be about "
          f"{dask['workers'] / cpu_ratio:.1f}x); outputs byte-identical: {same}")
    print(f"peak memory, serial: {quarter['days']} days {quarter['driver_peak_mb']:.0f} MB, {serial['days']} days "
          f"{serial['driver_peak_mb']:.0f} MB")
    print(f"China 2003-2019 ({CHINA_DAYS} days x {CHINA_PX / 1e6:.0f} M px), extrapolated per pixel: "
          f"{worker_hours_per_china_day * 3600:.0f} worker-s per day; wall time "
          + ", ".join(f"{n} workers {h:.1f} h" for n, h in extrap.items()))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_archive.json").write_text(json.dumps(result, indent=2, default=str))
    with open(args.out / "bench_archive.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["run", "workers", "days", "seconds", "cpu_seconds", "days_per_hour", "driver_peak_mb",
                    "max_worker_peak_mb"])
        for r in rows:
            w.writerow([r["label"], r["workers"], r["days"], f"{r['seconds']:.1f}", f"{r['cpu_seconds']:.1f}",
                        f"{r['days_per_hour']:.1f}",
                        f"{r['driver_peak_mb']:.0f}", f"{r['max_worker_peak_mb']:.0f}"])
    print(f"written: {args.out / 'bench_archive.json'}, {args.out / 'bench_archive.csv'}")
    return 0 if same and lst_ok else 1


def print_runs(rows: list[dict], width: int, secs_digits: int, cpu_digits: int) -> None:
    """The table of runs: wall time, days per hour, CPU per day, peak memory."""
    print(f"{'run':<{width}} | {'days':>5} | {'wall s':>7} | {'days/h':>7} | {'CPU s/day':>9} | {'driver MB':>9} | "
          f"{'worker MB':>13}")
    for r in rows:
        wk = ", ".join(f"{m:.0f}" for m in r["worker_peak_mb"]) or "-"
        print(f"{r['label']:<{width}} | {r['days']:>5} | {r['seconds']:>7.{secs_digits}f} | "
              f"{r['days_per_hour']:>7.0f} | {r['cpu_seconds'] / r['days']:>9.{cpu_digits}f} | "
              f"{r['driver_peak_mb']:>9.0f} | {wk:>13}")


def lst_bench(sc: Path, runs: Path, args: argparse.Namespace) -> bool:
    """The season's LST gap filling, serial against Dask; prints and writes its table."""
    load0 = uptime()
    rows = []
    for mode in ("lst-serial", "lst-dask"):
        r = run_child(sc, runs / mode, mode, args.workers, None, args.lst_chunk_days)
        r["label"] = f"{mode}-{r['workers']}"
        r["days_per_hour"] = 3600.0 * r["days"] / r["seconds"]
        rows.append(r)
        print(f"  {r['label']}: {r['days']} days in {r['seconds']:.0f} s", file=sys.stderr)
    load1 = uptime()
    same = digests(runs / "lst-serial") == digests(runs / "lst-dask")
    serial, dask = rows
    px = serial["width"] * serial["height"]
    cpu_day = dask["cpu_seconds"] / dask["days"]
    china_ws = cpu_day * CHINA_PX / px
    print(f"\nLST gap filling (anomaly), {px / 1e6:.2f} M px/day, {serial['days']} days in chunks of "
          f"{args.lst_chunk_days}; load {load0} -> {load1}")
    print_runs(rows, 16, 1, 2)
    print(f"speed-up (wall) {dask['days_per_hour'] / serial['days_per_hour']:.2f}x; outputs byte-identical: {same}; "
          f"China extrapolated per pixel: {china_ws:.0f} worker-s per day, 2003-2019 on 32 workers "
          f"{CHINA_DAYS * china_ws / 32 / 3600:.1f} h")
    (args.out / "bench_archive_lst.json").write_text(json.dumps(
        {"runs": rows, "byte_identical": same, "load_before": load0, "load_after": load1,
         "china_worker_seconds_per_day": china_ws, "chunk_days": args.lst_chunk_days}, indent=2, default=str))
    return same


if __name__ == "__main__":
    sys.exit(main())

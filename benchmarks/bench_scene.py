"""Benchmark of the sample-scene generator: time and peak memory.

Cases (each in a fresh child process that first warms the numba cache with a tiny scene,
then times the real one and reports wall time, CPU time and peak RSS from
``resource.getrusage``):

- ``small``: the small test scene (72 x 72 km, 10 days) other tests use;
- ``default``: the embedded default (tibet, 360 x 360 km, 92 days from 2019-06-01,
  30 spin-up days, 30 stations);
- ``china_day``: one China-sized day (place china, 5000 x 4000 km, 3 spin-up days),
  written block by block.

    python benchmarks/bench_scene.py --out benchmarks/results [--cases small,default,china_day]
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "build" / "plugins"))

CASES = {
    "small": dict(place="tibet", width_km=72, height_km=72, days=10, n_stations=5, spinup_days=10, seed=1),
    "default": dict(),
    "china_day": dict(place="china", width_km=5000, height_km=4000, days=1, spinup_days=3, n_stations=30, seed=1),
}


def _child(name: str, kw: dict, work: str, q: mp.Queue) -> None:
    try:
        from ssm_downscaling.core.scene import SceneConfig, generate_scene, small_scene

        rss_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        warm = Path(work) / "warmup"
        small_scene(warm, days=1, spinup_days=1, n_stations=1)  # numba kernels from the cache
        shutil.rmtree(warm)
        cfg = SceneConfig(**kw)
        out = Path(work) / name
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        info = generate_scene(cfg, out)
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        files = [p for p in out.rglob("*") if p.is_file()]
        s = info.scene
        q.put({
            "case": name,
            "place": s["place"],
            "size_km": f"{s['width_km']}x{s['height_km']}",
            "days": s["days"],
            "spinup_days": s["spinup_days"],
            "padded_px": f"{info.grids.padded.width}x{info.grids.padded.height}",
            "full_array_mb": round(info.grids.padded.size * 4 / 2**20, 1),
            "wall_s": round(wall, 2),
            "cpu_s": round((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime), 2),
            "peak_rss_mb": round(ru1.ru_maxrss / 1024, 1),
            "rss_after_import_mb": round(rss_import / 1024, 1),
            "files": len(files),
            "output_mb": round(sum(p.stat().st_size for p in files) / 2**20, 1),
            "mean_cloud_cover": s["mean_cloud_cover"],
            "seam_days": len(s["seam_days"]),
            "mean_rain_mm_day": s["mean_rain_mm_day"],
            "land_fraction": s["land_fraction"],
        })
    except BaseException as exc:  # report, do not hang the parent
        q.put({"case": name, "error": f"{type(exc).__name__}: {exc}"})


def run_case(name: str, work: Path) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(name, CASES[name], str(work), q))
    p.start()
    res = q.get()
    p.join()
    shutil.rmtree(work / name, ignore_errors=True)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary folder)")
    args = ap.parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(cases) - set(CASES)
    if unknown:
        ap.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_scene_"))
    work.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()
    rows = []
    try:
        for c in cases:
            rows.append(run_case(c, work))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg()
    keys = ["case", "place", "size_km", "days", "spinup_days", "padded_px", "wall_s", "cpu_s", "peak_rss_mb",
            "full_array_mb", "files", "output_mb", "mean_cloud_cover", "seam_days"]
    print(f"Sample-scene generator ({mp.cpu_count()} CPUs; load average {load0[0]:.1f} before, {load1[0]:.1f} after)")
    widths = {k: max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in keys}
    print("  ".join(k.rjust(widths[k]) for k in keys))
    for r in rows:
        if "error" in r:
            print(f"{r['case']}: FAILED {r['error']}")
            continue
        print("  ".join(str(r.get(k, "")).rjust(widths[k]) for k in keys))
    report = {
        "machine": {"python": platform.python_version(), "cpus": mp.cpu_count(), "platform": platform.platform(),
                    "load_average_before": list(load0), "load_average_after": list(load1)},
        "cases": rows,
    }
    (args.out / "bench_scene.json").write_text(json.dumps(report, indent=1))
    with open(args.out / "bench_scene.csv", "w", newline="") as fh:
        allkeys = list(dict.fromkeys(k for r in rows for k in r))
        w = csv.DictWriter(fh, fieldnames=allkeys)
        w.writeheader()
        w.writerows(rows)
    print(f"written: {args.out / 'bench_scene.json'}, {args.out / 'bench_scene.csv'}")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())

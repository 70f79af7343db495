#!/usr/bin/env python3
"""The real sample files in ../shared/data imported the way a user would, through
``qgis_process.bin run ssm:importproduct``, then the chain where the inputs allow, and a map.

    python scripts/demo_real.py --out build/demo-real [--data ../shared/data]

What the samples allow: they are excerpts from different places and dates (LPRM
2015-04-01, ESA CCI 2016-06-06/07, MOD11A1 h11v05 2021-08-15 and h14v09 2019-11-01,
MOD13A2 h11v06 2021-08-13, ERA5 2010-01-01, ERA-Interim 2012-06-01), so no day has
coarse soil moisture, LST, NDVI and a background together: ``ssm:downscalessm`` cannot
run on them. The demo imports every product onto a 1 km Conus Albers grid (EPSG:5070) around the clear part
of MODIS tile h11v05 (Illinois), makes the night LST and the day-night difference, fills
that day's LST gaps with the ``spatial`` method (which needs no background), imports the
LPRM and ESA CCI fields onto a 5 km Asia North Albers grid (ESRI:102025), and draws the map ``map.png``.
Run by ``make demo-real``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: named equal-area CRSs (QGIS shows their authority id; a custom CRS reads "Unknown CRS"):
#: NAD83 / Conus Albers for Illinois, Asia North Albers Equal Area (as the sample scene) for China
ALBERS_ILLINOIS = "EPSG:5070"
ALBERS_CHINA = "ESRI:102025"


def run(alg: str, params: dict[str, object]) -> dict:
    """``qgis_process.bin --json run alg -- k=v ...``; returns the results (exits with its log on failure)."""
    env = dict(os.environ)
    env.pop("QGIS_CUSTOM_CONFIG_PATH", None)
    args = ["qgis_process.bin", "--json", "run", alg, "--"]
    for k, v in params.items():
        for item in v if isinstance(v, list) else [v]:
            args.append(f"{k}={item}")
    t0 = time.perf_counter()
    r = subprocess.run(args, capture_output=True, text=True, env=env)
    out = r.stdout[r.stdout.find("{") :] if "{" in r.stdout else ""
    if r.returncode != 0 or not out:
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
        raise SystemExit(f"qgis_process failed ({r.returncode}): {alg}")
    res = json.loads(out).get("results", {})
    print(f"  {alg} {params.get('PRODUCT', '')}: {res.get('DAYS', '')} day(s), "
          f"{res.get('FILES_SKIPPED', 0)} skipped, {time.perf_counter() - t0:.1f} s")
    return res


def reference(path: Path, crs: str, bounds: tuple[float, float, float, float], res: float) -> Path:
    sys.path.insert(0, str(ROOT / "build" / "plugins"))
    import numpy as np

    from ssm_downscaling.core.grid import Grid
    from ssm_downscaling.core.series import write_raster

    g = Grid.from_bounds(crs, bounds, res)
    write_raster(path, np.zeros(g.shape, dtype=np.float32), g)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "demo-real")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    a = ap.parse_args()
    data, out = a.data, a.out
    if not data.is_dir():
        raise SystemExit(f"real sample data not found at {data}")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    # 300 x 200 km around 39.3 N 89 W; 5000 x 4400 km over China
    ref = reference(out / "grid_1km_illinois.tif", ALBERS_ILLINOIS, (447_000, 1_730_000, 747_000, 1_930_000), 1000.0)
    china = reference(out / "grid_5km_china.tif", ALBERS_CHINA, (-1_800_000, -1_400_000, 3_200_000, 3_000_000), 5000.0)
    print(f"Importing the real samples from {data} with ssm:importproduct")
    modis = data / "modis"
    common = {"GRID_MODE": "reference", "REFERENCE": ref, "INPUT_FOLDER": modis}
    lst = run("ssm:importproduct", {**common, "PRODUCT": "mod11_lst", "PATTERN": "MOD11A1*.hdf", "OUTPUT": out / "lst"})
    night = run("ssm:importproduct", {**common, "PRODUCT": "mod11_lst", "PATTERN": "MOD11A1*.hdf", "LST_NIGHT": 1,
                                      "OUTPUT": out / "lst_night"})
    diff = run("ssm:importproduct", {**common, "PRODUCT": "mod11_lst_diff", "PATTERN": "MOD11A1*.hdf",
                                     "OUTPUT": out / "lst_diff"})
    ndvi = run("ssm:importproduct", {"PRODUCT": "mod13_ndvi", "INPUT_FOLDER": modis, "PATTERN": "MOD13A2*.hdf",
                                     "GRID_MODE": "native", "OUTPUT": out / "ndvi_native"})
    lprm_il = run("ssm:importproduct", {"PRODUCT": "lprm", "INPUT_FOLDER": data / "amsr2", "GRID_MODE": "reference",
                                        "REFERENCE": ref, "OUTPUT": out / "ssm_lprm_1km"})
    cci_il = run("ssm:importproduct", {"PRODUCT": "esa_cci", "INPUT_FOLDER": data / "esa_cci", "GRID_MODE": "reference",
                                       "REFERENCE": ref, "OUTPUT": out / "ssm_cci_1km"})
    lprm = run("ssm:importproduct", {"PRODUCT": "lprm", "INPUT_FOLDER": data / "amsr2", "GRID_MODE": "reference",
                                     "REFERENCE": china, "OUTPUT": out / "ssm_lprm_china"})
    cci = run("ssm:importproduct", {"PRODUCT": "esa_cci", "INPUT_FOLDER": data / "esa_cci", "GRID_MODE": "reference",
                                    "REFERENCE": china, "OUTPUT": out / "ssm_cci_china"})
    bg = run("ssm:importproduct", {"PRODUCT": "reanalysis", "INPUT_FILES": data / "reanalysis" / "era_interim_tibet.nc",
                                   "REANALYSIS_VARIABLE": "t2m", "GRID_MODE": "native", "OUTPUT": out / "t2m_background"})
    print("The chain where the inputs allow: gap-filling the 1 km LST of 2021-08-15 (spatial, no background)")
    filled = run("ssm:gapfilllst", {"INPUT_LST": out / "lst", "METHOD": "spatial", "IDW_RADIUS_KM": 50,
                                    "START_DATE": "2021-08-15", "END_DATE": "2021-08-15",
                                    "OUTPUT_LST": out / "lst_filled", "OUTPUT_FLAGS": out / "lst_flags"})
    summary = {"lst": lst, "lst_night": night, "lst_diff": diff, "ndvi": ndvi, "lprm_1km": lprm_il, "cci_1km": cci_il,
               "lprm_china": lprm, "cci_china": cci, "background": bg, "lst_filled": filled}
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    draw_map(out)
    print(f"Outputs in {out}; map: {out / 'map.png'}")
    print("Not run: ssm:downscalessm and ssm:validatestations - the samples share no day of coarse SSM, LST and NDVI.")


def draw_map(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ssm_downscaling.core.series import DailySeries

    def first(folder: str, day: str | None = None) -> np.ndarray:
        s = DailySeries.from_folder(out / folder)
        import datetime as dt

        return s.read(dt.date.fromisoformat(day) if day else s.start, resampling="nearest")

    panels = [
        ("ssm_lprm_china", None, "AMSR2 LPRM C1 2015-04-01 (m3/m3), ESRI:102025 5 km", "YlGnBu", (0, 0.6)),
        ("ssm_cci_china", None, "ESA CCI passive 2016-06-06 (m3/m3), ESRI:102025 5 km", "YlGnBu", (0, 0.6)),
        ("lst", "2021-08-15", "MOD11A1 day LST 2021-08-15 (K), 1 km EPSG:5070", "inferno", (290, 315)),
        ("lst_diff", "2021-08-15", "day - night LST (K), 1 km", "RdBu_r", (0, 20)),
        ("lst_filled", "2021-08-15", "gap-filled day LST (spatial) (K), 1 km", "inferno", (290, 315)),
        ("ssm_cci_1km", "2016-06-06", "ESA CCI 2016-06-06 on the 1 km grid (m3/m3)", "YlGnBu", (0, 0.5)),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
    for ax, (folder, day, title, cmap, lim) in zip(axes.ravel(), panels):
        try:
            arr = first(folder, day)
        except Exception as exc:  # a missing panel must not hide the others
            ax.set_title(f"{title}\n({exc})", fontsize=8)
            continue
        im = ax.imshow(arr, cmap=cmap, vmin=lim[0], vmax=lim[1], interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle("make demo-real: the real sample files imported by ssm:importproduct", fontsize=10)
    fig.tight_layout()
    fig.savefig(out / "map.png", dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    main()

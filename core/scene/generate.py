"""Generate a sample scene: simulate the world day by day and write the folders a user has.

    from ssm_downscaling.core.scene import SceneConfig, generate_scene
    info = generate_scene(SceneConfig(place="tibet", days=92), "out/")
    info.ssm_coarse, info.lst, info.truth_ssm, ...   # folders (also info.paths[...])

Layout under the output folder::

    scene.json                          every parameter, the grids, the stated errors
    stations.csv                        station_id,lon,lat,date,sm,depth,network
    inputs/dem.tif                      1 km elevation (m): the 1 km target grid
    inputs/ssm_coarse/ssm_coarse_YYYY-MM-DD.tif      coarse SSM (m3/m3; 36 km EASE-Grid 2.0 or 0.25 degree)
    inputs/lst/lst_YYYY-MM-DD.tif                    clear-sky 1 km LST (K)
    inputs/lst_background/lst_background_YYYY-MM-DD.tif   0.1 degree all-weather LST (K)
    inputs/ndvi/ndvi_YYYY-MM-DD.tif                  16-day composites (MOD13 calendar)
    inputs/albedo/albedo_YYYY-MM-DD.tif              daily albedo
    truth/ssm/ssm_YYYY-MM-DD.tif, truth/lst/lst_YYYY-MM-DD.tif, truth/cloud/cloud_YYYY-MM-DD.tif

The simulation runs on a padded 1 km grid (every coarse cell touching the scene is whole)
in row blocks; the state (soil water of two layers, NDVI, smoothed albedo, the running
NDVI composite) and the static fields (elevation, lakes) are the only full-size arrays,
so memory stays bounded for China-sized scenes. Small scenes are one block and cache
their per-block static fields (soil, slopes, cell indices) across days.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GridError
from ..grid import Grid
from ..membership import Membership
from ..progress import CancelFn, Progress, ProgressFn
from ..series import FLAG_NODATA, RasterWriter, creation_options, day_filename, write_day, write_raster
from . import energy, sensors, vegetation
from .config import GENERATOR_VERSION, SceneConfig, SceneError
from .geometry import SceneGrids, geo_lattice, scene_grids
from .noise import from_lattice
from .places import PLACES, Place
from .soil import SoilParams, soil_block
from .stations import MAX_SLOPE, STATION_DEPTH_M, missing_days, place_stations, station_values, write_stations_csv
from .terrain import BlockTerrain, Terrain, block_terrain, build_terrain
from .waterbalance import water_balance_step
from .weather import DayWeather, air_temperature, climate_wetness, cloud_field, doy, make_day, rain_block

log = logging.getLogger(__name__)

#: sub-folders and file prefixes of the daily series (key -> (folder, prefix))
LAYOUT: dict[str, tuple[str, str]] = {
    "ssm_coarse": ("inputs/ssm_coarse", "ssm_coarse"),
    "lst": ("inputs/lst", "lst"),
    "lst_background": ("inputs/lst_background", "lst_background"),
    "ndvi": ("inputs/ndvi", "ndvi"),
    "albedo": ("inputs/albedo", "albedo"),
    "truth_ssm": ("truth/ssm", "ssm"),
    "truth_lst": ("truth/lst", "lst"),
    "truth_cloud": ("truth/cloud", "cloud"),
}
DEM_FILE = "inputs/dem.tif"
STATIONS_FILE = "stations.csv"
SCENE_JSON = "scene.json"
CLOUD_LEGEND = "cloud at the 10:30 overpass: 1 cloud, 0 clear, 255 no data"
#: e-folding time (days) of the albedo product's temporal smoothing (like a multi-day BRDF fit)
ALBEDO_TAU_DAYS = 4.0
#: scenes up to this many padded pixels keep per-block static fields between days
CACHE_STATICS_MAX_PIXELS = 4_000_000
#: scenes up to this many padded pixels are simulated in one block; larger ones in row
#: blocks of at most ``SceneConfig.block_rows`` rows and about this many pixels
BLOCK_PIXELS = 1_000_000


@dataclass
class SceneInfo:
    """What :func:`generate_scene` wrote: folders, files, grids and the scene.json dict."""

    out_dir: Path
    config: SceneConfig
    grids: SceneGrids
    scene: dict[str, Any]
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def fine_grid(self) -> Grid:
        return self.grids.fine

    @property
    def coarse_grid(self) -> Grid:
        return self.grids.coarse

    @property
    def background_grid(self) -> Grid:
        return self.grids.background

    @property
    def dates(self) -> list[dt.date]:
        """The written days."""
        return [self.config.start + dt.timedelta(days=i) for i in range(self.config.days)]

    # folders and files (also in ``paths``) ----------------------------------------------
    @property
    def ssm_coarse(self) -> Path:
        return self.paths["ssm_coarse"]

    @property
    def lst(self) -> Path:
        return self.paths["lst"]

    @property
    def lst_background(self) -> Path:
        return self.paths["lst_background"]

    @property
    def ndvi(self) -> Path:
        return self.paths["ndvi"]

    @property
    def albedo(self) -> Path:
        return self.paths["albedo"]

    @property
    def dem(self) -> Path:
        return self.paths["dem"]

    @property
    def stations(self) -> Path:
        return self.paths["stations"]

    @property
    def truth_ssm(self) -> Path:
        return self.paths["truth_ssm"]

    @property
    def truth_lst(self) -> Path:
        return self.paths["truth_lst"]

    @property
    def truth_cloud(self) -> Path:
        return self.paths["truth_cloud"]

    @property
    def scene_json(self) -> Path:
        return self.paths["scene_json"]


def scene_paths(out_dir: str | Path) -> dict[str, Path]:
    """Every folder and file of a scene under ``out_dir`` (keys as :data:`LAYOUT`, plus
    dem, stations, scene_json, inputs, truth)."""
    out = Path(out_dir)
    p = {k: out / v[0] for k, v in LAYOUT.items()}
    p.update(dem=out / DEM_FILE, stations=out / STATIONS_FILE, scene_json=out / SCENE_JSON,
             inputs=out / "inputs", truth=out / "truth")
    return p


def small_scene(out_dir: str | Path, **overrides: Any) -> SceneInfo:
    """A small, fast scene for tests (72 x 72 km over Tibet, 10 days, 5 stations, 10 days
    of spin-up: well under a second or two once numba kernels are cached)."""
    kw: dict[str, Any] = dict(place="tibet", width_km=72, height_km=72, days=10, n_stations=5, spinup_days=10, seed=1)
    kw.update(overrides)
    progress = kw.pop("progress", None)
    is_cancelled = kw.pop("is_cancelled", None)
    return generate_scene(SceneConfig(**kw), out_dir, progress=progress, is_cancelled=is_cancelled)


def composite_start(day: dt.date) -> dt.date:
    """Start of the MOD13 16-day composite period holding ``day`` (DOY 1, 17, 33, ...)."""
    d = doy(day)
    return dt.date(day.year, 1, 1) + dt.timedelta(days=16 * ((d - 1) // 16))


# ---------------------------------------------------------------------------------------


@dataclass
class _Block:
    """Static fields of one row block of the padded grid."""

    r0: int
    nr: int
    x0: float
    y0: float
    #: terrain slope towards ground east and north (m/m; the grid's axes may be scaled and
    #: rotated against them) and the smoothed slope along the grid's axes (for rain)
    dzdx: np.ndarray
    dzdy: np.ndarray
    dzdx_s: np.ndarray
    dzdy_s: np.ndarray
    slope: np.ndarray
    sky_view: np.ndarray
    lat: np.ndarray
    sin_lat: np.ndarray
    cos_lat: np.ndarray
    pressure: np.ndarray
    soil: SoilParams
    peak: np.ndarray
    coarse_idx: np.ndarray
    bg_idx: np.ndarray


class _World:
    """The simulation state and static fields on the padded grid."""

    def __init__(self, cfg: SceneConfig, place: Place, grids: SceneGrids, terrain: Terrain):
        self.cfg = cfg
        self.place = place
        self.g = grids
        self.elev = terrain.elevation
        self.water = terrain.water
        shape = grids.padded.shape
        self.th1 = np.zeros(shape, dtype=np.float32)
        self.th2 = np.zeros(shape, dtype=np.float32)
        self.ndvi = np.zeros(shape, dtype=np.float32)
        self.comp = np.full(shape, np.nan, dtype=np.float32)
        self.alb = np.zeros(shape, dtype=np.float32)
        self._geo = _geo_lattice(grids)
        w = grids.padded.width
        if grids.padded.size <= BLOCK_PIXELS:
            self.blocks = [(0, grids.padded.height)]
        else:
            rows = max(8, min(cfg.block_rows, BLOCK_PIXELS // w))
            self.blocks = _aligned_blocks(grids.padded.height, grids.row0, rows)
        self.cache = grids.padded.size <= CACHE_STATICS_MAX_PIXELS
        self._cached: dict[int, _Block] = {}
        self._indices: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        xmin = grids.x0_km - 0.5
        ymax = grids.y0_km + 0.5
        self.bounds_km = (xmin, ymax - grids.padded.height, xmin + grids.padded.width, ymax)
        self.initialised = False

    def block(self, r0: int, nr: int) -> _Block:
        if r0 in self._cached:
            return self._cached[r0]
        g = self.g
        w = g.padded.width
        x0 = g.x0_km
        y0 = g.y0_km - r0
        bt = block_terrain(self.elev, r0, nr)
        dzde, dzdn, lat = self.ground_slopes(r0, nr, bt)
        slope = np.hypot(dzde, dzdn).astype(np.float32)
        elev = self.elev[r0 : r0 + nr]
        wet = climate_wetness(self.place, x0, y0, nr, w)
        soil = soil_block(self.place.sand_mean, self.cfg.seed, x0, y0, nr, w, slope, bt.relative, wet)
        peak = vegetation.ndvi_peak(self.place, self.cfg.seed, x0, y0, nr, w, elev, slope, soil.hollow, soil.sand,
                                    wet)
        coarse_idx, bg_idx = self.cell_indices(r0, nr)
        rad = np.radians(lat)
        b = _Block(
            r0, nr, x0, y0, dzde, dzdn, bt.dzdx_smooth, bt.dzdy_smooth, slope,
            (0.5 * (1.0 + 1.0 / np.sqrt(1.0 + slope * slope))).astype(np.float32),
            lat, np.sin(rad).astype(np.float32), np.cos(rad).astype(np.float32), energy.pressure_kpa(elev), soil,
            peak, coarse_idx, bg_idx,
        )
        if self.cache:
            self._cached[r0] = b
        return b

    def ground_slopes(self, r0: int, nr: int, bt: BlockTerrain) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Terrain slope towards ground east and north (m/m) and latitude (deg) of the
        pixels of a block (float32), from the grid derivatives ``bt``."""
        lx0, ly0, fields = self._geo
        x0, y0, w = self.g.x0_km, self.g.y0_km - r0, self.g.padded.width
        lat, xe, xn, ye, yn = (from_lattice(f, lx0, ly0, GEO_STEP_KM, x0, y0, 1.0, nr, w) for f in fields)
        dzde = (bt.dzdx * xe + bt.dzdy * ye).astype(np.float32)
        dzdn = (bt.dzdx * xn + bt.dzdy * yn).astype(np.float32)
        return dzde, dzdn, lat

    def cell_indices(self, r0: int, nr: int) -> tuple[np.ndarray, np.ndarray]:
        """Coarse and background cell index of each pixel of a block (-1 outside), computed
        once (GDAL warps are the slow part of a block) and kept compact (int16 when the
        cell count allows)."""
        if r0 not in self._indices:
            sub = self.g.padded.window(r0, 0, nr, self.g.padded.width)
            pair = []
            for coarse in (self.g.coarse, self.g.background):
                idx = _cell_index(sub, coarse)
                pair.append(idx.astype(np.int16) if coarse.size < 32767 else idx)
            self._indices[r0] = (pair[0], pair[1])
        return self._indices[r0]

    def initialise(self, b: _Block, day: dt.date) -> None:
        """Plausible state on the first simulated day (spin-up then forgets most of it)."""
        s = slice(b.r0, b.r0 + b.nr)
        soil = b.soil
        self.th2[s] = soil.wilting + 0.55 * (soil.field_capacity - soil.wilting)
        self.th1[s] = soil.wilting + 0.4 * (soil.field_capacity - soil.wilting)
        green = vegetation.phenology(self.place, doy(day))
        self.ndvi[s] = vegetation.ndvi_target(b.peak, green, self.th2[s], soil.wilting, soil.field_capacity)
        fv = vegetation.cover_fraction(self.ndvi[s])
        self.alb[s] = vegetation.albedo(fv, soil.dry_albedo, self.th1[s], soil.porosity, soil.residual)


def _aligned_blocks(height: int, scene_row0: int, rows: int) -> list[tuple[int, int]]:
    """Row blocks of the padded grid whose boundaries fall on multiples of ``rows`` rows
    of the scene (so streamed tiles of the scene files are complete when flushed)."""
    cuts = list(range(scene_row0 % rows or rows, height, rows))
    edges = [0, *[c for c in cuts if 0 < c < height], height]
    return [(a, b - a) for a, b in zip(edges[:-1], edges[1:])]


#: spacing (km) of the lattice of latitude and grid-to-ground derivatives (smooth fields:
#: bilinear interpolation to 1 km errs by < 5e-5 degrees of latitude)
GEO_STEP_KM = 8.0


def _geo_lattice(g: SceneGrids) -> tuple[float, float, list[np.ndarray]]:
    """:func:`~.geometry.geo_lattice` of the padded grid, float32 for interpolation."""
    lx0, ly0, fields = geo_lattice(g, GEO_STEP_KM)
    if not all(np.isfinite(f).all() for f in fields):
        raise SceneError("The scene extends beyond where its CRS is defined; choose a smaller scene")
    return lx0, ly0, [f.astype(np.float32) for f in fields]


def _scan_statics(world: _World) -> tuple[np.ndarray, np.ndarray]:
    """Steep pixels of the scene (bool, scene shape; no stations there) and the coarse
    cells that scene pixels fall in (bool, coarse shape), block by block."""
    g = world.g
    sr, sc = g.scene_rows, g.scene_cols
    steep = np.zeros(g.fine.shape, dtype=bool)
    touch = np.zeros(g.coarse.size, dtype=bool)
    for r0, nr in world.blocks:
        lo, hi = max(r0, sr.start), min(r0 + nr, sr.stop)
        if hi <= lo:
            continue
        if world.cache:
            b = world.block(r0, nr)  # kept for the simulation anyway
            slope, idx = b.slope, b.coarse_idx
        else:
            bt = block_terrain(world.elev, r0, nr)
            dzde, dzdn, _ = world.ground_slopes(r0, nr, bt)
            slope = np.hypot(dzde, dzdn)
            idx = world.cell_indices(r0, nr)[0]
        steep[lo - sr.start : hi - sr.start] = slope[lo - r0 : hi - r0, sc] >= MAX_SLOPE
        cells = idx[lo - r0 : hi - r0, sc]
        touch[np.unique(cells[cells >= 0])] = True
    return steep, touch.reshape(g.coarse.shape)


def _cell_index(fine: Grid, coarse: Grid) -> np.ndarray:
    """Flat index of the coarse cell holding each fine pixel centre (-1 outside)."""
    try:
        return Membership.build(fine, coarse).index
    except GridError:  # no overlap at all
        return np.full(fine.shape, -1, dtype=np.int32)


@dataclass
class _DayOut:
    """Per-day accumulators and writers."""

    coarse_sum: np.ndarray
    coarse_land: np.ndarray
    coarse_all: np.ndarray
    bg_sum: np.ndarray
    bg_count: np.ndarray
    cloud_pixels: int = 0
    scene_pixels: int = 0
    rain_sum: float = 0.0
    land_pixels: int = 0


def generate_scene(
    config: SceneConfig,
    out_dir: str | Path,
    progress: ProgressFn | None = None,
    is_cancelled: CancelFn | None = None,
    overwrite: bool = False,
) -> SceneInfo:
    """Simulate the scene of ``config`` and write it under ``out_dir``.

    ``out_dir`` must not exist or be empty (``overwrite=True`` first deletes the files of a
    previous scene there: only the scene's own folders and files). A cancelled or failed
    run removes what it wrote. Returns a :class:`SceneInfo`.
    """
    cfg = config.validated()
    place = PLACES[cfg.place]
    out = Path(out_dir)
    paths = scene_paths(out)
    created_dirs = [p for p in (out, paths["inputs"], paths["truth"], *(paths[k] for k in LAYOUT)) if not p.exists()]
    _prepare_folder(out, paths, overwrite)
    prog = Progress(cfg.spinup_days + cfg.days + 3, progress, is_cancelled)
    written: list[Path] = []
    try:
        info = _run(cfg, place, out, paths, prog, written)
    except BaseException:
        _cleanup(written, created_dirs)
        raise
    prog.finish()
    return info


def _prepare_folder(out: Path, paths: dict[str, Path], overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise SceneError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise SceneError(f"{out}: the folder is not empty; choose an empty or new folder for the sample scene")
        if not paths["scene_json"].exists():
            raise SceneError(f"{out}: not empty and holds no scene.json; refusing to overwrite a folder that is not a "
                             "sample scene")
        for key, (_, prefix) in LAYOUT.items():
            folder = paths[key]
            if folder.is_dir():
                for f in folder.glob(f"{prefix}_*.tif"):
                    f.unlink()
        for key in ("dem", "stations", "scene_json"):
            if paths[key].exists():
                paths[key].unlink()
    out.mkdir(parents=True, exist_ok=True)
    for key in LAYOUT:
        paths[key].mkdir(parents=True, exist_ok=True)


def _cleanup(written: list[Path], created_dirs: list[Path]) -> None:
    for p in written:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    for d in sorted(created_dirs, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            d.rmdir()  # only when empty


def _run(cfg: SceneConfig, place: Place, out: Path, paths: dict[str, Path], prog: Progress,
         written: list[Path]) -> SceneInfo:
    g = scene_grids(cfg.lon, cfg.lat, cfg.width, cfg.height, cfg.coarse_grid)
    log.info("Sample scene %s: %d x %d km at %.2fE %.2fN, %d days from %s (%d spin-up days), padded grid %d x %d",
             cfg.place, cfg.width, cfg.height, cfg.lon, cfg.lat, cfg.days, cfg.start, cfg.spinup_days,
             g.padded.width, g.padded.height)
    terrain = build_terrain(place, g.padded, g.x0_km, g.y0_km, cfg.seed)
    world = _World(cfg, place, g, terrain)
    sr, sc = g.scene_rows, g.scene_cols
    dem = terrain.elevation[sr, sc]
    written.append(write_raster(paths["dem"], dem, g.fine, description="elevation (m)"))
    prog.advance()

    # stations (on the scene grid) and the coarse cells touching the scene -----------------
    steep, touch = _scan_statics(world)
    stations = place_stations(cfg.n_stations, g.fine, terrain.water[sr, sc], steep, cfg.seed, cfg.station_offset_sd)
    del steep
    st_rows = stations.rows + g.row0
    st_cols = stations.cols + g.col0
    days = [cfg.start + dt.timedelta(days=i) for i in range(cfg.days)]
    st_values = np.full((len(stations), cfg.days), np.nan)
    st_missing = missing_days(len(stations), cfg.days, cfg.station_missing_fraction, cfg.seed)

    # static helpers of the sensors -------------------------------------------------------
    coarse_whole = sensors.whole_cells(g.coarse, g.padded)
    bg_whole = sensors.whole_cells(g.background, g.padded)
    bias_field = sensors.background_bias_field(g.background, g.padded.crs_wkt, cfg.seed, cfg.background_bias_field_sd_k)
    prog.advance()

    sim_days = [cfg.first_day + dt.timedelta(days=i) for i in range(cfg.spinup_days + cfg.days)]
    writers = _Writers(g.fine, paths, written, stream=len(world.blocks) > 1)
    try:
        summary = _day_loop(world, writers, sim_days, stations, st_rows, st_cols, st_values, touch, coarse_whole,
                            bg_whole, bias_field, paths, written, prog)
    finally:
        writers.close()
    seam_days, cloud_cover, rain_mean, ndvi_dates, coarse_valid = summary

    written.append(write_stations_csv(paths["stations"], stations, days, st_values, st_missing))
    scene = _scene_dict(cfg, place, g, terrain, stations, seam_days, cloud_cover, rain_mean, ndvi_dates,
                        coarse_valid, st_missing)
    written.append(_write_json(paths["scene_json"], scene))
    prog.advance()
    log.info("Sample scene written to %s: mean cloud cover %.2f, %d seam days, %d NDVI composites", out,
             scene["mean_cloud_cover"], len(seam_days), len(ndvi_dates))
    return SceneInfo(out, cfg, g, scene, paths)


def _day_loop(world: _World, writers: _Writers, sim_days: list[dt.date], stations, st_rows: np.ndarray,
              st_cols: np.ndarray, st_values: np.ndarray, touch: np.ndarray, coarse_whole: np.ndarray,
              bg_whole: np.ndarray, bias_field: np.ndarray, paths: dict[str, Path], written: list[Path],
              prog: Progress) -> tuple[list[str], list[float], list[float], list[str], list[float]]:
    """Simulate every day; write the coarse products, NDVI composites and station values."""
    cfg, place, g = world.cfg, world.place, world.g
    first_composite = composite_start(cfg.start)
    seam_days: list[str] = []
    cloud_cover: list[float] = []
    rain_mean: list[float] = []
    ndvi_dates: list[str] = []
    coarse_valid: list[float] = []
    for i, day in enumerate(sim_days):
        write = day >= cfg.start
        wx = make_day(day, place, cfg.seed, cfg.cloudiness, world.bounds_km)
        if composite_start(day) == day or i == 0:
            world.comp.fill(np.nan)
        acc = _simulate_day(world, wx, day, write, writers, prog)
        j = (day - cfg.start).days
        if write:
            seam = sensors.seam_mask(g.coarse, day, cfg.seed)
            if (seam & touch).any():
                seam_days.append(day.isoformat())
            shp = g.coarse.shape
            ssm_c = sensors.coarse_ssm(acc.coarse_sum.reshape(shp), acc.coarse_land.reshape(shp),
                                       acc.coarse_all.reshape(shp), coarse_whole, seam,
                                       cfg.coarse_ssm_bias, cfg.coarse_ssm_noise_sd, cfg.coarse_min_land_fraction,
                                       sensors.day_seed_rng(cfg.seed, "coarse-ssm", day))
            coarse_valid.append(float(np.isfinite(ssm_c[touch]).mean()))
            written.append(write_day(paths["ssm_coarse"], LAYOUT["ssm_coarse"][1], day, ssm_c, g.coarse,
                                     description="surface soil moisture (m3/m3), coarse retrieval"))
            bg = sensors.background_lst(acc.bg_sum.reshape(g.background.shape), acc.bg_count.reshape(g.background.shape),
                                        bg_whole, cfg.background_smoothing_cells, cfg.background_bias_k, bias_field,
                                        cfg.background_noise_sd_k, sensors.day_seed_rng(cfg.seed, "background", day))
            written.append(write_day(paths["lst_background"], LAYOUT["lst_background"][1], day, bg, g.background,
                                     description="all-weather background skin temperature (K), 0.1 degree"))
            if len(stations):
                truth = world.th1[st_rows, st_cols].astype(np.float64)
                st_values[:, j] = station_values(truth, stations.offsets, cfg.station_noise_sd,
                                                 sensors.day_seed_rng(cfg.seed, "station-noise", day))
            cloud_cover.append(acc.cloud_pixels / max(acc.scene_pixels, 1))
            rain_mean.append(acc.rain_sum / max(acc.land_pixels, 1))
        # NDVI composite closes at the end of its 16-day period (or of the simulation)
        last = i == len(sim_days) - 1
        if last or composite_start(day + dt.timedelta(days=1)) != composite_start(day):
            cstart = composite_start(day)
            if cstart >= first_composite:
                written.append(_write_composite(world, cstart, paths))
                ndvi_dates.append(cstart.isoformat())
        prog.advance()

    return seam_days, cloud_cover, rain_mean, ndvi_dates, coarse_valid


#: daily 1 km outputs: key -> (dtype, band description)
DAILY_OUTPUTS: dict[str, tuple[str, str]] = {
    "truth_ssm": ("float32", "true 0-5 cm soil moisture (m3/m3)"),
    "truth_lst": ("float32", "true all-weather land surface temperature at 10:30 (K)"),
    "truth_cloud": ("uint8", CLOUD_LEGEND),
    "lst": ("float32", "clear-sky daytime land surface temperature at 10:30 (K)"),
    "albedo": ("float32", "broadband surface albedo"),
}


class _Writers:
    """Writes the daily 1 km outputs of the scene grid.

    Scenes held in one block buffer a day and write each file whole in a small thread
    pool (GDAL compresses without the GIL, so this overlaps with the next day's
    simulation); larger scenes stream row blocks into open :class:`RasterWriter` s.
    Either way every file appears under its final name only when complete.
    """

    def __init__(self, grid: Grid, paths: dict[str, Path], written: list[Path], stream: bool):
        self.grid = grid
        self.paths = paths
        self.written = written
        self.stream = stream
        self.pool = None if stream else ThreadPoolExecutor(max_workers=2, thread_name_prefix="scene-writer")
        self.pending: list[Future] = []
        self.stack: contextlib.ExitStack | None = None
        self.open: dict[str, RasterWriter] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.day: dt.date | None = None
        opts = creation_options(np.dtype("float32"), grid)
        self.tile_rows = int(next(o.split("=")[1] for o in opts if o.startswith("BLOCKYSIZE=")))

    def begin(self, day: dt.date) -> None:
        self.day = day
        if self.stream:
            self.stack = contextlib.ExitStack()
            for key, (dtype, desc) in DAILY_OUTPUTS.items():
                path = self._path(key, day)
                self.open[key] = self.stack.enter_context(RasterWriter(path, self.grid, dtype, date=day,
                                                                       description=desc))
                self.written.append(path)
        else:
            self.buffers = {k: np.empty(self.grid.shape, dtype=v[0]) for k, v in DAILY_OUTPUTS.items()}

    def put(self, key: str, block: np.ndarray, row0: int) -> None:
        if self.stream:
            self.open[key].write(block, row0)
        else:
            self.buffers[key][row0 : row0 + block.shape[0]] = block

    def rows_done(self, rows: int) -> None:
        """Streaming: once the first ``rows`` scene rows are written and they end on a tile
        boundary, push the finished tiles out of GDAL's block cache (bounded memory)."""
        if self.stream and self.open and rows % self.tile_rows == 0:
            for wr in self.open.values():
                if wr.ds is not None:
                    wr.ds.FlushCache()

    def end(self, failed: bool = False) -> None:
        if self.stream:
            stack, self.stack, self.open = self.stack, None, {}
            if stack is not None:
                if failed:
                    stack.__exit__(RuntimeError, RuntimeError("failed"), None)
                else:
                    stack.close()
            return
        if failed:
            return
        if self.pool is None or self.day is None:
            raise RuntimeError("end() called before begin() opened a day")
        self._drain(limit=6)
        for key, (dtype, desc) in DAILY_OUTPUTS.items():
            path = self._path(key, self.day)
            self.written.append(path)
            self.pending.append(self.pool.submit(write_raster, path, self.buffers[key], self.grid, dtype=dtype,
                                                 date=self.day, description=desc))
        self.buffers = {}

    def _path(self, key: str, day: dt.date) -> Path:
        return Path(self.paths[key]) / day_filename(LAYOUT[key][1], day)

    def _drain(self, limit: int = 0) -> None:
        while len(self.pending) > limit:
            self.pending.pop(0).result()

    def close(self) -> None:
        """Wait for every pending file (re-raising the first error)."""
        try:
            self._drain()
        finally:
            if self.pool is not None:
                for f in self.pending:
                    f.cancel()
                self.pool.shutdown(wait=True)
                self.pool = None


def _simulate_day(world: _World, wx: DayWeather, day: dt.date, write: bool, writers: _Writers,
                  prog: Progress) -> _DayOut:
    place, g = world.place, world.g
    d = doy(day)
    green = vegetation.phenology(place, d)
    acc = _DayOut(np.zeros(g.coarse.size), np.zeros(g.coarse.size), np.zeros(g.coarse.size),
                  np.zeros(g.background.size), np.zeros(g.background.size))
    sr, sc = g.scene_rows, g.scene_cols
    if write:
        writers.begin(day)
    try:
        for r0, nr in world.blocks:
            prog.check()
            b = world.block(r0, nr)
            if not world.initialised:
                world.initialise(b, day)
            _simulate_block(world, b, wx, d, green, day, writers if write else None, acc, sr, sc)
            if write:
                writers.rows_done(min(r0 + nr, sr.stop) - sr.start)
        world.initialised = True
    except BaseException:
        if write:
            writers.end(failed=True)
        raise
    if write:
        writers.end()
    return acc


def _simulate_block(world: _World, b: _Block, wx: DayWeather, d: int, green: float, day: dt.date,
                    writers: _Writers | None, acc: _DayOut, sr: slice, sc: slice) -> None:
    cfg, place, g = world.cfg, world.place, world.g
    s = slice(b.r0, b.r0 + b.nr)
    w = g.padded.width
    soil = b.soil
    elev = world.elev[s]
    water = world.water[s]
    th1 = world.th1[s]
    th2 = world.th2[s]
    ndvi = world.ndvi[s]

    # weather ---------------------------------------------------------------------------
    rain = rain_block(wx, place, b.x0, b.y0, b.nr, w, b.dzdx_s, b.dzdy_s)
    cf = cloud_field(wx, b.x0, b.y0, 1.0, b.nr, w)
    excess = cf - np.float32(wx.cloud_threshold) if math.isfinite(wx.cloud_threshold) else None
    if excess is None:
        cloudy = np.full(cf.shape, wx.cloud_threshold < 0)
        daily_cloud = cloudy.astype(np.float32)
        thickness = cloudy.astype(np.float32)
    else:
        cloudy = excess > 0
        daily_cloud = (1.0 / (1.0 + np.exp(-np.clip(excess / 0.5, -30, 30)))).astype(np.float32)
        thickness = np.clip(excess / 1.5, 0.0, 1.0).astype(np.float32)
    ta = air_temperature(wx, place, b.x0, b.y0, b.nr, w, elev, b.lat, g.lat, daily_cloud)

    # radiation and potential evaporation -------------------------------------------------
    fv = vegetation.cover_fraction(ndvi)
    alb = vegetation.albedo(fv, soil.dry_albedo, th1, soil.porosity, soil.residual)
    alb = np.where(water, np.float32(energy.WATER_ALBEDO), alb)
    cosz, cos_inc, pet = energy.radiation_and_pet(d, b.lat, b.sin_lat, b.cos_lat, b.dzdx, b.dzdy, elev, b.pressure,
                                                  daily_cloud, alb, ta)

    # soil water -------------------------------------------------------------------------
    et = water_balance_step(th1, th2, rain, pet, fv, soil.porosity, soil.field_capacity, soil.wilting, soil.residual,
                            soil.drain_surface, soil.drain_root, soil.runoff_coef, water)
    ef = np.clip(et / np.maximum(pet, 0.2), 0.0, 1.0)

    alb = vegetation.albedo(fv, soil.dry_albedo, th1, soil.porosity, soil.residual)

    # vegetation and the albedo product's smoothing ---------------------------------------
    target = vegetation.ndvi_target(b.peak, green, th2, soil.wilting, soil.field_capacity)
    vegetation.relax_ndvi(ndvi, target)
    world.alb[s] += (alb - world.alb[s]) / np.float32(ALBEDO_TAU_DAYS)
    rng = sensors.day_seed_rng(cfg.seed, "optical", day, b.r0)
    obs_ndvi = ndvi + rng.standard_normal(ndvi.shape, dtype=np.float32) * np.float32(cfg.ndvi_noise_sd)
    comp = world.comp[s]
    np.fmax(comp, np.where(cloudy | water, np.nan, obs_ndvi), out=comp)
    if writers is None:  # spin-up: no surface temperature, no outputs
        return

    # surface temperature at the overpass -------------------------------------------------
    lst = energy.overpass_lst(d, cosz, cos_inc, b.pressure, b.sky_view, cloudy, thickness, alb, ef, fv, ta,
                              wx.wind_ms)
    lst_all = np.where(water, ta + np.float32(energy.LAKE_DT_K), lst)
    # aggregation over the padded grid -------------------------------------------------------
    ci = b.coarse_idx.ravel()
    ok = ci >= 0
    land = ok & ~water.ravel()
    n = acc.coarse_sum.size
    acc.coarse_all += np.bincount(ci[ok], minlength=n)
    acc.coarse_land += np.bincount(ci[land], minlength=n)
    acc.coarse_sum += np.bincount(ci[land], weights=th1.ravel()[land].astype(np.float64), minlength=n)
    bi = b.bg_idx.ravel()
    ok = bi >= 0
    n = acc.bg_sum.size
    acc.bg_count += np.bincount(bi[ok], minlength=n)
    acc.bg_sum += np.bincount(bi[ok], weights=lst_all.ravel()[ok].astype(np.float64), minlength=n)

    # the scene crop of this block -------------------------------------------------------------
    lo, hi = max(b.r0, sr.start), min(b.r0 + b.nr, sr.stop)
    if hi <= lo:
        return
    rs_ = slice(lo - b.r0, hi - b.r0)
    row = lo - sr.start
    wat = water[rs_, sc]
    cl = cloudy[rs_, sc]
    truth_lst = np.where(wat, np.nan, lst[rs_, sc])
    writers.put("truth_ssm", np.where(wat, np.nan, th1[rs_, sc]), row)
    writers.put("truth_lst", truth_lst, row)
    writers.put("truth_cloud", cl.astype(np.uint8), row)
    obs = sensors.observe_lst(lst[rs_, sc], cl, wat, cfg.lst_noise_sd_k, rng)
    writers.put("lst", obs, row)
    alb_obs = world.alb[s][rs_, sc] + rng.standard_normal(cl.shape, dtype=np.float32) * np.float32(cfg.albedo_noise_sd)
    writers.put("albedo", np.where(wat, np.nan, np.clip(alb_obs, 0.02, 0.9)), row)
    acc.cloud_pixels += int(cl.sum())
    acc.scene_pixels += cl.size
    acc.rain_sum += float(rain[rs_, sc][~wat].sum())
    acc.land_pixels += int((~wat).sum())


def _write_composite(world: _World, cstart: dt.date, paths: dict[str, Path]) -> Path:
    g = world.g
    sr, sc = g.scene_rows, g.scene_cols
    folder, prefix = LAYOUT["ndvi"]
    path = Path(paths["ndvi"]) / day_filename(prefix, cstart)
    desc = "NDVI, maximum-value composite of clear-sky days of the 16-day period"
    with RasterWriter(path, g.fine, "float32", date=cstart, description=desc) as wr:
        for r0, nr in g.fine.row_blocks(1024):
            rows = slice(sr.start + r0, sr.start + r0 + nr)
            comp = world.comp[rows, sc]
            val = np.where(np.isnan(comp), world.ndvi[rows, sc], comp)
            wr.write(np.where(world.water[rows, sc], np.nan, np.clip(val, -0.2, 0.95)), r0)
    return path


def _grid_dict(grid: Grid) -> dict[str, Any]:
    return {"crs_wkt": grid.crs_wkt, "transform": list(grid.transform), "width": grid.width, "height": grid.height}


def _scene_dict(cfg: SceneConfig, place: Place, g: SceneGrids, terrain: Terrain, stations, seam_days: list[str],
                cloud_cover: list[float], rain_mean: list[float], ndvi_dates: list[str], coarse_valid: list[float],
                st_missing: np.ndarray) -> dict[str, Any]:
    water = terrain.water[g.scene_rows, g.scene_cols]
    d = cfg.as_dict()
    return {
        "generator": "ssm_downscaling.core.scene",
        "generator_version": GENERATOR_VERSION,
        "seed": cfg.seed,
        "place": cfg.place,
        "place_description": place.description,
        "centre_lon": cfg.lon,
        "centre_lat": cfg.lat,
        "width_km": cfg.width,
        "height_km": cfg.height,
        "days": cfg.days,
        "start_date": cfg.start.isoformat(),
        "end_date": cfg.end.isoformat(),
        "spinup_days": cfg.spinup_days,
        "cloudiness": cfg.cloudiness,
        "n_stations": cfg.n_stations,
        "config": d,
        "fine_grid": _grid_dict(g.fine),
        "padded_grid": _grid_dict(g.padded),
        "padded_offset": {"row": g.row0, "col": g.col0},
        "coarse_grid": _grid_dict(g.coarse),
        "background_grid": _grid_dict(g.background),
        "coarse_ssm_bias": cfg.coarse_ssm_bias,
        "coarse_ssm_noise_sd": cfg.coarse_ssm_noise_sd,
        "coarse_min_land_fraction": cfg.coarse_min_land_fraction,
        "station_noise_sd": cfg.station_noise_sd,
        "station_offset_sd": cfg.station_offset_sd,
        "station_depth_m": STATION_DEPTH_M,
        "station_missing_days": int(st_missing.sum()),
        "lst_noise_sd_k": cfg.lst_noise_sd_k,
        "background_bias_k": cfg.background_bias_k,
        "background_bias_field_sd_k": cfg.background_bias_field_sd_k,
        "background_noise_sd_k": cfg.background_noise_sd_k,
        "background_smoothing_cells": cfg.background_smoothing_cells,
        "albedo_noise_sd": cfg.albedo_noise_sd,
        "albedo_smoothing_days": ALBEDO_TAU_DAYS,
        "ndvi_noise_sd": cfg.ndvi_noise_sd,
        "ndvi_composite": "maximum of clear-sky daily NDVI over the simulated days of each MOD13 16-day period "
                          "(DOY 1, 17, 33, ...); the value of the last day where no day was clear",
        "ndvi_dates": ndvi_dates,
        "land_fraction": round(float(1.0 - water.mean()), 6),
        "mean_cloud_cover": round(float(np.mean(cloud_cover)) if cloud_cover else 0.0, 6),
        "cloud_cover_by_day": [round(c, 4) for c in cloud_cover],
        "mean_rain_mm_day": round(float(np.mean(rain_mean)) if rain_mean else 0.0, 4),
        "coarse_valid_fraction_by_day": [round(c, 4) for c in coarse_valid],
        "seam_days": seam_days,
        "seam_model": {"period_km": sensors.SEAM_PERIOD_KM, "repeat_days": sensors.SEAM_REPEAT_DAYS,
                       "tilt_deg": sensors.SEAM_TILT_DEG, "width_km": list(sensors.SEAM_WIDTH_KM)},
        "terrain": {"source": terrain.source, "filled_fraction": round(terrain.filled_fraction, 6)},
        "climate": place.as_dict(),
        "stations": stations.as_list(),
        "units": {"ssm": "m3/m3", "lst": "K", "ndvi": "1", "albedo": "1", "dem": "m", "cloud": "1 cloud, 0 clear, 255 nodata"},
        "nodata": {"float": -9999.0, "cloud": FLAG_NODATA},
        "layout": {**{k: v[0] for k, v in LAYOUT.items()}, "dem": DEM_FILE, "stations": STATIONS_FILE},
        "prefixes": {k: v[1] for k, v in LAYOUT.items()},
    }


def _write_json(path: Path, data: dict[str, Any]) -> Path:
    tmp = path.with_name(f".{path.name}.part{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=False)
        fh.write("\n")
    os.replace(tmp, path)
    return path

"""ssm:samplescene - create the synthetic sample scene (inputs a user would have + truth)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputFolder,
    QgsProcessingOutputNumber,
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterDateTime,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QDate

from ..core.scene import PLACES, SceneConfig, SceneError
from .base import SsmAlgorithm, enum_key, enum_parameter
from .compat import DATETIME_DATE, FLAG_ADVANCED, NUMBER_DOUBLE, NUMBER_INTEGER
from .outputs import (
    load_layer_on_completion,
    load_series_on_completion,
    run_group_name,
    stations_csv_layer,
    write_sidecars,
)

PLACE_NAMES = list(PLACES)
#: labels of the places in the dialog (the keys are used in scripts and models)
PLACE_TITLES = {
    "tibet": "Tibetan Plateau (real terrain)",
    "loess": "Loess Plateau",
    "northeast": "Northeast China plain",
    "south": "South China hills",
    "china": "China-sized world",
}

HELP = """Creates a synthetic but physically reasoned sample scene with a known 1 km truth, written as the folders a real user would have, to try, test and benchmark the other tools (LST gap filling, soil-moisture downscaling, validation against stations).

<b>The world</b>: a 1 km grid in the Asia North Albers equal-area projection (ESRI:102025; a Lambert azimuthal equal-area projection centred on the place outside Asia) centred on the PLACE. Terrain: real SRTM30 elevation for "tibet" (a subset shipped with the plugin; areas outside it are filled with the nearest elevation plus fractal detail), fractal terrain with the place's mean elevation and relief elsewhere; flat areas of the real DEM become lakes. Rain comes from moving storms (more in the monsoon season, enhanced on slopes facing the flow), clouds at the 10:30 overpass follow the storms, and a two-layer daily soil water balance (infiltration, runoff, drainage, soil evaporation, transpiration) over soil textures and vegetation gives the true 0-5 cm soil moisture. The land-surface temperature comes from a surface energy balance (sun on slopes, albedo, clouds, evaporation, vegetation). The simulation starts 30 days before START_DATE (spin-up, not written).

<b>Simulated observations</b>: coarse soil moisture on the 36 km EASE-Grid 2.0 (EPSG:6933): the mean of the truth over each whole cell plus a constant bias (0.02 m³/m³) and noise (sd 0.02), missing in swath seams (tilted bands that appear on some days) and over mostly-water cells; clear-sky 1 km LST (truth plus noise sd 0.7 K, no data under cloud); an all-weather 0.1 degree background LST (the truth averaged, smoothed and biased, like ERA5-Land skin temperature); 16-day NDVI maximum-value composites on the MODIS calendar (dated day of year 1, 17, 33, ...); daily albedo; station soil moisture at 5 cm (the truth at the station's pixel plus a per-station offset and daily noise, a few days missing). Every stated error is in scene.json.

<b>Parameters</b>: PLACE (tibet, loess, northeast, south, china), SIZE_KM (width; HEIGHT_KM, advanced, 0 = square), DAYS from START_DATE, CLOUDINESS (0 = always clear, 1 = always overcast; the mean cloud cover of the scene follows it, varying from day to day), STATIONS (number of stations), SEED (the same seed gives the same files, byte for byte). The default (360 x 360 km over the Tibetan Plateau, 92 days from 1 June 2019) takes some seconds; a China-sized single day (place china, 5000 km x 4000 km) is written block by block with bounded memory.

<b>Output folder</b> (must be new or empty):
inputs/ssm_coarse/ssm_coarse_YYYY-MM-DD.tif (m³/m³), inputs/lst/lst_YYYY-MM-DD.tif (K), inputs/lst_background/lst_background_YYYY-MM-DD.tif (K), inputs/ndvi/ndvi_YYYY-MM-DD.tif, inputs/albedo/albedo_YYYY-MM-DD.tif, inputs/dem.tif (m; its grid is the 1 km target grid), stations.csv (station_id, lon, lat, date, sm, depth, network), and the truth: truth/ssm/ (m³/m³), truth/lst/ (all-weather LST at the overpass, K), truth/cloud/ (1 cloud, 0 clear); scene.json holds every parameter, the grids and the stated errors. Float rasters are tiled DEFLATE GeoTIFFs with nodata -9999 (water in the land products) and the date in the DATE metadata item. The sub-folders are also separate outputs, so a model can chain them into the other tools. The DEM and the first day's true soil moisture are loaded when the run finishes; a cancelled run removes what it wrote."""


class SampleSceneAlgorithm(SsmAlgorithm):
    NAME = "samplescene"
    DISPLAY_NAME = "Create sample scene"
    GROUP = "1 - Sample data"
    GROUP_ID = "sampledata"
    TAGS = "sample,synthetic,test data,scene,soil moisture,LST,NDVI,stations,Tibet,benchmark"
    HELP = HELP

    PLACE = "PLACE"
    SIZE_KM = "SIZE_KM"
    HEIGHT_KM = "HEIGHT_KM"
    DAYS = "DAYS"
    START_DATE = "START_DATE"
    CLOUDINESS = "CLOUDINESS"
    STATIONS = "STATIONS"
    SEED = "SEED"
    SPINUP_DAYS = "SPINUP_DAYS"
    OUTPUT = "OUTPUT"
    #: folder outputs: output name -> key of core.scene.generate.scene_paths
    FOLDER_OUTPUTS = {
        "SSM_COARSE": ("ssm_coarse", "Coarse soil moisture folder"),
        "LST": ("lst", "Clear-sky LST folder"),
        "LST_BACKGROUND": ("lst_background", "Background LST folder"),
        "NDVI": ("ndvi", "NDVI folder"),
        "ALBEDO": ("albedo", "Albedo folder"),
        "TRUTH_SSM": ("truth_ssm", "True soil moisture folder"),
        "TRUTH_LST": ("truth_lst", "True all-weather LST folder"),
        "TRUTH_CLOUD": ("truth_cloud", "True cloud mask folder"),
    }

    def initAlgorithm(self, config=None) -> None:
        self.addParameter(enum_parameter(self.PLACE, self.tr("Place"),
                                         {k: self.tr(PLACE_TITLES.get(k, k)) for k in PLACE_NAMES}, "tibet"))
        self.addParameter(QgsProcessingParameterNumber(self.SIZE_KM, self.tr("Size (km, width)"),
                                                       NUMBER_INTEGER, 360, minValue=1,
                                                       maxValue=20000))
        self.addParameter(QgsProcessingParameterNumber(self.DAYS, self.tr("Number of days"),
                                                       NUMBER_INTEGER, 92, minValue=1,
                                                       maxValue=3660))
        self.addParameter(QgsProcessingParameterDateTime(self.START_DATE, self.tr("Start date"),
                                                         type=DATETIME_DATE,
                                                         defaultValue=QDate(2019, 6, 1)))
        self.addParameter(QgsProcessingParameterNumber(self.CLOUDINESS, self.tr("Cloudiness (0-1)"),
                                                       NUMBER_DOUBLE, 0.5, minValue=0.0,
                                                       maxValue=1.0))
        self.addParameter(QgsProcessingParameterNumber(self.STATIONS, self.tr("Number of stations"),
                                                       NUMBER_INTEGER, 30, minValue=0))
        self.addParameter(QgsProcessingParameterNumber(self.SEED, self.tr("Random seed"),
                                                       NUMBER_INTEGER, 1, minValue=0))
        advanced = [
            QgsProcessingParameterNumber(self.HEIGHT_KM, self.tr("Height (km; 0 = same as the width)"),
                                         NUMBER_INTEGER, 0, minValue=0, maxValue=20000),
            QgsProcessingParameterNumber(self.SPINUP_DAYS, self.tr("Spin-up days before the start (not written)"),
                                         NUMBER_INTEGER, 30, minValue=0, maxValue=3660),
        ]
        for p in advanced:
            p.setFlags(p.flags() | FLAG_ADVANCED)
            self.addParameter(p)
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT, self.tr("Output folder")))
        for name, (_, label) in self.FOLDER_OUTPUTS.items():
            self.addOutput(QgsProcessingOutputFolder(name, self.tr(label)))
        self.addOutput(QgsProcessingOutputRasterLayer("DEM", self.tr("Elevation (1 km target grid)")))
        self.addOutput(QgsProcessingOutputFile("STATIONS", self.tr("Station soil moisture (CSV)")))
        self.addOutput(QgsProcessingOutputFile("SCENE_JSON", self.tr("Scene description (scene.json)")))
        self.addOutput(QgsProcessingOutputNumber("MEAN_CLOUD_COVER", self.tr("Mean cloud cover (0-1)")))
        self.addOutput(QgsProcessingOutputNumber("SEAM_DAYS", self.tr("Days with swath seams")))

    # -------------------------------------------------------------------------------
    def checkParameterValues(self, parameters, context):
        """Clear messages for nonsense values (before the generic range checks)."""
        place = parameters.get(self.PLACE)
        if place not in (None, "") and enum_key(self.parameterDefinition(self.PLACE), place) is None:
            return False, self.tr(f"PLACE: unknown place {place!r}; choose one of: {', '.join(PLACE_NAMES)}")
        for name, lo, what in ((self.SIZE_KM, 1, "the scene width must be at least 1 km"),
                               (self.DAYS, 1, "at least one day is needed"),
                               (self.STATIONS, 0, "the number of stations cannot be negative"),
                               (self.SEED, 0, "the seed cannot be negative"),
                               (self.HEIGHT_KM, 0, "the height cannot be negative (0 = same as the width)")):
            value = parameters.get(name)
            try:
                if value not in (None, "") and float(value) < lo:
                    return False, self.tr(f"{name}: {what}, got {value}")
            except (TypeError, ValueError):
                return False, self.tr(f"{name}: not a number: {value!r}")
        cloud = parameters.get(self.CLOUDINESS)
        try:
            if cloud not in (None, "") and not 0.0 <= float(cloud) <= 1.0:
                return False, self.tr(f"CLOUDINESS: must be between 0 and 1, got {cloud}")
        except (TypeError, ValueError):
            return False, self.tr(f"CLOUDINESS: not a number: {cloud!r}")
        return super().checkParameterValues(parameters, context)

    def processAlgorithm(self, parameters, context, feedback):
        from ..core.scene import generate_scene

        place = self.parameter_enum(parameters, self.PLACE, context)
        start = self.parameter_date(parameters, self.START_DATE, context) or dt.date(2019, 6, 1)
        out = self.parameterAsString(parameters, self.OUTPUT, context)
        if not out:
            raise QgsProcessingException(self.tr("OUTPUT: give an output folder"))
        height = self.parameterAsInt(parameters, self.HEIGHT_KM, context)
        cfg = SceneConfig(
            place=place,
            width_km=self.parameterAsInt(parameters, self.SIZE_KM, context),
            height_km=height or None,
            days=self.parameterAsInt(parameters, self.DAYS, context),
            start=start,
            cloudiness=self.parameterAsDouble(parameters, self.CLOUDINESS, context),
            n_stations=self.parameterAsInt(parameters, self.STATIONS, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            spinup_days=self.parameterAsInt(parameters, self.SPINUP_DAYS, context),
        )
        try:
            cfg = cfg.validated()
        except SceneError as exc:
            raise QgsProcessingException(str(exc)) from exc
        feedback.pushInfo(self.tr(
            f"Sample scene: {cfg.place}, {cfg.width} x {cfg.height} km, {cfg.days} day(s) from {cfg.start}, "
            f"cloudiness {cfg.cloudiness:g}, {cfg.n_stations} station(s), seed {cfg.seed}"))
        with self.core_call(feedback):
            info = generate_scene(cfg, out, **self.progress_args(feedback))
        series = {key: sorted(Path(info.paths[key]).glob("*.tif"))
                  for key in ("ssm_coarse", "truth_ssm", "lst", "truth_lst")}
        for key, kind in (("ssm_coarse", "ssm"), ("truth_ssm", "ssm"), ("lst", "lst"), ("truth_lst", "lst")):
            write_sidecars(series[key], kind)
        group = run_group_name(context, self.tr("Sample scene"), out)
        load_layer_on_completion(context, stations_csv_layer(info.paths["stations"], self.tr("Stations (CSV)")),
                                 group, "stations_csv")
        load_series_on_completion(context, series["ssm_coarse"], "ssm", group, self.tr("Coarse soil moisture (36 km)"))
        load_series_on_completion(context, series["truth_ssm"], "ssm", group, self.tr("True soil moisture (1 km)"))
        load_layer_on_completion(context, QgsRasterLayer(str(info.paths["dem"]), self.tr("Elevation")), group, "dem")
        feedback.pushInfo(self.tr(
            f"Written to {info.out_dir}: mean cloud cover {info.scene['mean_cloud_cover']:.2f}, "
            f"{len(info.scene['seam_days'])} day(s) with swath seams, land {100 * info.scene['land_fraction']:.1f} %"))
        results = {self.OUTPUT: str(info.out_dir)}
        for name, (key, _) in self.FOLDER_OUTPUTS.items():
            results[name] = str(info.paths[key])
        results.update(
            DEM=str(info.paths["dem"]),
            STATIONS=str(info.paths["stations"]),
            SCENE_JSON=str(info.paths["scene_json"]),
            MEAN_CLOUD_COVER=float(info.scene["mean_cloud_cover"]),
            SEAM_DAYS=len(info.scene["seam_days"]),
        )
        return results

"""ssm:gapfilllst - fill the cloud gaps of a daily clear-sky 1 km LST series."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDateTime,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.lst.options import METHOD_TITLES, METHODS
from .base import SsmAlgorithm, enum_key, enum_parameter
from .compat import DATETIME_DATE, FILE_FOLDER, FLAG_ADVANCED, NUMBER_DOUBLE, NUMBER_INTEGER
from .outputs import load_series_on_completion, run_group_name, write_sidecars

HELP = """Turns a daily series of clear-sky 1 km land surface temperature (LST, K; no data under cloud), such as MODIS MOD11A1/MYD11A1, into an all-weather daily series, with a flag layer per day. Observed pixels are copied unchanged; filled values are clipped to MIN_LST..MAX_LST.

<b>Method</b> (METHOD):
<ul>
<li><b>anomaly</b> (default): background + anomaly. The all-weather background (e.g. ERA5-Land skin temperature, any grid and CRS) is interpolated bilinearly to 1 km and corrected for the elevation difference between each pixel and what the background sees (needs a DEM). Its effective resolution (a blur of 0-3 of its cells) and the clear-sky lapse rate are learned from the clear pixels of up to 12 days. On clear pixels the anomaly LST - background is split into a persistent per-pixel part, the mean over the other clear days of a moving window of WINDOW days, weighted by a Gaussian of TIME_SCALE_DAYS days (with an NDVI-based prior for pixels seldom clear), and a smooth part (the background's bias) plus the clear-minus-cloudy difference: since the background mixes clear and cloudy pixels, clear pixels sit above it in proportion to the cloud fraction it sees; a Gaussian-weighted local regression (REGIONAL_SCALE_KM) on that cloud fraction, pooled over the window's days, gives both, and so the cloudy-sky correction. Under cloud: background + cloudy-sky lapse rate (CLOUDY_LAPSE_RATE, the air's -6.5 K/km) + bias - clear/cloudy difference + CLOUDY_ANOMALY_SCALE x (persistent anomaly + today's remaining anomaly interpolated from the clear pixels within about RESIDUAL_SCALE_KM): both are clear-sky surface contrasts, which weaker sunlight under cloud damps.</li>
<li><b>temporal</b>: per pixel, linear interpolation between the nearest clear days before and after, each at most MAX_GAP days away (one side only: its value).</li>
<li><b>spatial</b>: inverse-distance weighting (power IDW_POWER) of the day's clear pixels within IDW_RADIUS_KM; nothing on overcast days.</li>
<li><b>background</b>: the background at 1 km with the cloudy-sky lapse-rate correction only.</li>
</ul>
anomaly and background need the background folder; the window reads days before and after START_DATE..END_DATE when they exist, but writes only the days in the range (empty dates = all days).

<b>Inputs</b>: folders of single-band rasters with the date in the file names (YYYY-MM-DD, YYYYMMDD or YYYYDDD); MOD11A1/MYD11A1 HDF files are read directly (LST_Day_1km x 0.02 K; QC: good quality, or LST error at most 2 K). The LST grid is the output grid; the DEM (m) and NDVI are warped onto it. NDVI: a folder of composites (each serves the 16 days from its date) or one raster (type its path). Pixels to fill are those observed at least once in the days read, plus, with NDVI, its valid pixels; the others (water, outside the data) stay no data.

<b>Parallel days</b> (DASK_SCHEDULER): empty (default) runs in this process, where each day's passes already use every core; the address of a Dask scheduler (tcp://host:8786, e.g. a cluster started with dask-jobqueue on Slurm or PBS) spreads chunks of 128 days over its workers, which must see the input and output folders; "local" (or "local:N") starts a Dask cluster of N worker processes on this machine. Every choice writes the same bytes: the run is always cut into the same chunks, and each chunk first walks through the WINDOW - 1 days before it (the anomaly method's window state depends on the days before; a warm-up of that length brings a chunk's days within about 0.01 K of an uncut run). Dask is optional: install python3-dask and python3-distributed (Debian/Ubuntu) or "python -m pip install dask[distributed]" in QGIS's Python.

<b>Outputs</b>: per day lst_YYYY-MM-DD.tif (float32 K, nodata -9999) and lst_flag_YYYY-MM-DD.tif (uint8: 0 observed clear-sky, 1 gap-filled, 255 no data), with the date in the DATE metadata item; the last day is loaded, styled, when the run finishes. DAYS and SKIPPED_DAYS count the days; GAP_PERCENT is the share of land pixel-days without a clear observation and FILLED_PERCENT the share of those that were filled. A day without a background file is skipped with a warning. Bad input (a background not overlapping the LST, no dates in common, an unreadable file, LST not in kelvin) stops the run before anything is written; a cancelled run leaves only complete days."""


class GapfillLstAlgorithm(SsmAlgorithm):
    NAME = "gapfilllst"
    DISPLAY_NAME = "Gap-fill land surface temperature"
    GROUP = "2 - Land surface temperature"
    GROUP_ID = "lst"
    TAGS = "LST,land surface temperature,gap filling,cloud,all-weather,MODIS,MOD11A1,ERA5,reanalysis,1 km"
    HELP = HELP

    INPUT_LST = "INPUT_LST"
    INPUT_BACKGROUND = "INPUT_BACKGROUND"
    INPUT_DEM = "INPUT_DEM"
    INPUT_NDVI = "INPUT_NDVI"
    START_DATE = "START_DATE"
    END_DATE = "END_DATE"
    METHOD = "METHOD"
    WINDOW = "WINDOW"
    MAX_GAP = "MAX_GAP"
    TIME_SCALE_DAYS = "TIME_SCALE_DAYS"
    REGIONAL_SCALE_KM = "REGIONAL_SCALE_KM"
    RESIDUAL_SCALE_KM = "RESIDUAL_SCALE_KM"
    CLOUD_CORRECTION = "CLOUD_CORRECTION"
    CLOUDY_ANOMALY_SCALE = "CLOUDY_ANOMALY_SCALE"
    LAPSE_RATE = "LAPSE_RATE"
    CLOUDY_LAPSE_RATE = "CLOUDY_LAPSE_RATE"
    BACKGROUND_SMOOTHING = "BACKGROUND_SMOOTHING"
    IDW_RADIUS_KM = "IDW_RADIUS_KM"
    IDW_POWER = "IDW_POWER"
    MIN_LST = "MIN_LST"
    MAX_LST = "MAX_LST"
    DASK_SCHEDULER = "DASK_SCHEDULER"
    OUTPUT_LST = "OUTPUT_LST"
    OUTPUT_FLAGS = "OUTPUT_FLAGS"

    def initAlgorithm(self, config=None) -> None:
        folder = FILE_FOLDER
        number = QgsProcessingParameterNumber
        self.addParameter(QgsProcessingParameterFile(self.INPUT_LST, self.tr("Clear-sky LST folder (K)"), behavior=folder))
        self.addParameter(QgsProcessingParameterFile(
            self.INPUT_BACKGROUND, self.tr("All-weather background LST folder (K; for anomaly and background)"),
            behavior=folder, optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT_DEM, self.tr("Elevation (m)"), optional=True))
        self.addParameter(QgsProcessingParameterFile(self.INPUT_NDVI, self.tr("NDVI folder (or a single raster)"),
                                                     behavior=folder, optional=True))
        for name, label in ((self.START_DATE, "Start date"), (self.END_DATE, "End date")):
            self.addParameter(QgsProcessingParameterDateTime(name, self.tr(label),
                                                             type=DATETIME_DATE, optional=True))
        self.addParameter(enum_parameter(self.METHOD, self.tr("Method"),
                                         {m: self.tr(METHOD_TITLES.get(m, m)) for m in METHODS}, "anomaly"))
        self.addParameter(number(self.WINDOW, self.tr("Window (days, centred on each day)"), NUMBER_INTEGER, 15,
                                 minValue=1, maxValue=121))
        advanced = [
            number(self.MAX_GAP, self.tr("temporal: maximum distance to a clear day (days; 0 = half the window)"),
                   NUMBER_INTEGER, 0, minValue=0, maxValue=365),
            number(self.TIME_SCALE_DAYS, self.tr("anomaly: Gaussian time weights of the window days (days; 0 = equal)"),
                   NUMBER_DOUBLE, 3.0, minValue=0.0),
            number(self.REGIONAL_SCALE_KM, self.tr("anomaly: bandwidth of the bias and cloudy-sky fit (km)"),
                   NUMBER_DOUBLE, 50.0, minValue=1.0),
            number(self.RESIDUAL_SCALE_KM, self.tr("anomaly: bandwidth of today's residual anomaly (km; 0 = off)"),
                   NUMBER_DOUBLE, 10.0, minValue=0.0),
            QgsProcessingParameterBoolean(self.CLOUD_CORRECTION,
                                          self.tr("anomaly: learn the cloudy-sky correction from the background"),
                                          defaultValue=True),
            number(self.CLOUDY_ANOMALY_SCALE, self.tr("anomaly: share of the clear-sky anomaly kept under cloud"),
                   NUMBER_DOUBLE, 0.5, minValue=0.0, maxValue=2.0),
            number(self.LAPSE_RATE, self.tr("Clear-sky lapse rate (K/km; empty = learn from the data)"),
                   NUMBER_DOUBLE, None, optional=True, minValue=-50.0, maxValue=50.0),
            number(self.CLOUDY_LAPSE_RATE, self.tr("Cloudy-sky lapse rate (K/km)"),
                   NUMBER_DOUBLE, -6.5, minValue=-50.0, maxValue=50.0),
            number(self.BACKGROUND_SMOOTHING,
                   self.tr("Background effective blur (background cells; empty = learn from the data)"),
                   NUMBER_DOUBLE, None, optional=True, minValue=0.0, maxValue=20.0),
            number(self.IDW_RADIUS_KM, self.tr("spatial: search radius (km)"), NUMBER_DOUBLE, 50.0, minValue=0.5),
            number(self.IDW_POWER, self.tr("spatial: inverse-distance power"), NUMBER_DOUBLE, 2.0, minValue=0.1,
                   maxValue=10.0),
            number(self.MIN_LST, self.tr("Minimum filled LST (K)"), NUMBER_DOUBLE, 200.0, minValue=0.0),
            number(self.MAX_LST, self.tr("Maximum filled LST (K)"), NUMBER_DOUBLE, 350.0, minValue=0.0),
            QgsProcessingParameterString(self.DASK_SCHEDULER,
                                         self.tr("Dask scheduler address (empty = this process, on all cores)"),
                                         defaultValue=None, optional=True),
        ]
        for p in advanced:
            # not "optional": they have defaults, which also apply to saved models that lack them
            p.setFlags(p.flags() | FLAG_ADVANCED)
            self.addParameter(p)
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_LST, self.tr("All-weather LST")))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FLAGS, self.tr("LST flags")))
        self.addOutput(QgsProcessingOutputNumber("DAYS", self.tr("Days written")))
        self.addOutput(QgsProcessingOutputNumber("SKIPPED_DAYS", self.tr("Days skipped")))
        self.addOutput(QgsProcessingOutputNumber("GAP_PERCENT", self.tr("% of land pixel-days without observation")))
        self.addOutput(QgsProcessingOutputNumber("FILLED_PERCENT", self.tr("% of the gaps filled")))

    # -------------------------------------------------------------------------------
    def checkParameterValues(self, parameters, context):
        method = enum_key(self.parameterDefinition(self.METHOD), parameters.get(self.METHOD))
        if method is None:
            return False, self._enum_error(self.parameterDefinition(self.METHOD), parameters.get(self.METHOD))
        if method in ("anomaly", "background") and parameters.get(self.INPUT_BACKGROUND) in (None, ""):
            return False, self.tr(f"INPUT_BACKGROUND: the {method} method needs an all-weather background LST folder")
        lo, hi = parameters.get(self.MIN_LST), parameters.get(self.MAX_LST)
        try:
            if lo not in (None, "") and hi not in (None, "") and float(lo) >= float(hi):
                return False, self.tr(f"MIN_LST ({lo}) must be below MAX_LST ({hi})")
        except (TypeError, ValueError):
            return False, self.tr("MIN_LST/MAX_LST: not numbers")
        return super().checkParameterValues(parameters, context)

    def _optional_number(self, parameters, name, context) -> float | None:
        if parameters.get(name) in (None, ""):
            return None
        return self.parameterAsDouble(parameters, name, context)

    def processAlgorithm(self, parameters, context, feedback):
        from ..core.lst import GapfillOptions, gapfill_series

        lst = self.parameter_path(parameters, self.INPUT_LST, context)
        background = self.parameter_path(parameters, self.INPUT_BACKGROUND, context, optional=True)
        ndvi = self.parameter_path(parameters, self.INPUT_NDVI, context, optional=True)
        dem = self.raster_path(parameters, self.INPUT_DEM, context)
        start, end = self.date_range(parameters, self.START_DATE, self.END_DATE, context)
        method = self.parameter_enum(parameters, self.METHOD, context)
        max_gap = self.parameterAsInt(parameters, self.MAX_GAP, context)
        lapse = self._optional_number(parameters, self.LAPSE_RATE, context)
        cloudy_lapse = self.parameterAsDouble(parameters, self.CLOUDY_LAPSE_RATE, context)
        out_lst = self.parameterAsString(parameters, self.OUTPUT_LST, context)
        out_flags = self.parameterAsString(parameters, self.OUTPUT_FLAGS, context)
        scheduler = (self.parameterAsString(parameters, self.DASK_SCHEDULER, context) or "").strip()
        with self.core_call(feedback):
            from ..core.runner import SerialExecutor, make_executor

            options = GapfillOptions(
                method=method,
                window=self.parameterAsInt(parameters, self.WINDOW, context),
                max_gap=max_gap or None,
                time_scale_days=self.parameterAsDouble(parameters, self.TIME_SCALE_DAYS, context),
                regional_scale_km=self.parameterAsDouble(parameters, self.REGIONAL_SCALE_KM, context),
                residual_scale_km=self.parameterAsDouble(parameters, self.RESIDUAL_SCALE_KM, context),
                cloud_correction=self.parameterAsBool(parameters, self.CLOUD_CORRECTION, context),
                cloudy_anomaly_scale=self.parameterAsDouble(parameters, self.CLOUDY_ANOMALY_SCALE, context),
                lapse_rate=None if lapse is None else lapse / 1000.0,
                cloudy_lapse_rate=cloudy_lapse / 1000.0,
                background_smoothing=self._optional_number(parameters, self.BACKGROUND_SMOOTHING, context),
                idw_radius_km=self.parameterAsDouble(parameters, self.IDW_RADIUS_KM, context),
                idw_power=self.parameterAsDouble(parameters, self.IDW_POWER, context),
                valid_range=(self.parameterAsDouble(parameters, self.MIN_LST, context),
                             self.parameterAsDouble(parameters, self.MAX_LST, context)),
            )
            feedback.pushInfo(self.tr(f"Method {method}, window {options.window} day(s); output grid: the LST's"))
            # in this process the day passes use every core: chunks one after another
            with (make_executor(scheduler) if scheduler else SerialExecutor()) as executor:
                if scheduler:
                    feedback.pushInfo(self.tr(f"Chunks of days processed on {executor.workers} {executor.name} "
                                              f"worker(s) at {scheduler}"))
                summary = gapfill_series(lst, background, out_lst, out_flags, dem=dem, ndvi=ndvi, start=start,
                                         end=end, options=options, executor=executor, **self.progress_args(feedback))
        write_sidecars(summary.lst_files, "lst")
        write_sidecars(summary.flag_files, "lst_flags")
        group = run_group_name(context, self.tr("All-weather LST"), out_lst)
        load_series_on_completion(context, summary.lst_files, "lst", group, self.tr("LST"))
        load_series_on_completion(context, summary.flag_files, "lst_flags", group, self.tr("LST flags"))
        return {
            self.OUTPUT_LST: out_lst,
            self.OUTPUT_FLAGS: out_flags,
            "DAYS": summary.days_processed,
            "SKIPPED_DAYS": len(summary.days_skipped),
            "GAP_PERCENT": round(summary.gap_percent, 3),
            "FILLED_PERCENT": round(summary.filled_percent, 3),
        }

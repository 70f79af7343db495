"""ssm:downscalessm - downscale daily coarse soil moisture to 1 km."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDateTime,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .base import SsmAlgorithm, enum_parameter
from .compat import DATETIME_DATE, FILE_FOLDER, FLAG_ADVANCED, NUMBER_DOUBLE, NUMBER_INTEGER
from .outputs import load_series_on_completion, run_group_name, write_sidecars

#: enum choices: key (used in scripts and models) -> label shown in the dialog; new keys are
#: appended, so saved models that pass an index keep their meaning
METHODS = {
    "gwr": "Geographically weighted regression (GWR)",
    "forest": "Random forest",
    "dispatch": "DisPATCh (soil evaporative efficiency)",
    "bilinear": "Bilinear interpolation (baseline)",
    "nearest": "Coarse value in every pixel (the input at 1 km)",
}
KERNELS = {"gaussian": "Gaussian", "bisquare": "Bisquare"}
RESIDUALS = {
    "auto": "Automatic (by method)",
    "interp": "Exact cell means, interpolated residual (former name of coherent)",
    "smooth": "Smooth field, exact cell means",
    "cell": "Constant per cell",
    "none": "None (the model alone)",
    "filter": "Filter the retrieval error in space and time (no cell edges)",
    "coherent": "Exact cell means, interpolated residual",
}

HELP = """Downscales a daily coarse surface soil moisture product (e.g. SMAP, AMSR2 or ESA CCI at 25-36 km, any grid and CRS) to a 1 km daily product, in all weather, with a flag and an uncertainty layer per day.

<b>Method</b> (METHOD):
<ul>
<li><b>gwr</b> (default): geographically weighted regression at the coarse scale, SSM = b0(u) + sum bk(u) Xk with the predictors aggregated (area-weighted) to the coarse cells: all-weather LST, NDVI, albedo, and the DEM and day-night LST difference when given. Gaussian or bisquare kernel on the distances between coarse cell centres; the bandwidth is chosen by AICc (golden-section search on the log bandwidth, finished by parabolic Brent steps, to 1 % of the bandwidth) unless BANDWIDTH_KM is set. POOL_DAYS pools the coarse data of +/- n neighbouring days into each day's fit. The coefficient fields are interpolated bilinearly to 1 km and applied to the 1 km predictors. Uncertainty: the GWR prediction standard error sqrt(sigma² + x' Cov(b) x), with sigma² the coarse residual variance, combined with the kriging variance of the filtered residual. Where a predictor is locally constant (a flat DEM over a delta) the local slopes are ridge-penalised (the penalty is in the hat matrix and the AICc). Distances are in metres whatever the grids' CRS (cell centres in an equal-area projection when the 1 km grid is geographic).</li>
<li><b>forest</b>: a random forest (scikit-learn, TREES trees, seeded by SEED, THREADS threads) trained on the coarse aggregates and applied at 1 km. Uncertainty: the standard deviation of the trees' predictions combined with the forest's out-of-bag error at the coarse scale (and the kriging variance); the residual filter uses the out-of-bag coarse predictions.</li>
<li><b>dispatch</b>: DisPATCh. The soil evaporative efficiency SEE = (Ts_max - Ts)/(Ts_max - Ts_min) from the day's LST-NDVI trapezoid (soil temperature Ts = (LST - fv Tv)/(1 - fv); with a DEM, LST is first brought to the mean elevation with 6.5 K/km), and SM_1km = SM_c + (dSM/dSEE)_c (SEE_1km - &lt;SEE&gt;_c) with SEE = 1/2 - 1/2 cos(pi SM/SMp). No uncertainty layer.</li>
<li><b>bilinear</b>: the coarse field interpolated bilinearly between cell centres (the baseline). No uncertainty layer, no residual correction.</li>
<li><b>nearest</b>: the coarse value copied into every 1 km pixel of its cell (the coarse input read at 1 km, for comparison). No uncertainty layer.</li>
</ul>
<b>Residual correction</b> (gwr, forest, dispatch). A coarse retrieval is a noisy observation of the cell mean (a retrieval error of 0.02-0.04 m³/m³ is normal). RESIDUAL "filter" (the default of gwr and forest): the coarse residuals (coarse value minus the model's cell mean) are split into a signal that is correlated in space and time and a white retrieval error, whose size is estimated from the data (a cell's residuals one, two and three days apart carry no retrieval error, since each day's retrieval is a separate measurement: a persistent part plus one decaying over days fitted to them gives the signal, the rest of the variance is the error; RETRIEVAL_ERROR sets it instead); the signal is estimated at every cell centre and day by kriging from the cells within 3 cells and a few days (regression kriging with a nugget), interpolated smoothly to 1 km and added. The 1 km field has no cell edges and each pixel's time series carries a fraction of the retrieval error instead of all of it; cell means stay within about the retrieval error of the coarse values (the coverage table lists the mean departure next to the estimated error), and seams get the kriged residual of the neighbouring cells and days. "coherent": every observed cell's 1 km mean equals its coarse value exactly (residuals interpolated between cell centres, then a constant shift per cell): each pixel then carries the cell's full retrieval error day after day and the cells can show as blocks - choose it when the coarse product must be reproduced exactly. "smooth": exact and smooth across cell edges (it amplifies cell-to-cell noise); "cell": a constant per cell; "none": the model alone; "auto": filter for gwr and forest, cell for dispatch, none for bilinear and nearest. ("interp" is the former name of "coherent".)
<b>Scale transfer</b> (gwr, forest): a relation fitted between 36 km cells is steeper than the one between 1 km pixels of a cell (inside a cell the predictors also vary with terrain, vegetation and noise that soil moisture does not follow), so the 1 km within-cell anomalies of the model are scaled by a gain k in 0..1, keeping cell means. With ANOMALY_GAIN empty (default; -1 also works) k is estimated from the coarse data one scale up: the same method is fitted between 2 x 2 blocks of coarse cells and k is the slope of the observed within-block anomalies of the coarse soil moisture on the predicted ones (logged, and listed in the coverage table). With the filter, two gains are estimated the same way: one for each cell's anomaly averaged over the run (the persistent pattern of soil, terrain and vegetation) and one for the day-to-day departures from it (what a station's time series sees); where the model's day-to-day within-cell changes do not follow the observed ones, that gain is near 0 and the model's noise stays out of the time series. 1 keeps the model's anomalies unchanged. The within-cell anomalies are also averaged over the days within +/- ANOMALY_DAYS (default 1; 0 = each day alone): the persistent part of a cell's pattern (soil, terrain, vegetation) adds up, the model's day-to-day noise averages down; each day keeps its own cell means.
<b>Seams</b>: where the coarse value is missing that day (between swaths), the model is applied without the local residual, adding instead the same cell's residual interpolated from the nearest days with a retrieval (within SEAM_DAYS days; none when there is none). dispatch and bilinear use the cell's coarse value interpolated in time, else the nearest observed cell.
Values are kept within MIN_SSM..MAX_SSM: with "filter", values within 0.02 m³/m³ of a bound are compressed smoothly towards it (no pile-up at the bound); with the exact corrections they are clipped and the clipped amount is redistributed within the cell, keeping its mean. A warning is logged when more than 0.1 % of the pixel-days were outside the range. Pixels where a predictor is missing (water, nodata) get no estimate.

<b>Parallel days</b> (DASK_SCHEDULER): empty (default) processes the days in this process on all cores (days above about 11 M px one at a time, as each already uses every core: two side by side would need about 1 GB more at China size); the address of a Dask scheduler (tcp://host:8786, e.g. a cluster started with dask-jobqueue on Slurm or PBS) spreads them over its workers, which must see the input and output folders; "local" (or "local:N") starts a Dask cluster of N worker processes on this machine, each with its share of the cores. Every choice writes the same bytes, on any number of cores (BLAS runs on one thread inside a run). A run streams its days: neither its memory nor its scratch folder grows with the number of days beyond the run-wide statistics' sample (at most 366 days). Dask is optional: install python3-dask and python3-distributed (Debian/Ubuntu) or "python -m pip install dask[distributed]" in QGIS's Python.

<b>Inputs</b>: folders of single-band rasters with the date in each file name (YYYY-MM-DD, YYYYMMDD or YYYYDDD). The coarse SSM in m³/m³; the all-weather LST in K (e.g. the output of "Gap-fill land surface temperature"); NDVI and albedo as folders (16-day NDVI composites serve the 16 days from their date, albedo files the 8 days from theirs) or as single rasters (type the file's path); optional DEM (m); optional LST gap-fill flags (0 observed, 1 gap-filled), used for the flags. Inputs on other grids are warped onto the 1 km grid. The 1 km grid is that of the reference layer, or of the LST. A day is processed when the coarse SSM, the LST, and NDVI and albedo within their age all exist; other days are skipped with a warning.

<b>Outputs</b>: per day ssm_YYYY-MM-DD.tif (m³/m³), ssm_flags_YYYY-MM-DD.tif (uint8: 0 coarse SSM observed, 1 seam-filled, 2 LST gap-filled under cloud with coarse SSM observed, 3 both, 255 no estimate) and ssm_uncertainty_YYYY-MM-DD.tif (m³/m³; no data for dispatch and bilinear), float32 GeoTIFF, nodata -9999, with the date in the DATE metadata item. The coverage table (CSV) has one row per day: coarse cells observed and in seams, land pixels (where the LST, NDVI or albedo is valid), the percentage of land pixels with an estimate, seam-filled and LST gap-filled, pixels clipped, the anomaly gain, and for gwr the bandwidth (km, inf = a global regression) and coarse residual sigma. The last day's SSM and flags are loaded when the run finishes. Bad input (grids that do not overlap, a coarse product without a usable CRS, no common dates, an output that is an input or cannot be written, values not in the expected unit - e.g. soil moisture in percent, LST in Celsius, NDVI on the MODIS integer scale - or an undeclared fill value such as -9999) stops the run before anything is written; SSM_PERCENT converts a coarse product in percent. A cancelled run leaves only complete days."""


class DownscaleSsmAlgorithm(SsmAlgorithm):
    NAME = "downscalessm"
    DISPLAY_NAME = "Downscale soil moisture"
    GROUP = "3 - Soil moisture"
    TAGS = "soil moisture,downscaling,GWR,geographically weighted regression,random forest,DisPATCh,SMAP,AMSR2,1 km,seam"
    HELP = HELP

    INPUT_SSM = "INPUT_SSM"
    INPUT_LST = "INPUT_LST"
    INPUT_NDVI = "INPUT_NDVI"
    INPUT_ALBEDO = "INPUT_ALBEDO"
    INPUT_DEM = "INPUT_DEM"
    INPUT_LST_FLAGS = "INPUT_LST_FLAGS"
    INPUT_LST_DIFF = "INPUT_LST_DIFF"
    REFERENCE = "REFERENCE"
    START_DATE = "START_DATE"
    END_DATE = "END_DATE"
    METHOD = "METHOD"
    KERNEL = "KERNEL"
    BANDWIDTH_KM = "BANDWIDTH_KM"
    POOL_DAYS = "POOL_DAYS"
    SEAM_DAYS = "SEAM_DAYS"
    RESIDUAL = "RESIDUAL"
    RETRIEVAL_ERROR = "RETRIEVAL_ERROR"
    ANOMALY_GAIN = "ANOMALY_GAIN"
    ANOMALY_DAYS = "ANOMALY_DAYS"
    TREES = "TREES"
    SEED = "SEED"
    THREADS = "THREADS"
    MIN_SSM = "MIN_SSM"
    SSM_PERCENT = "SSM_PERCENT"
    MAX_SSM = "MAX_SSM"
    DASK_SCHEDULER = "DASK_SCHEDULER"
    OUTPUT_SSM = "OUTPUT_SSM"
    OUTPUT_FLAGS = "OUTPUT_FLAGS"
    OUTPUT_UNCERTAINTY = "OUTPUT_UNCERTAINTY"
    OUTPUT_COVERAGE = "OUTPUT_COVERAGE"

    def initAlgorithm(self, config=None) -> None:
        folder = FILE_FOLDER
        self.addParameter(QgsProcessingParameterFile(self.INPUT_SSM, self.tr("Coarse soil moisture folder (m³/m³)"),
                                                     behavior=folder))
        self.addParameter(QgsProcessingParameterFile(self.INPUT_LST, self.tr("All-weather LST folder (K)"),
                                                     behavior=folder))
        self.addParameter(QgsProcessingParameterFile(self.INPUT_NDVI, self.tr("NDVI folder (or a single raster)"),
                                                     behavior=folder))
        self.addParameter(QgsProcessingParameterFile(self.INPUT_ALBEDO, self.tr("Albedo folder (or a single raster)"),
                                                     behavior=folder))
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT_DEM, self.tr("Elevation (m)"), optional=True))
        self.addParameter(QgsProcessingParameterFile(self.INPUT_LST_FLAGS, self.tr("LST gap-fill flag folder"),
                                                     behavior=folder, optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(self.REFERENCE,
                                                            self.tr("Reference 1 km grid (default: the LST grid)"),
                                                            optional=True))
        for name, label in ((self.START_DATE, "Start date"), (self.END_DATE, "End date")):
            self.addParameter(QgsProcessingParameterDateTime(name, self.tr(label),
                                                             type=DATETIME_DATE, optional=True))
        self.addParameter(self._enum(self.METHOD, "Method", METHODS, "gwr"))

        advanced = [
            QgsProcessingParameterFile(self.INPUT_LST_DIFF, self.tr("Day-night LST difference folder (K, extra GWR/forest predictor)"),
                                       behavior=folder, optional=True),
            self._enum(self.KERNEL, "GWR kernel", KERNELS, "gaussian"),
            QgsProcessingParameterNumber(self.BANDWIDTH_KM, self.tr("GWR bandwidth (km; empty = choose by AICc)"),
                                         NUMBER_DOUBLE, None, optional=True, minValue=0.0),
            QgsProcessingParameterNumber(self.POOL_DAYS, self.tr("Pool +/- days into each fit (gwr, forest)"),
                                         NUMBER_INTEGER, 0, minValue=0, maxValue=15),
            QgsProcessingParameterNumber(self.SEAM_DAYS, self.tr("Borrow seam residuals from up to this many days away"),
                                         NUMBER_INTEGER, 7, minValue=0, maxValue=60),
            self._enum(self.RESIDUAL, "Residual correction", RESIDUALS, "auto"),
            QgsProcessingParameterNumber(self.RETRIEVAL_ERROR,
                                         self.tr("Coarse retrieval error (m³/m³, filter; empty = estimate from the data)"),
                                         NUMBER_DOUBLE, None, optional=True, minValue=-1.0, maxValue=0.5),
            QgsProcessingParameterNumber(self.ANOMALY_GAIN,
                                         self.tr("Within-cell anomaly gain (gwr, forest; empty = estimate from the data)"),
                                         NUMBER_DOUBLE, None, optional=True, minValue=-1.0,
                                         maxValue=2.0),
            QgsProcessingParameterNumber(self.ANOMALY_DAYS,
                                         self.tr("Average within-cell patterns over +/- days (gwr, forest)"),
                                         NUMBER_INTEGER, 1, minValue=0, maxValue=15),
            QgsProcessingParameterNumber(self.TREES, self.tr("Forest: number of trees"),
                                         NUMBER_INTEGER, 100, minValue=1, maxValue=2000),
            QgsProcessingParameterNumber(self.SEED, self.tr("Forest: random seed"),
                                         NUMBER_INTEGER, 0, minValue=0),
            QgsProcessingParameterNumber(self.THREADS, self.tr("Forest: threads"),
                                         NUMBER_INTEGER, 1, minValue=1, maxValue=64),
            QgsProcessingParameterBoolean(self.SSM_PERCENT,
                                          self.tr("Coarse soil moisture is in percent (divide it by 100)"),
                                          defaultValue=False),
            QgsProcessingParameterNumber(self.MIN_SSM, self.tr("Minimum soil moisture (m³/m³)"),
                                         NUMBER_DOUBLE, 0.01, minValue=0.0, maxValue=1.0),
            QgsProcessingParameterNumber(self.MAX_SSM, self.tr("Maximum soil moisture (m³/m³)"),
                                         NUMBER_DOUBLE, 0.6, minValue=0.0, maxValue=1.0),
            QgsProcessingParameterString(self.DASK_SCHEDULER,
                                         self.tr("Dask scheduler address (empty = this process, on all cores)"),
                                         defaultValue=None, optional=True),
        ]
        for p in advanced:  # defaults also apply to models saved before a new option appeared
            p.setFlags(p.flags() | FLAG_ADVANCED)
            self.addParameter(p)

        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_SSM, self.tr("1 km soil moisture")))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FLAGS, self.tr("Flags")))
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_UNCERTAINTY, self.tr("Uncertainty")))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT_COVERAGE, self.tr("Coverage table"),
                                                                fileFilter="CSV files (*.csv)"))
        self.addOutput(QgsProcessingOutputNumber("DAYS", self.tr("Days downscaled")))
        self.addOutput(QgsProcessingOutputNumber("SKIPPED_DAYS", self.tr("Days skipped")))
        self.addOutput(QgsProcessingOutputNumber("MEAN_COVERAGE", self.tr("Mean % of land pixels with an estimate")))

    def _enum(self, name: str, label: str, choices: dict[str, str], default: str) -> QgsProcessingParameterEnum:
        return enum_parameter(name, self.tr(label), {k: self.tr(v) for k, v in choices.items()}, default)

    def _layer_path(self, parameters, name, context) -> str | None:
        return self.raster_path(parameters, name, context)

    def processAlgorithm(self, parameters, context, feedback):
        from ..core.downscale import downscale_series

        ssm = self.parameter_path(parameters, self.INPUT_SSM, context)
        lst = self.parameter_path(parameters, self.INPUT_LST, context)
        ndvi = self.parameter_path(parameters, self.INPUT_NDVI, context)
        albedo = self.parameter_path(parameters, self.INPUT_ALBEDO, context)
        lst_flags = self.parameter_path(parameters, self.INPUT_LST_FLAGS, context, optional=True)
        lst_diff = self.parameter_path(parameters, self.INPUT_LST_DIFF, context, optional=True)
        dem = self._layer_path(parameters, self.INPUT_DEM, context)
        reference = self._layer_path(parameters, self.REFERENCE, context)
        start, end = self.date_range(parameters, self.START_DATE, self.END_DATE, context)
        method = self.parameter_enum(parameters, self.METHOD, context)
        kernel = self.parameter_enum(parameters, self.KERNEL, context)
        residual = self.parameter_enum(parameters, self.RESIDUAL, context)
        lo = self.parameterAsDouble(parameters, self.MIN_SSM, context)
        hi = self.parameterAsDouble(parameters, self.MAX_SSM, context)
        if not lo < hi:
            raise QgsProcessingException(self.tr(f"MIN_SSM ({lo}) must be below MAX_SSM ({hi})"))
        # empty (or the former -1) = estimate the gain; empty (or 0) bandwidth = AICc
        gain = -1.0 if parameters.get(self.ANOMALY_GAIN) in (None, "") else \
            self.parameterAsDouble(parameters, self.ANOMALY_GAIN, context)
        bandwidth = 0.0 if parameters.get(self.BANDWIDTH_KM) in (None, "") else \
            self.parameterAsDouble(parameters, self.BANDWIDTH_KM, context)
        noise = -1.0 if parameters.get(self.RETRIEVAL_ERROR) in (None, "") else \
            self.parameterAsDouble(parameters, self.RETRIEVAL_ERROR, context)
        out_ssm = self.parameterAsString(parameters, self.OUTPUT_SSM, context)
        out_flags = self.parameterAsString(parameters, self.OUTPUT_FLAGS, context)
        out_unc = self.parameterAsString(parameters, self.OUTPUT_UNCERTAINTY, context)
        coverage = self.parameterAsFileOutput(parameters, self.OUTPUT_COVERAGE, context)

        feedback.pushInfo(self.tr(f"Method {method}; 1 km grid from {reference or lst}"))
        scheduler = (self.parameterAsString(parameters, self.DASK_SCHEDULER, context) or "").strip()
        with self.core_call(feedback):
            from ..core.downscale.options import DownscaleOptions
            from ..core.runner import make_executor

            options = DownscaleOptions(
                method=method, kernel=kernel, bandwidth_km=bandwidth or None,
                pool_days=self.parameterAsInt(parameters, self.POOL_DAYS, context),
                seam_days=self.parameterAsInt(parameters, self.SEAM_DAYS, context),
                n_trees=self.parameterAsInt(parameters, self.TREES, context),
                seed=self.parameterAsInt(parameters, self.SEED, context),
                n_jobs=self.parameterAsInt(parameters, self.THREADS, context),
                residual=None if residual == "auto" else residual, ssm_range=(lo, hi),
                anomaly_gain=gain if gain >= 0 else "auto",
                anomaly_days=self.parameterAsInt(parameters, self.ANOMALY_DAYS, context),
                noise_sd=noise if noise >= 0 else None,
                ssm_percent=self.parameterAsBool(parameters, self.SSM_PERCENT, context),
            )
            with make_executor(scheduler) as executor:
                feedback.pushInfo(self.tr(f"Days processed on {executor.workers} {executor.name} worker(s)"
                                          + (f" at {scheduler}" if scheduler else "")))
                summary = downscale_series(
                    ssm, lst, ndvi, albedo, out_ssm, out_flags, out_unc,
                    dem=dem, lst_flags=lst_flags, lst_diff=lst_diff, reference=reference, start=start, end=end,
                    options=options, coverage_csv=coverage, executor=executor, **self.progress_args(feedback),
                )
        feedback.pushInfo(self.tr(
            f"{len(summary.days)} day(s) written to {out_ssm}; mean coverage of land pixels "
            f"{summary.mean_estimated_pct:.2f} %"))
        group = run_group_name(context, self.tr("1 km soil moisture"), out_ssm)
        for key, kind, title in (("ssm", "ssm", self.tr("Soil moisture")),
                                 ("uncertainty", "ssm_uncertainty", self.tr("Uncertainty")),
                                 ("flags", "ssm_flags", self.tr("Flags"))):
            files = summary.files.get(key, [])
            write_sidecars(files, kind)
            load_series_on_completion(context, files, kind, group, title)
        return {
            self.OUTPUT_SSM: out_ssm,
            self.OUTPUT_FLAGS: out_flags,
            self.OUTPUT_UNCERTAINTY: out_unc,
            self.OUTPUT_COVERAGE: coverage,
            "DAYS": len(summary.days),
            "SKIPPED_DAYS": len(summary.skipped),
            "MEAN_COVERAGE": summary.mean_estimated_pct,
        }

"""Pre-flight of the series tools: one call per entry point, after the inputs are opened
and the days chosen and before the first day is computed, that

- guards the outputs (:mod:`.outputs`: never over an input, writable, distinct),
- checks units and undeclared fill on the first days of every input (:mod:`.checks`),
- surveys the output folders for a rerun (other days, another method) and removes the
  stale ``.aux.xml`` statistics of the files to be replaced.

Kept apart from the methods' runners so that those stay about the science.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .checks import check_inputs, check_readable
from .outputs import RASTER_ENDINGS, Output, guard_outputs, prepare_series_outputs


class PercentCoarse:
    """A coarse SSM source in percent, read as m3/m3 (values divided by 100)."""

    def __init__(self, source):
        self.source = source

    @property
    def dates(self) -> list[dt.date]:
        return self.source.dates

    def read(self, day: dt.date) -> np.ndarray:
        return np.asarray(self.source.read(day), dtype=np.float32) / np.float32(100.0)


def downscale_preflight(
    *,
    ssm_series,
    layers: Mapping[str, object],
    flags_src,
    reference: str | Path | None,
    out_ssm: Path,
    out_flags: Path,
    out_unc: Path | None,
    coverage_csv: str | Path | None,
    days: Sequence[dt.date],
    method: str,
    ssm_percent: bool = False,
) -> None:
    """Everything :func:`~.downscale.run.downscale_series` checks before computing."""
    inputs: list[tuple[str, object]] = [("coarse soil moisture", ssm_series.folder)]
    inputs += [(k, getattr(v, "path", v)) for k, v in layers.items()]
    if flags_src is not None:
        inputs.append(("LST flags", flags_src.path))
    if reference:
        inputs.append(("reference grid", reference))
    # the series files themselves too (a coverage CSV named like an input file)
    inputs += [("coarse soil moisture", p) for p in ssm_series.files.values()]
    for k, v in layers.items():
        s = getattr(v, "series", None)
        if s is not None:
            inputs += [(k, p) for p in s.files.values()]
    outs = [Output("SSM output folder", Path(out_ssm), folder=True, prefix="ssm"),
            Output("flags output folder", Path(out_flags), folder=True, prefix="ssm_flags")]
    if out_unc is not None:
        outs.append(Output("uncertainty output folder", Path(out_unc), folder=True, prefix="ssm_uncertainty"))
    if coverage_csv:
        outs.append(Output("coverage table", Path(coverage_csv)))
    guard_outputs(inputs, outs)
    run_files = [ssm_series.files[d] for d in days if d in ssm_series.files]
    for v in layers.values():
        s = getattr(v, "series", None)
        if s is not None:
            run_files += sorted({s.files[fd] for fd in (v.date_for(d) for d in days) if fd is not None})
    check_readable(run_files)
    check_inputs({"ssm": ssm_series, **{k: v for k, v in layers.items()}}, days, ssm_percent=ssm_percent,
                 fix_option="SSM_PERCENT (ssm_percent=True)")
    prepare_series_outputs([("SSM output folder", out_ssm, "ssm"), ("flags output folder", out_flags, "ssm_flags"),
                            ("uncertainty output folder", out_unc, "ssm_uncertainty")], days, method)


def gapfill_preflight(
    *,
    lst_series,
    background_series,
    ndvi_src,
    dem: str | Path | None,
    out_lst: Path,
    out_flags: Path,
    lst_prefix: str,
    flag_prefix: str,
    days: Sequence[dt.date],
    method: str,
) -> None:
    """Everything :func:`~.lst.gapfill.gapfill_series` checks before computing."""
    inputs: list[tuple[str, object]] = [("clear-sky LST", lst_series.folder)]
    inputs += [("clear-sky LST", p) for p in lst_series.files.values()]
    if background_series is not None:
        inputs.append(("background LST", background_series.folder))
    if ndvi_src is not None:
        inputs.append(("NDVI", ndvi_src.path))
    if dem:
        inputs.append(("DEM", dem))
    guard_outputs(inputs, [Output("LST output folder", Path(out_lst), folder=True, prefix=lst_prefix),
                           Output("flag output folder", Path(out_flags), folder=True, prefix=flag_prefix)])
    check_readable([lst_series.files[d] for d in days if d in lst_series.files and not str(lst_series.files[d]).lower()
                    .endswith(".hdf")])
    check_inputs({"lst": lst_series, "background": background_series, "ndvi": ndvi_src, "dem": dem}, days)
    prepare_series_outputs([("LST output folder", out_lst, lst_prefix), ("flag output folder", out_flags, flag_prefix)],
                           days, None)


def validation_inputs(products: Mapping[str, str | Path] | Sequence[str | Path], stations, flags) -> list[tuple[str, object]]:
    """The inputs of a validation, for :func:`~.outputs.guard_outputs`."""
    items = products.items() if isinstance(products, Mapping) else [(str(p), p) for p in products]
    out: list[tuple[str, object]] = []
    for k, v in items:
        out.append((f"product {k!r}", v))
        if v and Path(str(v)).is_dir():  # its rasters too: an output named like one of them is refused as such
            out += [(f"product {k!r}", f) for f in Path(str(v)).iterdir() if f.suffix.lower() in RASTER_ENDINGS]
    src = getattr(stations, "source", stations)
    if src:
        out.append(("stations", src))
    if flags:
        out.append(("flags", flags))
    return out


__all__ = ["PercentCoarse", "downscale_preflight", "gapfill_preflight", "validation_inputs"]

"""Output guards: no tool ever writes over one of its inputs, and every output can be
written before the first day is computed.

Every entry point (Processing algorithm, ``qgis_process``, the core API) calls
:func:`guard_outputs` with its inputs and outputs before doing any work:

- an output *file* equal to an input file, or an output *folder* equal to an input folder,
  is refused; paths are compared resolved (symbolic links, ``..``) and by device and inode
  (hard links, bind mounts, case-insensitive file systems);
- an output file that lies in an input series folder with a raster ending (it would join
  the input series), a file output that is an existing folder and a folder output that is
  an existing file are refused;
- two outputs that would overwrite each other are refused;
- every output's folder (or its nearest existing parent) is probed for writing.

:func:`survey_series_folder` lists what a rerun into a series folder would mix with: files of
other days and files written by another method; :func:`remove_stale_aux` removes the
``.aux.xml`` statistics QGIS/GDAL keep next to rasters that are about to be replaced.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SsmError

log = logging.getLogger(__name__)

#: endings of files a series reader would pick up (see :data:`series.RASTER_SUFFIXES`)
RASTER_ENDINGS = (".tif", ".tiff", ".vrt", ".img", ".hdf", ".h5", ".nc", ".nc4", ".jp2")
#: how many file names a warning lists
MAX_LISTED = 8


class OutputError(SsmError):
    """An output that would overwrite an input, overwrite another output, or cannot be written."""


PathLike = str | os.PathLike


def _key(p: Path) -> tuple[Path, tuple[int, int] | None]:
    """The resolved path and, when it exists, its (device, inode)."""
    try:
        rp = p.expanduser().resolve()
    except (OSError, RuntimeError):  # pragma: no cover - unresolvable loops
        rp = p.absolute()
    try:
        st = os.stat(rp)
        return rp, (st.st_dev, st.st_ino)
    except OSError:
        return rp, None


def same_path(a: PathLike, b: PathLike) -> bool:
    """True when ``a`` and ``b`` name the same file or folder (resolved path or inode)."""
    ka, kb = _key(Path(a)), _key(Path(b))
    return ka[0] == kb[0] or (ka[1] is not None and ka[1] == kb[1])


def _is_file_path(p: str) -> bool:
    """Paths that are not local files (GDAL virtual paths, sub-datasets, memory layers)."""
    return bool(p) and not p.upper().startswith(("HDF", "NETCDF", "/VSI", "MEMORY:", "TEMPORARY_OUTPUT")) and ":" not in p[2:]


def _nearest_existing(p: Path) -> Path:
    q = p.expanduser().absolute()
    while not q.exists() and q.parent != q:
        q = q.parent
    return q


def _probe_writable(folder: Path) -> str | None:
    """None when a file can be created in ``folder``, else the reason."""
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{folder} is not writable (permission denied)"
    try:
        fd, name = tempfile.mkstemp(prefix=".ssm_write_probe", dir=folder)
    except OSError as exc:
        return f"no file can be created in {folder} ({exc.strerror or exc})"
    os.close(fd)
    os.unlink(name)
    return None


@dataclass
class Output:
    """One output: ``label`` (as the user knows it, e.g. ``OUTPUT_SSM``), ``path`` and
    whether it is a ``folder`` (a series) or a single file."""

    label: str
    path: Path
    folder: bool = False
    prefix: str | None = None  # series file prefix (two series may share a folder with distinct prefixes)
    extra: list[Path] = field(default_factory=list)  # side files written next to a file output


def guard_outputs(inputs: Mapping[str, PathLike | None] | Iterable[tuple[str, PathLike | None]],
                  outputs: Iterable[Output]) -> None:
    """Raise :class:`OutputError` when an output would overwrite an input or another
    output, or cannot be written (see the module docstring). ``inputs`` maps labels to
    paths (files or folders; None and non-file sources are ignored)."""
    items = list(inputs.items()) if isinstance(inputs, Mapping) else list(inputs)
    ins = [(lab, Path(str(p))) for lab, p in items if p not in (None, "") and _is_file_path(str(p))]
    outs = [o for o in outputs if o.path not in (None, "") and _is_file_path(str(o.path))]
    in_keys = [(lab, i, _key(i)) for lab, i in ins]
    for o in outs:
        targets = [o.path, *o.extra]
        for t in targets:
            kt = _key(t)
            for lab, i, ki in in_keys:
                if kt[0] == ki[0] or (kt[1] is not None and kt[1] == ki[1]):
                    kind = "folder" if i.is_dir() else "file"
                    raise OutputError(
                        f"{o.label} = {t}: this is the {lab} input {kind} ({i}); inputs are never overwritten: "
                        f"choose another {'folder' if o.folder else 'file name'}"
                    )
        for lab, i in ins:
            if not o.folder and i.is_dir():
                for t in targets:
                    if t.suffix.lower() in RASTER_ENDINGS and same_path(t.parent, i):
                        raise OutputError(f"{o.label} = {t}: it would be written into the {lab} input series {i}; "
                                          "choose another folder")
        if o.folder and o.path.exists() and not o.path.is_dir():
            raise OutputError(f"{o.label} = {o.path}: an existing file, but a folder is expected here; "
                              "choose a folder (new or existing)")
        if not o.folder:
            for t in targets:
                if t.is_dir():
                    raise OutputError(f"{o.label} = {t}: an existing folder, but a file is expected here; "
                                      f"give a file name (e.g. {t / ('output' + (t.suffix or '.csv'))})")
    for k, a in enumerate(outs):
        for b in outs[k + 1 :]:
            for ta in [a.path, *a.extra]:
                for tb in [b.path, *b.extra]:
                    if same_path(ta, tb) and not (a.folder and b.folder and _distinct_prefixes(a, b)):
                        raise OutputError(f"{a.label} and {b.label} are the same {'folder' if a.folder else 'file'} "
                                          f"({ta}): they would overwrite each other; give each its own")
    for o in outs:
        where = o.path if o.folder else o.path.parent
        why = _probe_writable(_nearest_existing(where))
        if why:
            raise OutputError(f"{o.label} = {o.path}: cannot be written: {why}; choose a folder you can write to "
                              "(nothing was computed or written)")


def _distinct_prefixes(a: Output, b: Output) -> bool:
    """Two series in one folder are fine when their file prefixes differ."""
    return bool(a.prefix and b.prefix and a.prefix != b.prefix)


# ---------------------------------------------------------------------------------------
# reruns into series folders
# ---------------------------------------------------------------------------------------


@dataclass
class FolderSurvey:
    """What a series folder already holds: ``replaced`` (files of this run's days, which
    will be replaced), ``other_days`` (files of days this run does not write) and
    ``other_method`` (files of this run's days written by another method)."""

    folder: Path
    replaced: list[Path] = field(default_factory=list)
    other_days: list[Path] = field(default_factory=list)
    other_method: list[tuple[Path, str]] = field(default_factory=list)


def _names(paths: Iterable[Path]) -> str:
    paths = list(paths)
    more = f" and {len(paths) - MAX_LISTED} more" if len(paths) > MAX_LISTED else ""
    return ", ".join(p.name for p in paths[:MAX_LISTED]) + more


def survey_series_folder(folder: PathLike, prefix: str, days: Iterable[dt.date], method: str | None = None,
                         method_item: str = "METHOD") -> FolderSurvey:
    """The ``<prefix>_YYYY-MM-DD.tif`` files already in ``folder``, sorted into this run's
    days (to be replaced, and among them those of another ``method``) and other days."""
    from .series import date_from_name

    folder = Path(folder)
    out = FolderSurvey(folder)
    if not folder.is_dir():
        return out
    want = set(days)
    for p in sorted(folder.glob(f"{prefix}_*.tif")):
        rest = p.stem[len(prefix) + 1 :]
        if len(rest) != 10:  # another prefix that starts with this one (ssm_flags_ vs ssm_)
            continue
        d = date_from_name(p.name)
        if d is None:
            continue
        if d not in want:
            out.other_days.append(p)
            continue
        out.replaced.append(p)
        if method is not None:
            other = _metadata_item(p, method_item)
            if other and other != method:
                out.other_method.append((p, other))
    return out


def _metadata_item(path: Path, item: str) -> str | None:
    try:
        from osgeo import gdal

        ds = gdal.Open(str(path))
        return None if ds is None else ds.GetMetadataItem(item)
    except RuntimeError:
        return None


def warn_rerun(survey: FolderSurvey, label: str, method: str | None = None) -> None:
    """Log what a rerun into ``survey.folder`` mixes with (other days, another method)."""
    if survey.other_days:
        log.warning("%s %s already holds %d file(s) of other days, from an earlier run, which stay next to this run's "
                    "(the folder will mix two runs; use a new folder to keep them apart): %s", label, survey.folder,
                    len(survey.other_days), _names(survey.other_days))
    if survey.other_method:
        methods = sorted({m for _, m in survey.other_method})
        log.warning("%s %s holds %d file(s) of these days written by another method (%s); they are replaced by %s: %s",
                    label, survey.folder, len(survey.other_method), ", ".join(methods), method or "this run",
                    _names(p for p, _ in survey.other_method))
    elif survey.replaced:
        log.info("%s %s: %d existing file(s) of these days are replaced", label, survey.folder, len(survey.replaced))


def remove_stale_aux(paths: Iterable[PathLike]) -> int:
    """Remove the ``<file>.aux.xml`` side files (GDAL/QGIS statistics, histograms) of
    rasters that are about to be replaced, so that no stale statistics survive. Returns
    how many were removed."""
    n = 0
    for p in paths:
        aux = Path(str(p) + ".aux.xml")
        try:
            aux.unlink()
            n += 1
        except FileNotFoundError:
            pass
        except OSError as exc:  # pragma: no cover - reported, not fatal
            log.warning("%s: cannot remove the stale statistics file (%s)", aux, exc)
    return n


def prepare_series_outputs(folders: Iterable[tuple[str, PathLike | None, str]], days: Iterable[dt.date],
                           method: str | None = None) -> list[FolderSurvey]:
    """Survey each ``(label, folder, prefix)`` for a rerun (warning about other days and
    methods) and remove the stale ``.aux.xml`` of the files of ``days`` to be replaced."""
    days = list(days)
    out = []
    for label, folder, prefix in folders:
        if folder in (None, ""):
            continue
        s = survey_series_folder(folder, prefix, days, method)
        warn_rerun(s, label, method)
        remove_stale_aux(s.replaced)
        out.append(s)
    return out


__all__ = [
    "FolderSurvey",
    "Output",
    "OutputError",
    "guard_outputs",
    "prepare_series_outputs",
    "remove_stale_aux",
    "same_path",
    "survey_series_folder",
    "warn_rerun",
]

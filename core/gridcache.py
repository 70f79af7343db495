"""On-disk cache of set-up arrays that depend only on the grids.

Work such as the fine-to-coarse membership index or the fine pixels' positions in the
coarse grid depends only on the two grids (CRS, geotransform, size) and the code that
computes it, not on the day or the run. :func:`cached_arrays` keys such arrays by a
*grid signature* (a SHA-256 of both grids' CRS WKT, geotransform and shape, any extra
parameters and :data:`CODE_VERSION`) and keeps them as ``.npz`` files in
:func:`cache_folder`: ``$SSM_GRID_CACHE`` if set (``off`` disables the cache), else
``$XDG_CACHE_HOME/ssm_downscaling/grids`` (``~/.cache/...`` without XDG). Files are
written atomically (a temporary name in the same folder, then renamed); an unwritable
folder or a file that cannot be read back (truncated, corrupt, another signature) only
costs a rebuild, logged, never a failure.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

from .grid import Grid

log = logging.getLogger(__name__)

#: bump when the computation of any cached array changes (old files are then ignored)
CODE_VERSION = 2
#: environment variable naming the cache folder (``off``, ``0`` or ``none`` disable it)
ENV_FOLDER = "SSM_GRID_CACHE"
#: files kept per kind; the least recently used beyond this are deleted
MAX_FILES = 12
_SIG_KEY = "_signature"


def cache_folder() -> Path | None:
    """The folder of cached grid arrays, or None when caching is switched off."""
    env = os.environ.get(ENV_FOLDER)
    if env is not None:
        if env.strip().lower() in ("", "off", "0", "none", "no"):
            return None
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ssm_downscaling" / "grids"


def grid_signature(grids: Iterable[Grid], extra: object = ()) -> str:
    """SHA-256 (hex) of the grids' CRS WKT, geotransform (exact float values) and shape,
    of ``extra`` (anything JSON-serialisable) and of :data:`CODE_VERSION`."""
    parts = [[g.crs_wkt, [float(v).hex() for v in g.transform], g.width, g.height] for g in grids]
    text = json.dumps({"version": CODE_VERSION, "grids": parts, "extra": extra}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cached_arrays(
    kind: str,
    grids: Iterable[Grid],
    build: Callable[[], Mapping[str, np.ndarray]],
    extra: object = (),
    folder: str | Path | None = None,
) -> dict[str, np.ndarray]:
    """The arrays ``build()`` returns for these grids, from the cache when present.

    ``kind`` names the set (a file-name prefix); ``extra`` holds any other parameter the
    arrays depend on. ``folder`` overrides :func:`cache_folder`.
    """
    sig = grid_signature(list(grids), extra)
    where = Path(folder) if folder is not None else cache_folder()
    if where is None:
        return dict(build())
    path = where / f"{kind}-{sig[:40]}.npz"
    if path.exists():
        got = _load(path, sig)
        if got is not None:
            log.debug("%s: grid set-up loaded from the cache", path)
            return got
    arrays = {k: np.asarray(v) for k, v in build().items()}
    _store(path, sig, arrays, kind)
    return arrays


def _load(path: Path, sig: str) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            if _SIG_KEY not in z.files or str(z[_SIG_KEY]) != sig:
                raise ValueError("it belongs to other grids or another version")
            out = {k: z[k] for k in z.files if k != _SIG_KEY}
        os.utime(path)  # recently used
        return out
    except Exception as exc:  # any unreadable file is rebuilt
        log.warning("%s: the cached grid set-up cannot be used (%s); it is computed again", path, exc)
        try:
            path.unlink()
        except OSError:
            pass
        return None


def _store(path: Path, sig: str, arrays: Mapping[str, np.ndarray], kind: str) -> None:
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays, **{_SIG_KEY: np.array(sig)})
        os.replace(tmp, path)
    except OSError as exc:
        log.info("%s: cannot cache the grid set-up (%s); it will be computed again next run", path.parent, exc)
        try:
            tmp.unlink()
        except OSError:
            pass
        return
    _prune(path.parent, kind)


def _prune(folder: Path, kind: str, keep: int | None = None) -> None:
    """Delete the least recently used files of ``kind`` beyond ``keep`` (:data:`MAX_FILES`)."""
    keep = MAX_FILES if keep is None else keep
    try:
        files = sorted(folder.glob(f"{kind}-*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
        for p in files[keep:]:
            p.unlink()
    except OSError:  # pragma: no cover - a concurrent prune
        pass

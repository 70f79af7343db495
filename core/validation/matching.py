"""Which (station, day) pairs enter the metrics: matched days and the sky condition.

A pair is matched when the station and the product both have a value that day; when
several products are compared, only the days on which *all* of them have a value count
(``common_days=True``), so that their metrics describe the same sample.

The sky condition of a (station, day) comes from a flag series read at the station:

* SSM flags (DESIGN.md 3): 0 coarse observed and 1 seam-filled were retrieved with an
  observed (clear-sky) LST -> clear; 2 LST gap-filled under cloud and 3 both -> cloudy;
  255 or no file -> unknown.
* LST flags or a cloud mask: 0 clear -> clear, 1 gap-filled / cloud -> cloudy; else unknown.

Unknown days count in "all" only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from ..errors import SsmError
from ..grid import open_raster
from ..series import DailySeries

log = logging.getLogger(__name__)

CLEAR, CLOUDY, UNKNOWN = 0, 1, -1
#: flag values meaning clear-sky / cloudy, per kind of flag series
FLAG_RULES: dict[str, dict[int, tuple[int, ...]]] = {
    "ssm": {CLEAR: (0, 1), CLOUDY: (2, 3)},
    "lst": {CLEAR: (0,), CLOUDY: (1,)},
}
FLAG_KINDS = ("auto", "ssm", "lst")
#: the subsets every product is evaluated on
SUBSETS = ("all", "clear", "cloudy")


def detect_flag_kind(series: DailySeries, values: np.ndarray | None = None) -> str:
    """``"ssm"`` or ``"lst"`` for a flag series: from the legend in the band description
    of its first file (mentions of seams mean SSM flags), else from the values seen at the
    stations (any 2 or 3 means SSM flags; only 0 and 1 mean LST flags / a cloud mask)."""
    ds = open_raster(series.path(series.start))
    desc = (ds.GetRasterBand(1).GetDescription() or "").lower()
    md = " ".join(str(v) for v in (ds.GetMetadata() or {}).values()).lower()
    ds = None
    text = desc + " " + md
    if "seam" in text or "ssm flag" in text:
        return "ssm"
    if "lst flag" in text:
        return "lst"
    if values is not None:
        v = np.asarray(values)
        v = v[np.isfinite(v)]
        if np.isin(v, (2, 3)).any():
            return "ssm"
        if v.size:
            log.info("%s: flags hold only 0/1 at the stations: read as LST flags / cloud mask "
                     "(0 clear, 1 cloudy)", series.folder)
            return "lst"
    if "cloud" in text or "gap" in text:
        return "lst"
    return "ssm"


def sky_condition(flags: np.ndarray, kind: str) -> np.ndarray:
    """int8 array of :data:`CLEAR`, :data:`CLOUDY` or :data:`UNKNOWN` from flag values."""
    if kind not in FLAG_RULES:
        raise SsmError(f"Unknown flag kind {kind!r}; choose from {', '.join(FLAG_RULES)}")
    f = np.asarray(flags, dtype=np.float64)
    out = np.full(f.shape, UNKNOWN, dtype=np.int8)
    for cls, vals in FLAG_RULES[kind].items():
        out[np.isin(f, vals)] = cls
    return out


def matched_masks(
    reference: np.ndarray, products: Mapping[str, np.ndarray], common_days: bool = True
) -> dict[str, np.ndarray]:
    """Per product, the bool ``(n, n_days)`` mask of matched (station, day) pairs."""
    ref_ok = np.isfinite(reference)
    own = {k: ref_ok & np.isfinite(v) for k, v in products.items()}
    if not common_days or len(products) < 2:
        return own
    common = ref_ok.copy()
    for m in own.values():
        common &= m
    return {k: common for k in products}


def subset_mask(mask: np.ndarray, condition: np.ndarray | None, subset: str) -> np.ndarray | None:
    """The matched pairs of one subset (None when a clear/cloudy split has no flags)."""
    if subset == "all":
        return mask
    if condition is None:
        return None
    want = {"clear": CLEAR, "cloudy": CLOUDY}[subset]
    return mask & (condition == want)

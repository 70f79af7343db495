"""Gap filling in chunks of days: every executor writes the serial run's bytes; a chunk's
warm-up rebuilds the window state of a run that started earlier."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from ssm_downscaling.core.errors import Cancelled
from ssm_downscaling.core.lst import gapfill_series
from ssm_downscaling.core.lst.chunked import GapfillJob, chunk_tasks, warmup_days
from ssm_downscaling.core.lst.options import GapfillOptions
from ssm_downscaling.core.runner import ProcessExecutor, SerialExecutor, ThreadExecutor, dask_available
from ssm_downscaling.core.series import read_raster

#: a fixed background model (the learned one depends on the days processed)
FIXED = dict(lapse_rate=-0.006, background_smoothing=0.0, window=5)


def _run(s, out, **kw):
    root = s["root"]
    return gapfill_series(root / "lst", root / "bg", out / "lst", out / "flags", dem=root / "dem.tif",
                          ndvi=root / "ndvi", **FIXED, **kw)


def _digests(out) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*.tif"))}


def _stack(out) -> np.ndarray:
    return np.array([read_raster(p) for p in sorted((out / "lst").glob("*.tif"))])


def test_warmup_is_the_anomaly_windows_reach():
    assert warmup_days(GapfillOptions(method="anomaly", window=15)) == 14
    for m in ("temporal", "spatial", "background"):
        assert warmup_days(GapfillOptions(method=m, window=15)) == 0


def test_chunk_tasks_cover_the_targets_once_with_their_warmup():
    job = GapfillJob.__new__(GapfillJob)
    object.__setattr__(job, "options", GapfillOptions(method="anomaly", window=5))
    days = list(range(100, 112))
    tasks = chunk_tasks(job, days, days[2:10], chunk_days=3)
    assert [t[3] for t in tasks] == [(102, 103, 104), (105, 106, 107), (108, 109)]
    assert [t[2] for t in tasks] == [(100, 101), (101, 102, 103, 104), (104, 105, 106, 107)]  # 4 days back
    assert tasks[1][1] == tuple(range(100, 110))  # the first warm-up day - 2 (day 99 has no data) .. the last + 2
    assert all(set(t[3]) <= set(t[1]) and set(t[2]) <= set(t[1]) for t in tasks)


def test_every_executor_writes_the_serial_bytes(series, tmp_path):
    s = series(days=8)
    ref = tmp_path / "serial"
    summary = _run(s, ref, executor=SerialExecutor(), chunk_days=2)
    assert summary.days_processed == 8
    want = _digests(ref)
    assert len(want) == 16
    for name, ex in (("threads", ThreadExecutor(2)), ("processes", ProcessExecutor(2))):
        with ex:
            got = _run(s, tmp_path / name, executor=ex, chunk_days=2)
        assert _digests(tmp_path / name) == want, name
        assert (got.pixels_observed, got.pixels_filled, got.pixels_unfilled) == \
            (summary.pixels_observed, summary.pixels_filled, summary.pixels_unfilled)
        assert [p.name for p in got.lst_files] == [p.name for p in summary.lst_files]


@pytest.mark.skipif(not dask_available(), reason="dask.distributed is not installed (optional)")
def test_dask_local_cluster_writes_the_serial_bytes(series, tmp_path):
    from ssm_downscaling.core.runner import DaskExecutor

    s = series(days=6)
    _run(s, tmp_path / "serial", chunk_days=2)
    with DaskExecutor(None, 2) as ex:
        _run(s, tmp_path / "dask", executor=ex, chunk_days=2)
    assert _digests(tmp_path / "dask") == _digests(tmp_path / "serial")


def test_a_warmup_back_to_the_first_day_gives_the_one_chunk_run(series, tmp_path):
    s = series(days=12)
    _run(s, tmp_path / "one", chunk_days=100)
    _run(s, tmp_path / "four", chunk_days=4)
    one, four = _digests(tmp_path / "one"), _digests(tmp_path / "four")
    first8 = [k for k in sorted(one) if k.startswith("lst/") and k < "lst/lst_2019-06-09"]
    assert len(first8) == 8
    # the second chunk's 4 warm-up days reach back to the first day: the same walk
    assert [four[k] for k in first8] == [one[k] for k in first8]
    # the third chunk's walk starts at day 5: days 3-4 are added without the days before
    # them, which changes their regional fit slightly, and so the days after
    last4 = [k for k in sorted(one) if k.startswith("lst/") and k >= "lst/lst_2019-06-09"]
    assert [four[k] for k in last4] != [one[k] for k in last4]
    a, b = _stack(tmp_path / "four"), _stack(tmp_path / "one")
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, atol=0.05, rtol=0)


def test_cancel_from_a_thread_worker_stops_the_run(series, tmp_path):
    s = series(days=8)
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(Cancelled), ThreadExecutor(2) as ex:
        _run(s, tmp_path / "c", chunk_days=2, executor=ex, is_cancelled=cancelled)
    assert len(list((tmp_path / "c" / "lst").glob("*.tif"))) < 8

"""Days in parallel: every executor writes the same bytes as the serial run; the run-wide
statistics equal the all-days estimators; memory does not grow with the run's length."""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np
import pytest

from ssm_downscaling.core.downscale import downscale_series
from ssm_downscaling.core.downscale.options import DownscaleOptions
from ssm_downscaling.core.downscale.run import (
    GAIN_OFFSETS,
    Engine,
    FolderInputs,
    sample_days,
)
from ssm_downscaling.core.downscale.scale import _anomaly_pairs, anomaly_gains, gains_from_pairs
from ssm_downscaling.core.runner import ProcessExecutor, SerialExecutor, ThreadExecutor, dask_available
from ssm_downscaling.core.series import DailySeries

scene_mod = pytest.importorskip("ssm_downscaling.core.scene")


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 90 km x 72 km, 9-day scene with seams and clouds."""
    out = tmp_path_factory.mktemp("par_scene")
    return scene_mod.small_scene(out / "scene", width_km=90, height_km=72, days=9, seed=4, cloudiness=0.5).out_dir


def _inputs(sc):
    return dict(ssm_dir=sc / "inputs" / "ssm_coarse", lst_dir=sc / "truth" / "lst", ndvi=sc / "inputs" / "ndvi",
                albedo=sc / "inputs" / "albedo", dem=sc / "inputs" / "dem.tif", lst_flags=sc / "truth" / "cloud")


def _run(sc, out, **kw):
    i = _inputs(sc)
    return downscale_series(i["ssm_dir"], i["lst_dir"], i["ndvi"], i["albedo"], out / "ssm", out / "flags",
                            out / "unc", dem=i["dem"], lst_flags=i["lst_flags"], coverage_csv=out / "coverage.csv",
                            **kw)


def _digests(out) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def serial(scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial")
    s = _run(scene, out, executor=SerialExecutor())
    assert len(s.days) == 9
    return out, _digests(out)


def test_threads_and_processes_write_the_serial_bytes(scene, serial, tmp_path):
    ref_out, ref = serial
    assert len(ref) == 9 * 3 + 1
    for name, ex, chunk in (("threads", ThreadExecutor(2), 2), ("processes", ProcessExecutor(2), 3)):
        with ex:
            _run(scene, tmp_path / name, executor=ex, chunk_days=chunk)
        assert _digests(tmp_path / name) == ref, name
    assert not any(p.name.startswith(".ssm-run") for p in (tmp_path / "threads" / "ssm").iterdir())


@pytest.mark.skipif(not dask_available(), reason="dask.distributed is not installed (optional: "
                    "apt install python3-dask python3-distributed)")
def test_dask_local_cluster_writes_the_serial_bytes(scene, serial, tmp_path):
    from ssm_downscaling.core.runner import DaskExecutor

    _, ref = serial
    with DaskExecutor(None, 2) as ex:
        assert ex.workers == 2
        _run(scene, tmp_path / "dask", executor=ex, chunk_days=2)
    got = _digests(tmp_path / "dask")
    assert got == ref
    assert not list((tmp_path / "dask" / "ssm").glob(".ssm-run*"))  # the scratch next to the outputs is gone


def test_options_object_gives_the_same_run_as_keywords(scene, tmp_path):
    opt = DownscaleOptions(residual="coherent", anomaly_days=0, seam_days=3)
    _run(scene, tmp_path / "a", options=opt, executor=ThreadExecutor(2), chunk_days=2)
    _run(scene, tmp_path / "b", residual="coherent", anomaly_days=0, seam_days=3)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")


def test_gains_from_per_day_pairs_equal_the_all_days_estimate(scene):
    opt = DownscaleOptions()
    fine_src, coarse_src, m = FolderInputs(**_inputs(scene)).open(opt)
    from ssm_downscaling.core.downscale.methods import make_downscaler

    eng = Engine(make_downscaler("gwr", fine_src.names, **opt.estimator_params()), fine_src, coarse_src, m, opt)
    days = DailySeries.from_folder(_inputs(scene)["ssm_dir"]).dates
    aggs = [eng.aggregate(d)[1:] for d in days]
    per: dict = {off: {} for off in GAIN_OFFSETS}
    for data, count in aggs:  # one day at a time, as the workers do
        for off, entries in _anomaly_pairs(eng.template, [(data, count)], GAIN_OFFSETS, 2, None).items():
            per[off].update(entries)
    for window in (0, 1):
        assert gains_from_pairs(per, window) == anomaly_gains(eng.template, aggs, window=window)


@pytest.mark.parametrize("method", ["gwr", "forest"])
def test_slim_day_prediction_is_the_full_one_without_its_uncertainty(scene, method):
    """A neighbouring day's prediction (its values and cell means) made without the
    uncertainty's work has the bits of the full prediction."""
    from ssm_downscaling.core.downscale.methods import make_downscaler

    opt = DownscaleOptions(method=method)
    fine_src, coarse_src, m = FolderInputs(**_inputs(scene)).open(opt)
    eng = Engine(make_downscaler(method, fine_src.names, **opt.estimator_params()), fine_src, coarse_src, m, opt)
    d = DailySeries.from_folder(_inputs(scene)["ssm_dir"]).dates[3]
    est, data, count = eng.aggregate(d)
    est, _, why = eng.fit_day(d, (est, data, count), {d.toordinal(): np.where(count > 0, data.y, np.nan)}, [])
    assert not why
    full = eng.predict_day(d, est)
    slim = eng.predict_day(d, est, slim=True)
    assert set(slim) == {"pred", "mean"} and np.isfinite(full["unc"]).any()
    for k in slim:
        assert slim[k].tobytes() == full[k].tobytes(), k


def test_sample_days_is_every_day_of_a_short_run_and_bounded_blocks_of_a_long_one():
    days = [dt.date(2003, 1, 1) + dt.timedelta(days=i) for i in range(6205)]
    assert sample_days(days[:300], 366) == days[:300]
    s = sample_days(days, 366, block=8)
    assert len(s) <= 366 and s == sorted(set(s)) and s[0] == days[0] and s[-1] == days[-1]
    gaps = np.diff([d.toordinal() for d in s])
    assert (gaps == 1).sum() >= len(s) - 366 // 8 - 1  # consecutive days (one- and two-day lags) within blocks
    assert len(sample_days(days[:9], 4, block=8)) == 4


def test_statistics_from_a_sample_of_days(scene, serial, tmp_path):
    """A run longer than stat_days takes its gains, covariance and persistent anomaly from
    a sample of days; as long as the run is within stat_days nothing changes."""
    _, ref = serial
    _run(scene, tmp_path / "all", stat_days=9)
    assert _digests(tmp_path / "all") == ref
    s = _run(scene, tmp_path / "four", stat_days=4, executor=ThreadExecutor(2), chunk_days=2)
    assert len(s.days) == 9 and _digests(tmp_path / "four") != ref
    for r in s.coverage:
        assert 0 <= r["anomaly_gain"] <= 2 and 0 < r["retrieval_error"] < 0.2


def _live(cls, fitted: bool = False) -> int:
    import gc

    return sum(1 for o in gc.get_objects() if isinstance(o, cls) and (not fitted or hasattr(o, "coef_")))


def test_per_day_state_does_not_accumulate_over_the_run(scene, tmp_path, monkeypatch):
    """While a day is fitted and while it is corrected, the run holds a bounded window of
    days' coarse data and fitted estimators: the most alive is the same for a run of 3 days
    and of 9 days (a run that kept every day's state would hold 9)."""
    from ssm_downscaling.core.downscale.base import CoarseData
    from ssm_downscaling.core.downscale.gwr import GWRDownscaler

    days = DailySeries.from_folder(_inputs(scene)["ssm_dir"]).dates
    peak = {"data": 0, "fits": 0}

    def watching(method):
        def wrapped(*a, **k):
            peak["data"] = max(peak["data"], _live(CoarseData))
            peak["fits"] = max(peak["fits"], _live(GWRDownscaler, fitted=True))
            return method(*a, **k)
        return wrapped

    monkeypatch.setattr(Engine, "fit_day", watching(Engine.fit_day))
    monkeypatch.setattr(Engine, "apply", watching(Engine.apply))
    peaks = {}
    for n in (3, 9):
        peak.update(data=0, fits=0)
        s = _run(scene, tmp_path / str(n), end=days[n - 1], seam_days=1, chunk_days=2)
        assert len(s.days) == n
        peaks[n] = dict(peak)
    assert peaks[3]["data"] >= 2 and peaks[3]["fits"] >= 1  # the watch sees the window
    assert peaks[9]["data"] <= peaks[3]["data"] + 1 and peaks[9]["data"] < 9, peaks
    assert peaks[9]["fits"] <= peaks[3]["fits"] + 1 and peaks[9]["fits"] < 9, peaks


@pytest.fixture(scope="module")
def long_scene(tmp_path_factory):
    """A 60 km x 48 km, 40-day scene."""
    out = tmp_path_factory.mktemp("long_scene")
    return scene_mod.small_scene(out / "scene", width_km=60, height_km=48, days=40, seed=9, cloudiness=0.4).out_dir


def test_scratch_holds_a_window_of_days_whatever_the_runs_length(long_scene, tmp_path, monkeypatch):
    """The last pass streams the days in blocks and drops the state no later block reads:
    the most days' fitted state on the scratch folder at once is the same for a run of 24
    and of 40 days (a run that kept every day's state would hold 24 and 40), and the
    outputs are the bytes of a run in one block."""
    from ssm_downscaling.core.downscale import daystore
    from ssm_downscaling.core.downscale.run import stream_block_days

    assert stream_block_days(SerialExecutor(), 1) == 4 and stream_block_days(SerialExecutor(), 8) == 32
    monkeypatch.setenv("SSM_STORE_MB", "0")  # every day's state in the folder
    days = DailySeries.from_folder(_inputs(long_scene)["ssm_dir"]).dates
    live = {"now": set(), "most": 0}
    put, drop = daystore.DayStore.put, daystore.DayStore.drop

    def putting(self, kind, day, obj):
        put(self, kind, day, obj)
        if kind == "fit":
            live["now"].add(day)
            live["most"] = max(live["most"], len(live["now"]))

    def dropping(self, kind, day):
        drop(self, kind, day)
        if kind == "fit":
            live["now"].discard(day)

    monkeypatch.setattr(daystore.DayStore, "put", putting)
    monkeypatch.setattr(daystore.DayStore, "drop", dropping)
    most = {}
    for n in (24, 40):
        live.update(now=set(), most=0)
        s = _run(long_scene, tmp_path / str(n), end=days[n - 1], stat_days=6, chunk_days=1)  # blocks of 4 days
        assert len(s.days) == n
        most[n] = live["most"]
    assert most[40] == most[24] < 24, most
    monkeypatch.undo()
    _run(long_scene, tmp_path / "one", end=days[39], stat_days=6, chunk_days=40)  # one block
    assert _digests(tmp_path / "one") == _digests(tmp_path / "40")


def test_blocks_grow_as_workers_join(long_scene, tmp_path, monkeypatch):
    """A cluster that grows during the run (dask-jobqueue) gets larger blocks as its
    workers join: here 1, 2, 3, 4 workers at the starts of the blocks give blocks of 4, 8,
    12 and 16 days; same bytes."""
    import ssm_downscaling.core.downscale.run as run_mod

    sizes = []
    real = run_mod.stream_block_days

    class Growing(SerialExecutor):
        joined = 0  # workers join as blocks start

        @property
        def workers(self) -> int:
            return max(1, self.joined)

        @workers.setter
        def workers(self, value: int) -> None:
            pass

    def block_days(executor, chunk):
        executor.joined += 1
        sizes.append(real(executor, chunk))
        return sizes[-1]

    monkeypatch.setattr(run_mod, "stream_block_days", block_days)
    days = DailySeries.from_folder(_inputs(long_scene)["ssm_dir"]).dates
    _run(long_scene, tmp_path / "grow", end=days[39], stat_days=6, chunk_days=1, executor=Growing())
    assert sizes == [4, 8, 12, 16]
    monkeypatch.undo()
    _run(long_scene, tmp_path / "one", end=days[39], stat_days=6, chunk_days=40)
    assert _digests(tmp_path / "grow") == _digests(tmp_path / "one")


def test_chunks_give_every_worker_a_task():
    """A stage's days are cut into tasks of ``chunk_days``, shorter when there are fewer
    than ``chunk_days`` per worker (10 days on 2 workers: 5 + 5, not 8 + 2)."""
    from ssm_downscaling.core.downscale.run import chunks

    days = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(10)]
    assert [len(c) for c in chunks(days, 8)] == [8, 2]
    assert [len(c) for c in chunks(days, 8, workers=2)] == [5, 5]
    assert [len(c) for c in chunks(days, 8, workers=3)] == [4, 4, 2]
    assert [len(c) for c in chunks(days, 3, workers=2)] == [3, 3, 3, 1]  # enough days: chunk_days
    assert [len(c) for c in chunks(days, 8, workers=16)] == [1] * 10
    assert chunks([], 8, workers=2) == []
    assert sum(chunks(days, 8, workers=3), []) == days


def test_days_without_coarse_data_are_skipped_in_either_pass(long_scene, tmp_path):
    """A day that cannot be fitted, in the statistics' sample (pass 1) or after it (pass
    2), is skipped with its reason; streaming in blocks writes the bytes of one block."""
    import shutil

    from osgeo import gdal

    sc = tmp_path / "scene"
    shutil.copytree(long_scene, sc)
    days = DailySeries.from_folder(_inputs(sc)["ssm_dir"]).dates
    empty = [days[2], days[25]]  # in the 6-day sample; streamed
    for d in empty:
        ds = gdal.Open(str(sc / "inputs" / "ssm_coarse" / f"ssm_coarse_{d.isoformat()}.tif"), gdal.GA_Update)
        band = ds.GetRasterBand(1)
        band.Fill(band.GetNoDataValue())
        ds = band = None
    for name, chunk in (("blocks", 1), ("one", 40)):
        s = _run(sc, tmp_path / name, end=days[31], stat_days=6, chunk_days=chunk, seam_days=0)
        assert sorted(s.skipped) == empty and "no coarse soil moisture" in s.skipped[empty[1]]
        assert len(s.days) == 30
    assert _digests(tmp_path / "blocks") == _digests(tmp_path / "one")


def test_cancel_inside_the_day_tasks_leaves_only_complete_days(scene, tmp_path):
    """The caller's cancel check reaches the tasks running in this process: a run on two
    threads stops within a day and leaves complete files only."""
    from ssm_downscaling.core.errors import Cancelled
    from ssm_downscaling.core.series import read_raster

    calls = {"n": 0}

    def cancel_later() -> bool:
        calls["n"] += 1
        return calls["n"] > 40

    out = tmp_path / "c"
    with pytest.raises(Cancelled), ThreadExecutor(2) as ex:
        _run(scene, out, executor=ex, chunk_days=9, is_cancelled=cancel_later)
    assert calls["n"] <= 60  # not after the whole 9-day chunk
    for p in out.rglob("*"):
        assert p.is_dir() or (p.suffix == ".tif" and read_raster(p).shape) , p
    assert not list(out.rglob(".ssm-run*")) and not list(out.rglob("*.part*"))


def test_state_kept_on_the_scratch_folder_writes_the_in_memory_bytes(scene, serial, tmp_path, monkeypatch):
    """A serial run keeps its per-day state in memory; with no memory budget it goes to the
    scratch folder (as for worker processes) and the outputs are the same bytes."""
    monkeypatch.setenv("SSM_STORE_MB", "0")
    out = tmp_path / "disk"
    _run(scene, out, executor=SerialExecutor())
    assert _digests(out) == serial[1]


def test_day_store_memory_layer_copies_spills_and_forgets(tmp_path, monkeypatch):
    from ssm_downscaling.core.downscale import daystore

    monkeypatch.setenv("SSM_STORE_MB", "1")  # 1 MiB
    d = dt.date(2020, 1, 1)
    store = daystore.DayStore(tmp_path, local=True)
    obj = {"a": np.arange(10.0)}
    store.put("fit", d, obj)
    assert not any(tmp_path.iterdir())  # held in memory
    got = store.get("fit", d)
    got["a"][:] = -1  # a fresh copy each time, as from a file
    np.testing.assert_array_equal(store.get("fit", d)["a"], np.arange(10.0))
    assert store.has("fit", d)
    big = np.zeros(200_000)  # 1.6 MB: over the budget, goes to the folder
    store.put_array("anom", d, big)
    assert (tmp_path / f"anom_{d.toordinal()}.npy").exists()
    np.testing.assert_array_equal(store.pop_array("anom", d), big)
    small = np.ones(1000)
    store.put_array("anom", d, small)
    assert store.pop_array("anom", d) is small  # in memory: handed back, not copied
    with pytest.raises(FileNotFoundError):
        store.pop_array("anom", d)  # taken once
    store.drop("fit", d)
    assert not store.has("fit", d)
    store.put("res", d, np.ones(3))
    store.close()
    assert not store.has("res", d)
    assert daystore._MEMORY.bytes == 0
    # a store of worker processes never keeps state in memory
    far = daystore.DayStore(tmp_path / "w", local=False)
    (tmp_path / "w").mkdir()
    far.put("fit", d, obj)
    assert (tmp_path / "w" / f"fit_{d.toordinal()}.pkl").exists()


def test_day_store_does_not_pickle_what_cannot_fit_and_never_shadows_the_folder(tmp_path, monkeypatch):
    from ssm_downscaling.core.downscale import daystore

    monkeypatch.setenv("SSM_STORE_MB", "1")  # 1 MiB
    assert daystore.array_bytes({"p": np.zeros(10), "q": (np.zeros(5, np.float32), 3), "e": object()}) == 100
    d = dt.date(2020, 1, 1)
    store = daystore.DayStore(tmp_path, local=True)
    store.put("pred", d, {"pred": np.zeros(10)})  # in memory
    dumped = []
    real = daystore.pickle.dumps
    monkeypatch.setattr(daystore.pickle, "dumps", lambda *a, **k: dumped.append(1) or real(*a, **k))
    big = {"pred": np.full(200_000, 2.0)}  # 1.6 MB: the same key, now too large for memory
    store.put("pred", d, big)
    assert not dumped  # not pickled in memory first
    assert (tmp_path / f"pred_{d.toordinal()}.pkl").exists()
    np.testing.assert_array_equal(store.get("pred", d)["pred"], big["pred"])  # the folder's, not the old one
    assert daystore._MEMORY.bytes == 0
    store.close()


def test_large_days_run_one_at_a_time_in_threads():
    """Threads of one process share its memory: China-sized days (20 M px) run one after
    another there; small days, worker processes and a serial run keep their defaults."""
    from ssm_downscaling.core.downscale.run import DAY_BYTES_PER_PIXEL, THREAD_EXTRA_BYTES, days_in_flight

    threads = ThreadExecutor(2)
    try:
        assert days_in_flight(threads, (4000, 5000)) == 1
        assert days_in_flight(threads, (800, 1000)) is None
        edge = int(THREAD_EXTRA_BYTES // DAY_BYTES_PER_PIXEL)  # one more day just fits, or just does not
        assert days_in_flight(threads, (1, edge)) is None and days_in_flight(threads, (1, edge + 1)) == 1
    finally:
        threads.close()
    four = ThreadExecutor(4)
    try:
        assert days_in_flight(four, (4000, 1500)) == 2  # 6 M px: one more day beside the first
    finally:
        four.close()
    assert days_in_flight(SerialExecutor(), (4000, 5000)) is None
    procs = ProcessExecutor(2)  # each worker process has its own memory
    try:
        assert days_in_flight(procs, (4000, 5000)) is None
    finally:
        procs.close()


def test_threads_run_large_days_in_the_calling_thread(scene, serial, tmp_path, monkeypatch):
    """Days too large for two in one process run in the thread that runs the engine (one
    malloc arena), with the serial bytes."""
    import threading

    from ssm_downscaling.core.downscale import run as run_mod

    monkeypatch.setattr(run_mod, "THREAD_EXTRA_BYTES", 0)  # every day is "too large"
    seen = set()
    real = run_mod._task_apply
    monkeypatch.setattr(run_mod, "_task_apply", lambda task: seen.add(threading.get_ident()) or real(task))
    with ThreadExecutor(2) as ex:
        _run(scene, tmp_path / "t", executor=ex, chunk_days=2)
    assert seen == {threading.get_ident()}
    assert _digests(tmp_path / "t") == serial[1]


def test_static_accumulation_kernels_equal_numpy():
    from ssm_downscaling.core.downscale import daypass

    rng = np.random.default_rng(1)
    days = [rng.normal(0, 0.02, 5000).astype(np.float32) for _ in range(4)]
    for a in days:
        a[rng.random(a.size) < 0.3] = np.nan
    res = []
    for acc_impl, mean_impl in ((daypass.accumulate_finite.numba, daypass.finite_mean.numba),
                                (daypass.accumulate_finite.numpy, daypass.finite_mean.numpy)):
        if acc_impl is None:
            continue
        acc, cnt = np.zeros(5000), np.zeros(5000, dtype=np.int32)
        for a in days:
            acc_impl(acc, cnt, a)
        out = np.empty(5000, dtype=np.float32)
        mean_impl(acc, cnt, out)
        res.append((acc, cnt, out))
    for r in res[1:]:
        for x, y in zip(r, res[0]):
            np.testing.assert_array_equal(x, y)
    acc, cnt, out = res[0]
    stack = np.vstack(days).astype(np.float64)
    np.testing.assert_array_equal(cnt, np.isfinite(stack).sum(axis=0))
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(out, np.nanmean(stack, axis=0), rtol=1e-6, atol=1e-9)
    assert np.isnan(out[cnt == 0]).all()


def test_finite_mean_of_one_array_is_that_array_and_of_many_the_kernels_mean():
    from ssm_downscaling.core.downscale import daypass

    rng = np.random.default_rng(2)
    days = [rng.normal(0, 0.02, (40, 50)).astype(np.float32) for _ in range(3)]
    for a in days:
        a[rng.random(a.shape) < 0.3] = np.nan
    days[0][0, :3] = (np.inf, -np.inf, np.nan)
    for n in (1, 2, 3):
        m = daypass.FiniteMean(2000)
        for a in days[:n]:
            m.add(a.copy())
        got = m.mean()
        acc, cnt = np.zeros(2000), np.zeros(2000, dtype=np.int32)
        for a in days[:n]:
            daypass.accumulate_finite(acc, cnt, a.reshape(-1))
        want = np.empty(2000, dtype=np.float32)
        daypass.finite_mean(acc, cnt, want)
        assert got.dtype == np.float32 and got.shape == (2000,)
        np.testing.assert_array_equal(got, want)
        if n == 1:
            assert np.isnan(got[:3]).all()
    empty = daypass.FiniteMean(5).mean()
    assert empty.shape == (5,) and np.isnan(empty).all()
    with pytest.raises(ValueError, match="expected 5"):
        daypass.FiniteMean(5).add(np.zeros(4, dtype=np.float32))


def test_flag_and_variance_kernels_equal_numpy():
    from ssm_downscaling.core.downscale import daypass

    rng = np.random.default_rng(2)
    m, n = 20_000, 40
    field_ = rng.uniform(0.05, 0.4, m).astype(np.float32)
    field_[rng.random(m) < 0.1] = np.nan
    index = rng.integers(-1, n, m).astype(np.int32)
    observed = rng.random(n) < 0.6
    lstf = rng.random(m) < 0.3
    unc0 = rng.uniform(0.01, 0.05, m).astype(np.float32)
    var = rng.uniform(0, 1e-3, m).astype(np.float32)
    outs = []
    for fl, av in ((daypass.flag_pixels.numba, daypass.add_variance.numba),
                   (daypass.flag_pixels.numpy, daypass.add_variance.numpy)):
        if fl is None:
            continue
        u = np.empty_like(unc0)
        av(unc0, var, u)
        flags = np.empty(m, dtype=np.uint8)
        counts = fl(field_, index, observed, lstf, u, flags)
        outs.append((u, flags, np.asarray(counts)))
    for o in outs[1:]:
        for a, b in zip(o, outs[0]):
            np.testing.assert_array_equal(a, b)
    u, flags, counts = outs[0]
    valid = np.isfinite(field_)
    obs = (index >= 0) & observed[np.maximum(index, 0)]
    assert (flags[~valid] == 255).all() and np.isnan(u[~valid]).all()
    assert ((flags[valid] & 1) == (~obs[valid])).all()  # 0 observed, 1 seam
    assert ((flags[valid] & 2) > 0).tolist() == lstf[valid].tolist()
    assert counts.tolist() == [valid.sum(), (valid & ~obs).sum(), (valid & lstf).sum()]
    np.testing.assert_allclose(u[valid], np.sqrt(unc0[valid].astype(float) ** 2 + var[valid]), rtol=1e-6)


def test_whole_block_prediction_writes_the_bytes_of_the_row_gather(scene, serial, tmp_path, monkeypatch):
    """GWR predicts whole blocks (rows with a missing predictor come back NaN); the
    generic path gathers the complete rows first: both write the same bytes."""
    from ssm_downscaling.core.downscale.gwr import GWRDownscaler

    monkeypatch.setattr(GWRDownscaler, "predicts_missing", False)
    out = tmp_path / "gather"
    _run(scene, out, executor=SerialExecutor())
    assert _digests(out) == serial[1]

"""numpy's huge-page request: decided once per process, by the kernel's mode and the
SSM_HUGE_PAGES setting."""

from __future__ import annotations

import pytest

from ssm_downscaling.core import memory


@pytest.fixture
def fake(monkeypatch):
    calls = []
    monkeypatch.setattr(memory, "_numpy_switch", lambda: calls.append)
    monkeypatch.setattr(memory, "_decided", None)
    monkeypatch.delenv("SSM_HUGE_PAGES", raising=False)
    return calls


def test_thp_mode_reads_the_bracketed_choice(tmp_path):
    p = tmp_path / "enabled"
    p.write_text("always [madvise] never\n")
    assert memory.thp_mode(str(p)) == "madvise"
    p.write_text("[always] madvise never\n")
    assert memory.thp_mode(str(p)) == "always"
    assert memory.thp_mode(str(tmp_path / "missing")) is None


@pytest.mark.parametrize("mode, want, calls", [("madvise", False, [False]), ("always", None, []),
                                               ("never", None, []), (None, None, [])])
def test_request_off_only_in_madvise_mode(fake, monkeypatch, mode, want, calls):
    monkeypatch.setattr(memory, "thp_mode", lambda: mode)
    assert memory.tune_huge_pages() is want
    assert fake == calls
    if want is not None:  # decided once per process
        assert memory.tune_huge_pages() is want and fake == calls


@pytest.mark.parametrize("setting, want", [("on", True), ("off", False), ("OFF ", False)])
def test_the_setting_wins(fake, monkeypatch, setting, want):
    monkeypatch.setattr(memory, "thp_mode", lambda: "always")
    monkeypatch.setenv("SSM_HUGE_PAGES", setting)
    assert memory.tune_huge_pages() is want and fake == [want]


def test_numpy_has_the_switch():
    assert memory._numpy_switch() is not None


# --- glibc's reuse of freed blocks during a run -----------------------------------------

glibc = pytest.mark.skipif(memory._glibc() is None or memory.thp_mode() == "always",
                           reason="needs glibc, and page faults of 4 kB pages (huge pages not always on)")


def _faults_touching(nbytes: int) -> int:
    """Minor page faults of allocating and writing a fresh ``nbytes`` array."""
    import resource

    import numpy as np

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.empty(nbytes, dtype=np.uint8)
    a[:] = 1
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    del a
    return after - before


@pytest.fixture
def small_pages():
    """numpy's huge-page request off (page faults count 4 kB pages), restored after."""
    switch = memory._numpy_switch()
    was = switch(False) if switch is not None else None
    yield
    if switch is not None:
        switch(was)


@glibc
def test_freed_blocks_are_reused_inside_and_given_back_after(monkeypatch, small_pages):
    monkeypatch.delenv("SSM_REUSE_MEMORY", raising=False)
    for k in (*memory._MALLOC_ENV, "GLIBC_TUNABLES"):
        monkeypatch.delenv(k, raising=False)
    size = 64 << 20  # above glibc's largest mmap threshold (32 MB): always mmapped by default
    pages = size // 4096
    assert _faults_touching(size) > pages // 2  # by default: a fresh mapping each time
    with memory.keep_freed_memory() as tuned:
        assert tuned
        _faults_touching(size)  # the heap grows once
        assert _faults_touching(size) < pages // 10  # then the freed block is reused
    assert memory._keep_depth == 0
    assert _faults_touching(size) > pages // 2  # defaults back: mapped afresh again


class _FakeLibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad):
        self.calls.append(("trim", pad))
        return 1


def test_nested_and_decorated_uses_tune_once_and_restore_once(monkeypatch):
    fake = _FakeLibc()
    monkeypatch.setattr(memory, "_glibc", lambda: fake)
    monkeypatch.setenv("SSM_REUSE_MEMORY", "on")

    @memory.keep_freed_memory()
    def task():
        return len(fake.calls)

    with memory.keep_freed_memory():
        assert fake.calls == [("mallopt", memory.M_MMAP_MAX, 0),
                              ("mallopt", memory.M_TRIM_THRESHOLD, memory.KEEP_TRIM_THRESHOLD)]
        assert task() == 2  # nested: nothing more
    assert fake.calls[2:] == [("mallopt", memory.M_TRIM_THRESHOLD, memory.GLIBC_TRIM_THRESHOLD),
                              ("mallopt", memory.M_MMAP_MAX, memory.GLIBC_MMAP_MAX), ("trim", 0)]
    with pytest.raises(ZeroDivisionError):  # restored when the run fails too
        with memory.keep_freed_memory():
            raise ZeroDivisionError
    assert fake.calls[-1] == ("trim", 0) and memory._keep_depth == 0


@pytest.mark.parametrize("env, want", [({}, True), ({"SSM_REUSE_MEMORY": "off"}, False),
                                       ({"MALLOC_ARENA_MAX": "2"}, True),
                                       ({"MALLOC_MMAP_THRESHOLD_": "65536"}, False),
                                       ({"GLIBC_TUNABLES": "glibc.malloc.mmap_max=0"}, False),
                                       ({"GLIBC_TUNABLES": "glibc.rtld.nns=4"}, True),
                                       ({"MALLOC_TRIM_THRESHOLD_": "1", "SSM_REUSE_MEMORY": "ON"}, True)])
def test_the_users_own_malloc_settings_win_unless_told(env, want):
    assert memory.reuse_wanted(env) is want


def test_off_leaves_the_allocator_alone(monkeypatch):
    fake = _FakeLibc()
    monkeypatch.setattr(memory, "_glibc", lambda: fake)
    monkeypatch.setenv("SSM_REUSE_MEMORY", "off")
    with memory.keep_freed_memory() as tuned:
        assert tuned is False
    assert fake.calls == []


def test_trim_between_days_only_while_a_run_keeps_freed_blocks(monkeypatch):
    fake = _FakeLibc()
    monkeypatch.setattr(memory, "_glibc", lambda: fake)
    monkeypatch.setenv("SSM_REUSE_MEMORY", "on")
    assert memory.trim_freed() is False and fake.calls == []
    with memory.keep_freed_memory():
        monkeypatch.setattr(memory, "heap_bytes", lambda libc: (100, 101))  # more free than used
        assert memory.trim_freed() is True
        assert fake.calls[-1] == ("trim", 0)
        n = len(fake.calls)
        monkeypatch.setattr(memory, "heap_bytes", lambda libc: (100, 100))
        assert memory.trim_freed() is False and len(fake.calls) == n
        monkeypatch.setattr(memory, "heap_bytes", lambda libc: None)  # cannot ask: trim
        assert memory.trim_freed() is True and len(fake.calls) == n + 1
    n = len(fake.calls)
    assert memory.trim_freed() is False and len(fake.calls) == n


@glibc
def test_trim_gives_the_free_heap_back(monkeypatch, small_pages):
    import resource

    import numpy as np

    monkeypatch.setenv("SSM_REUSE_MEMORY", "on")

    def rss_kb() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * (resource.getpagesize() // 1024)

    with memory.keep_freed_memory():
        used0 = (memory.heap_bytes() or (0, 0))[0]  # what the test session holds already
        size = max(96 << 20, used0 + (64 << 20))  # a hole larger than everything in use
        a = np.empty(size, dtype=np.uint8)
        a[:] = 1
        keep = np.ones(1024)  # a live block above it: the heap's top cannot shrink
        del a
        if memory.heap_bytes() is not None:
            used, free = memory.heap_bytes()
            assert free >= size - (1 << 20) and free > used  # the hole: more free than used
        held = rss_kb()
        assert memory.trim_freed()
        assert rss_kb() < held - size // 2048  # most of the hole is given back (kB)
        del keep


@glibc
def test_heap_bytes_counts_a_live_block():
    import numpy as np

    if memory.heap_bytes() is None:
        pytest.skip("glibc before 2.33: no mallinfo2")
    used0, _ = memory.heap_bytes()
    a = np.ones(8 << 20, dtype=np.uint8)  # 8 MB, from the heap or mapped on its own
    used1, _ = memory.heap_bytes()
    assert used1 - used0 >= 8 << 20
    del a


def test_dasks_own_worker_setting_does_not_turn_reuse_off(monkeypatch):
    """Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in every worker it starts; that is not the
    user's choice: runs there still reuse freed blocks, and the worker's value comes back."""
    pytest.importorskip("distributed")
    import dask.config

    with dask.config.set({"distributed.nanny.pre-spawn-environ": {"MALLOC_TRIM_THRESHOLD_": 65536}}):
        assert memory.reuse_wanted({"MALLOC_TRIM_THRESHOLD_": "65536"}) is True
        assert memory.reuse_wanted({"MALLOC_TRIM_THRESHOLD_": "1000"}) is False  # the user's own value
        assert memory.reuse_wanted({"MALLOC_TRIM_THRESHOLD_": "65536", "MALLOC_MMAP_MAX_": "0"}) is False
        assert memory.reuse_wanted({"MALLOC_TRIM_THRESHOLD_": "65536", "SSM_REUSE_MEMORY": "off"}) is False
        fake = _FakeLibc()
        monkeypatch.setattr(memory, "_glibc", lambda: fake)
        monkeypatch.delenv("SSM_REUSE_MEMORY", raising=False)
        monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
        with memory.keep_freed_memory() as tuned:
            assert tuned
        assert fake.calls[-3:] == [("mallopt", memory.M_TRIM_THRESHOLD, 65536),
                                   ("mallopt", memory.M_MMAP_MAX, memory.GLIBC_MMAP_MAX), ("trim", 0)]
    with dask.config.set({"distributed.nanny.pre-spawn-environ": {}}):  # a Dask that sets nothing
        assert memory.reuse_wanted({"MALLOC_TRIM_THRESHOLD_": "65536"}) is False

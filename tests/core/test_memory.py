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

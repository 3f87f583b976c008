"""psched.shell.paths: the state directory."""

import stat

from psched.shell.paths import history_path, sched_home


def test_sched_home_is_created_private(tmp_path, monkeypatch):
    home = tmp_path / "a" / "state"
    monkeypatch.setenv("SCHED_HOME", str(home))
    assert sched_home() == home
    assert home.is_dir()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert history_path() == home / "history"


def test_sched_home_defaults_to_dot_sched(tmp_path, monkeypatch):
    monkeypatch.delenv("SCHED_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert sched_home(create=False) == tmp_path / ".sched"
    assert not (tmp_path / ".sched").exists()
    assert sched_home() == tmp_path / ".sched"
    assert stat.S_IMODE((tmp_path / ".sched").stat().st_mode) == 0o700


def test_sched_and_pcontrol_resolve_one_home(tmp_path, monkeypatch):
    from pcontrol.paths import Paths

    monkeypatch.setenv("HOME", str(tmp_path))
    for value, expected in ((" ", tmp_path / ".sched"), ("", tmp_path / ".sched"),
                            (str(tmp_path / "h"), tmp_path / "h"), ("~/x", tmp_path / "x")):
        monkeypatch.setenv("SCHED_HOME", value)
        assert sched_home(create=False) == Paths.for_home().home == expected, repr(value)

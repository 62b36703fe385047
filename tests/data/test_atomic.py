"""Atomic files: whole or nothing, temporary names safe across processes and hosts, stale leftovers swept."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from unitwave.data.atomic import atomic_path, atomic_write_text, sweep_temp_files, temp_path


def test_error_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]


def test_shared_names_carry_host_and_pid_single_writer_names_do_not(tmp_path):
    shared, single = temp_path(tmp_path / "m.jsonl"), temp_path(tmp_path / "x.wav", shared=False)
    assert shared.name.endswith(f".{os.getpid()}.tmp") and shared.name.startswith(".m.jsonl.")
    assert single.name == ".x.wav.tmp"


def test_sweep_removes_only_dead_processes_leftovers(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = temp_path(tmp_path / "run.json").with_name(
        temp_path(tmp_path / "run.json").name.replace(f".{os.getpid()}.", f".{pid}.")
    )
    stale.write_text("x")
    live = temp_path(tmp_path / "manifest.jsonl")
    live.write_text("y")
    other_host = tmp_path / ".run.json.otherhost.1.tmp"
    other_host.write_text("z")
    assert sweep_temp_files(tmp_path) == 1
    assert not stale.exists() and live.exists() and other_host.exists()

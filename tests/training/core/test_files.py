"""Atomic writes: the target is the old file or the new one, never half, and nothing is left behind."""

from __future__ import annotations

import os
import stat

import pytest

from training.core.files import atomic_path, atomic_write_bytes, remove_stale_temporaries


def test_a_failed_write_keeps_the_old_file_and_leaves_no_debris(tmp_path):
    target = tmp_path / "label.json"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["label.json"]


def test_a_write_replaces_with_the_mode_a_plain_open_gives(tmp_path):
    target = tmp_path / "picture.jpg"
    atomic_write_bytes(target, b"new")
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")  # the umask's mode, as every other file of the run folder
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_the_suffix_is_kept_for_writers_that_pick_the_format_from_it(tmp_path):
    with atomic_path(tmp_path / "best.keras", suffix=".keras") as tmp:
        assert tmp.name.endswith(".keras") and tmp.parent == tmp_path
        tmp.write_bytes(b"model")
    assert (tmp_path / "best.keras").read_bytes() == b"model"


def test_stale_temporaries_are_removed_and_other_files_kept(tmp_path):
    stale = tmp_path / ".facetracker-last.keras.1234abcd.part.keras"
    stale.write_bytes(b"interrupted")
    (tmp_path / "last.keras").write_bytes(b"kept")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert sorted(os.listdir(tmp_path)) == ["last.keras"]

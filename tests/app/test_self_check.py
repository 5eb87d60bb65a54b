"""The headless self-check that a packager (and the bundle test) trusts: it must pass when the
engine works and fail, loudly, when a step does not."""

from __future__ import annotations

import io
import sys

import pytest

from desktop import self_check


@pytest.mark.slow
def test_self_check_runs_every_step_and_passes():
    out = io.StringIO()
    assert self_check.run_self_check(out=out) == 0
    lines = out.getvalue().splitlines()
    for step in ("Qt bindings", "load TensorFlow/Keras", "build and save a model", "detect on a generated 640x480 frame",
                 "detect with a light runtime's copy", "train 1 epoch on generated pictures"):
        assert any(line.startswith(f"ok    {step}") for line in lines), (step, lines)
    assert "in a child process" in out.getvalue()  # the Train tab's own route, not an in-process call
    assert "TensorBoard logs written" in out.getvalue()
    assert "made by an export child, run in CPU (LiteRT)" in out.getvalue()
    assert lines[-1].startswith("FaceTracker self-check PASSED; device: CPU")


def test_self_check_fails_when_the_training_child_fails(monkeypatch, capsys):
    # A child that dies as a broken bundle's would: the check must say so and exit non-zero.
    monkeypatch.setattr("desktop.child_process.training_command",
                        lambda args: [sys.executable, "-c", "import sys; sys.exit('no training here')"])
    out = io.StringIO()
    assert self_check.run_self_check(out=out) == 1
    text = out.getvalue()
    assert "FAIL  train 1 epoch on generated pictures" in text and "no training here" in text
    assert "FAILED (1 step(s))" in text


def test_self_check_refuses_the_pyside6_release_that_aborts_the_train_tab(monkeypatch):
    import PySide6

    monkeypatch.setattr(PySide6, "__version__", "6.12.0")
    monkeypatch.setattr(sys, "version_info", (3, 11, 7, "final", 0))
    try:
        self_check.check_qt_bindings()
    except RuntimeError as exc:
        assert "6.12.0" in str(exc) and "3.11" in str(exc) and "<6.12" in str(exc)
    else:
        raise AssertionError("PySide6 6.12.0 under Python 3.11 passed the check")
    monkeypatch.setattr(sys, "version_info", (3, 12, 1, "final", 0))
    assert "PySide6 6.12.0" in self_check.check_qt_bindings()  # None is immortal from 3.12 on

"""facetracker-train end to end: real demo data, real (tiny) training, real model files, real exit codes."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import pytest

from training.cli import ProgressBar, _with_default_command, build_parser, main

ENTRY_POINT = Path(sys.executable).with_name("facetracker-train")
# Small enough to train in seconds on two cores: 14 pictures, a 32-pixel model input, batches of 4.
DEMO_COUNT = 14
TRAIN_ARGS = ["--input-size", "32", "--batch-size", "4", "--no-augment"]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


def _run_main(argv: list[str]) -> tuple[int, str, str]:
    """main() in this process, with its stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> Path:
    """Made through the installed console script, as a user would."""
    out = tmp_path_factory.mktemp("cli") / "demo"
    # No skip: a CI that forgot `pip install -e .` must go red, not pass without these tests.
    assert ENTRY_POINT.exists(), f"{ENTRY_POINT} is not installed (pip install -e .)"
    done = subprocess.run(
        [str(ENTRY_POINT), "make-demo-data", str(out), "--count", str(DEMO_COUNT)],
        capture_output=True, text=True, timeout=60, env=ENV,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"Results saved to {out}"
    assert len(list(out.glob("*/images/*.jpg"))) == DEMO_COUNT
    return out


class _CtrlCAfterFirstEpoch(io.StringIO):
    """Captures stdout and sends this very process a real SIGINT once the first epoch is reported."""

    sent = False

    def write(self, text: str) -> int:
        written = super().write(text)
        if '"event": "epoch"' in text and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)
        return written


@dataclass
class Run:
    run_dir: Path
    interrupted_code: int
    interrupted_events: list[dict]
    interrupted_stderr: str
    kept_after_interrupt: bool
    resume_argv: list[str]
    resumed_code: int
    resumed_events: list[dict]
    resumed_stderr: str


@pytest.fixture(scope="module")
def trained_run(demo_data, tmp_path_factory) -> Run:
    """Train without the word `train`, press Ctrl-C after epoch 1, then run the resume command it prints.

    One run gives the JSON stream, the Ctrl-C path and resuming, at the cost of two short trainings.
    """
    run_dir = tmp_path_factory.mktemp("runs") / "first"
    out, err = _CtrlCAfterFirstEpoch(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(demo_data), "--epochs", "60", "--out", str(run_dir), "--progress", "json", *TRAIN_ARGS])
    interrupted_events = [json.loads(line) for line in out.getvalue().splitlines()]  # one JSON object a line
    kept = (run_dir / "last.keras").is_file()

    message = err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else ""
    suggested = shlex.split(message.split("continue with: ")[-1])
    resume_argv = suggested[1:] if suggested[:1] == ["facetracker-train"] else []
    if "--epochs" in resume_argv:  # epochs counts the total: ask for one more than was kept
        resume_argv[resume_argv.index("--epochs") + 1] = "2"
    resumed_code, resumed_out, resumed_err = _run_main([*resume_argv, "--progress", "json"])
    return Run(run_dir, code, interrupted_events, err.getvalue(), kept, resume_argv, resumed_code,
               [json.loads(line) for line in resumed_out.splitlines()], resumed_err)


def test_help_runs_as_a_module_without_tensorflow(demo_data):
    done = subprocess.run([sys.executable, "-m", "training", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for command in ("train", "summary", "preview", "evaluate", "predict", "make-demo-data"):
        assert command in done.stdout
    probe = (
        "import sys; from training.cli import main; "
        f"code = main(['summary', {str(demo_data)!r}]); "
        "sys.exit(code or (3 if 'tensorflow' in sys.modules else 0))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=ENV)
    assert done.returncode == 0, "summary failed or imported TensorFlow: " + done.stderr
    assert "train" in done.stdout


def test_help_and_no_arguments_in_process(capsys):
    assert main(["--help"]) == 0
    assert "facetracker-train" in capsys.readouterr().out
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_every_help_text_prints_single_percent_signs(capsys):
    """argparse formats ``help=`` strings (``%%`` there prints ``%``) but not descriptions: a ``%%`` in a
    description reaches the user as it is ("about 45 %% without a face")."""
    sub = next(action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction))
    assert "make-demo-data" in sub.choices
    for argv in ([], *([name] for name in sub.choices)):
        assert main([*argv, "--help"]) == 0
        out = capsys.readouterr().out
        assert "usage:" in out and "%%" not in out, (argv, out)
    from desktop.app import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--help"])
    assert "%%" not in capsys.readouterr().out


def test_train_is_the_default_command():
    parser = build_parser()
    implicit = parser.parse_args(_with_default_command(["data", "--epochs", "3", "--out", "runs/x"]))
    explicit = parser.parse_args(_with_default_command(["train", "data", "--epochs", "3", "--out", "runs/x"]))
    assert implicit == explicit
    assert (implicit.command, implicit.data, implicit.epochs, implicit.out) == ("train", "data", 3, "runs/x")
    assert (implicit.batch_size, implicit.backbone, implicit.progress, implicit.weights) == (8, "blazeface", "bar", "auto")
    assert implicit.lr is None and implicit.augment and not implicit.tutorial_exact


def test_summary_text_and_json(demo_data, capsys):
    assert main(["summary", str(demo_data)]) == 0
    text = capsys.readouterr().out
    assert "train" in text and "Problems: none" in text
    assert main(["summary", str(demo_data), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for split in ("train", "val", "test"):
        on_disk = len(list((demo_data / split / "images").glob("*.jpg")))
        assert summary["counts"][split]["images"] == on_disk
    assert sum(c["images"] for c in summary["counts"].values()) == DEMO_COUNT


@pytest.mark.slow
def test_train_json_progress_is_one_event_per_line(trained_run):
    events = trained_run.interrupted_events
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start"
    start = events[0]
    assert start["run_dir"] == str(trained_run.run_dir) and start["epochs"] == 60
    assert start["resumed_from_epoch"] is None
    batches = start["batches_per_epoch"]
    first_epoch = [(e["epoch"], e["batch"]) for e in events if e["event"] == "batch"][:batches]
    assert first_epoch == [(1, i) for i in range(1, batches + 1)]
    epoch = next(e for e in events if e["event"] == "epoch")
    assert epoch["epoch"] == 1
    for key in ("total_loss", "class_loss", "regress_loss", "iou", "val_total_loss", "val_class_loss",
                "val_regress_loss", "val_iou", "lr", "seconds"):
        assert isinstance(epoch[key], float), key


def test_ctrl_c_keeps_the_last_finished_epoch_and_says_how_to_resume(trained_run):
    assert trained_run.interrupted_code == 130
    assert trained_run.kept_after_interrupt
    err = trained_run.interrupted_stderr
    assert "Traceback" not in err
    message = err.strip().splitlines()[-1]
    assert message.startswith("Interrupted. Epoch 1, the last finished one, is kept in")
    assert f"--resume {trained_run.run_dir}" in message
    last = trained_run.interrupted_events[-1]
    assert last["event"] == "error" and last["interrupted"] and last["message"] == message
    assert [e["epoch"] for e in trained_run.interrupted_events if e["event"] == "epoch"] == [1]


def test_the_printed_resume_command_finishes_the_run(trained_run):
    assert trained_run.resumed_code == 0, trained_run.resumed_stderr
    assert trained_run.resume_argv[1:3] == ["--resume", str(trained_run.run_dir)]
    events = trained_run.resumed_events
    assert events[0]["event"] == "start" and events[0]["resumed_from_epoch"] == 1
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [2]
    end = events[-1]
    assert end["event"] == "end" and not end["stopped"]
    assert Path(end["best_model"]).is_file() and Path(end["last_model"]).is_file()
    history = (trained_run.run_dir / "history.csv").read_text().strip().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["1", "2"]


@pytest.mark.slow
def test_progress_bar_renders_the_real_events(trained_run):
    events = trained_run.interrupted_events[:-1] + trained_run.resumed_events[1:]  # epochs 1 and 2

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, log = Terminal(), io.StringIO()
    bar_tty, bar_log = ProgressBar(terminal), ProgressBar(log)
    for event in events:
        bar_tty(event)
        bar_log(event)
    live = terminal.getvalue()
    batches = events[0]["batches_per_epoch"]
    assert "Epoch 1/60 [" in live and f"{batches}/{batches}" in live and "ETA" in live and "\r" in live
    assert "val loss" in live
    plain = log.getvalue().splitlines()  # a log file gets whole lines only: header, warnings, one per epoch
    assert plain[0].startswith("Training on ")
    assert [line.split()[1] for line in plain if line.startswith("Epoch ")] == ["1/60", "2/2"]
    assert "\r" not in log.getvalue()


def test_preview_writes_a_grid(demo_data, tmp_path):
    out = tmp_path / "grid.png"
    code, stdout, err = _run_main(["preview", str(demo_data), "--out", str(out), "--count", "4", "--input-size", "48"])
    assert code == 0, err
    grid = cv2.imread(str(out))
    assert grid is not None and grid.shape[0] >= 2 * 48 and grid.shape[1] >= 2 * 48
    assert stdout.strip().endswith(f"Results saved to {out}")


def test_evaluate_json_agrees_with_the_library(trained_run, demo_data):
    from training.data.dataset import load_dataset
    from training.evaluation.evaluate import evaluate_model
    from training.inference.detector import Detector

    run_dir = trained_run.run_dir
    code, out, err = _run_main(["evaluate", str(run_dir / "best.keras"), str(demo_data), "--split", "val", "--json"])
    assert code == 0, err
    reported = json.loads(out)
    samples = load_dataset(demo_data).splits["val"]
    expected = evaluate_model(Detector.from_file(run_dir / "best.keras"), samples)
    assert reported["images"] == len(samples)
    assert reported["split"] == "val"
    assert reported.pop("ms_per_picture") > 0 and expected.pop("ms_per_picture") > 0  # timings differ run to run
    assert {k: reported[k] for k in expected} == pytest.approx(expected)

    code, out, _ = _run_main(["evaluate", str(run_dir / "best.keras"), str(demo_data)])
    assert code == 0
    assert "precision" in out and "mean IoU" in out


def test_predict_draws_on_copies(trained_run, demo_data, tmp_path):
    run_dir = trained_run.run_dir
    pictures = sorted((demo_data / "test" / "images").glob("*.jpg"))
    single = sorted((demo_data / "val" / "images").glob("*.jpg"))[0]
    out_dir = tmp_path / "drawn"
    code, out, err = _run_main(["predict", str(run_dir / "best.keras"), str(demo_data / "test" / "images"),
                                str(single), "--out", str(out_dir)])
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[-1] == f"Results saved to {out_dir}"
    assert len(lines) == len(pictures) + 2
    for picture in [*pictures, single]:
        drawn, original = cv2.imread(str(out_dir / picture.name)), cv2.imread(str(picture))
        assert drawn is not None and drawn.shape == original.shape
        assert (cv2.absdiff(drawn, original) > 40).any(), f"nothing drawn on {picture.name}"
        assert any(line.startswith(f"{picture}: ") for line in lines)


def _corrupt_picture_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "pictures"
    folder.mkdir()
    (folder / "broken.jpg").write_bytes(b"this is no jpeg")
    return folder


def _text_model(tmp_path: Path) -> Path:
    path = tmp_path / "notes.keras"
    path.write_text("hello")
    return path


@pytest.mark.parametrize(
    ("case", "code", "named"),
    [
        ("missing-data", 1, "nowhere"),
        ("train-missing-data-json", 1, "nowhere"),
        ("bad-model", 1, "notes.keras"),
        ("corrupt-picture", 1, "broken.jpg"),
        ("bad-option", 2, "--epochs"),
        ("resume-nothing", 1, "no_run"),
    ],
)
def test_user_errors_give_one_line_and_an_exit_code(case, code, named, demo_data, trained_run, tmp_path):
    run_dir = trained_run.run_dir
    argv = {
        "missing-data": ["summary", str(tmp_path / "nowhere")],
        "train-missing-data-json": [str(tmp_path / "nowhere"), "--progress", "json"],
        "bad-model": ["evaluate", str(_text_model(tmp_path)), str(demo_data)],
        "corrupt-picture": ["predict", str(run_dir / "best.keras"), str(_corrupt_picture_folder(tmp_path)),
                            "--out", str(tmp_path / "out")],
        "bad-option": [str(demo_data), "--epochs", "0"],
        "resume-nothing": [str(demo_data), "--resume", str(tmp_path / "no_run"), "--progress", "none"],
    }[case]
    got, out, err = _run_main(argv)
    assert got == code
    assert named in err
    assert "Traceback" not in err
    if case != "bad-option":
        assert len(err.strip().splitlines()) == 1, err
    if "--progress" in argv and "json" in argv:
        error = json.loads(out.strip().splitlines()[-1])
        assert error["event"] == "error" and named in error["message"]


def test_main_copes_with_a_broken_pipe(demo_data):
    """`facetracker-train summary DATA | head` must not print an error when the reader leaves early."""
    command = f"set -o pipefail; {shlex.quote(sys.executable)} -m training summary {shlex.quote(str(demo_data))} | true"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60, env=ENV)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""

"""One source for training settings, progress events and the run folder's rules (training.engine.settings,
training.core.events, training.engine.run_folder): the CLI, the trainer's config and the Train tab all follow it."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from training.cli import build_parser
from training.core.events import EVENT_NAMES, error_event, warning_event
from training.engine.run_folder import (
    LAST_MODEL,
    STATE_DIR,
    can_resume,
    committed_epoch,
    holds_run,
    next_run_dir,
    run_folder_for,
)
from training.engine.settings import TRAIN_SETTINGS, TrainConfig, config_from_args, config_to_args, setting
from training.model.backbones import (
    BACKBONES,
    DEFAULT_BATCH_SIZE,
    WEIGHT_CHOICES,
)

DEFAULT_EPOCHS = {name: spec.epochs for name, spec in BACKBONES.items()}
DEFAULT_LEARNING_RATES = {name: spec.learning_rate for name, spec in BACKBONES.items()}

CONFIGS = [
    TrainConfig(data="data"),
    TrainConfig(data="my data/with spaces", out="runs/x y", epochs=7, batch_size=3, backbone="vgg16",
                input_size=96, learning_rate=3.5e-4, weights="none", tutorial_exact=True, augment=False,
                mixed_precision=False, strict=True, seed=42, patience=0, time_limit=1.25),
    TrainConfig(data="d", resume="runs/train2", epochs=12),
    TrainConfig(data="d", backbone="tiny", learning_rate=0.1 + 0.2, weights="imagenet", patience=5, seed=-3),
    TrainConfig(data="d", epochs=1, batch_size=1, input_size=32, learning_rate=1e-8, time_limit=0.001),
]


def _through_the_cli(args: list[str]) -> TrainConfig:
    return config_from_args(build_parser().parse_args(args))


@pytest.mark.parametrize("config", CONFIGS, ids=range(len(CONFIGS)))
def test_a_config_survives_the_child_command_line(config):
    args = config_to_args(config)
    assert args[:2] == ["train", config.data]
    assert _through_the_cli(args) == config  # floats too: written with repr, so exactly the same number


def test_every_config_field_is_one_row_of_the_table():
    names = [s.name for s in TRAIN_SETTINGS]
    assert sorted(names) == sorted(f.name for f in fields(TrainConfig))
    assert len(set(names)) == len(names)
    assert len({s.flag for s in TRAIN_SETTINGS}) == len(names)
    defaults = TrainConfig(data="d")
    for s in TRAIN_SETTINGS[1:]:
        assert getattr(defaults, s.name) == s.default, s.name


def test_the_cli_defaults_are_the_configs():
    assert _through_the_cli(["train", "d"]) == TrainConfig(data="d")
    assert config_to_args(TrainConfig(data="d")) == ["train", "d"]  # defaults are left out
    assert setting("batch_size").default == DEFAULT_BATCH_SIZE
    assert setting("weights").choices == WEIGHT_CHOICES


def test_help_texts_name_the_real_defaults():
    epochs, lr = setting("epochs").help, setting("learning_rate").help
    for backbone, value in DEFAULT_EPOCHS.items():
        assert f"{value} for {backbone}" in epochs
    assert "2e-3 for grid" in lr and "1e-3 for tiny" in lr
    assert len(DEFAULT_LEARNING_RATES) == lr.count(" for ")
    help_text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert f"{DEFAULT_EPOCHS['grid']} for grid" in help_text.replace("\n", " ").replace("  ", " ")


def test_the_train_tab_launches_its_settings(qtbot, tmp_path):
    from desktop.train_tab import TrainTab

    tab = TrainTab(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(tab)
    assert tab.batch_spin.value() == DEFAULT_BATCH_SIZE and tab.weights_combo.currentText() == "auto"
    assert [tab.weights_combo.itemText(i) for i in range(tab.weights_combo.count())] == list(WEIGHT_CHOICES)
    assert tab.lr_edit.toolTip() == setting("learning_rate").tip()
    tab.backbone_combo.setCurrentText("vgg16")
    tab.batch_spin.setValue(5)
    tab.input_spin.setValue(64)
    tab.lr_edit.setText("2,5e-4")
    tab.augment_check.setChecked(False)
    tab.tutorial_check.setChecked(True)
    config = tab.training_config(tmp_path / "faces", tmp_path / "runs" / "r")
    assert _through_the_cli(config_to_args(config)) == config == TrainConfig(
        data=str(tmp_path / "faces"), out=str(tmp_path / "runs" / "r"), epochs=DEFAULT_EPOCHS["vgg16"], batch_size=5,
        backbone="vgg16", input_size=64, learning_rate=2.5e-4, augment=False, tutorial_exact=True)


def test_events_keep_their_json_form():
    assert EVENT_NAMES == ("start", "batch", "epoch", "warning", "end", "error")
    assert json.dumps(warning_event("w")) == '{"event": "warning", "message": "w"}'
    assert json.loads(json.dumps(error_event("x", interrupted=True, run_dir=None))) == {
        "event": "error", "message": "x", "interrupted": True, "run_dir": None}


def test_run_folders_are_named_by_one_rule(tmp_path):
    assert next_run_dir(tmp_path / "runs") == tmp_path / "runs" / "train"
    assert next_run_dir(tmp_path / "runs") == tmp_path / "runs" / "train2"
    named = next_run_dir(tmp_path / "runs", "train", create=False)
    assert named == tmp_path / "runs" / "train3" and not named.exists()
    data = tmp_path / "faces"
    data.mkdir()
    when = datetime(2024, 5, 6, 7, 8, 9)
    first = run_folder_for(data, when)
    assert first == tmp_path / "runs" / "faces-20240506-070809" and not first.exists()
    first.mkdir()
    assert run_folder_for(data, when) == tmp_path / "runs" / "faces-20240506-070809-2"


def _touch(path: Path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_resume_is_possible_exactly_when_a_checkpoint_is_there(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    assert not can_resume(run) and not can_resume(None) and not can_resume(tmp_path / "missing")
    _touch(run / LAST_MODEL)  # a model alone (the app's old rule also wanted only train_state/) is not enough
    (run / STATE_DIR).mkdir()
    assert not can_resume(run) and committed_epoch(run) is None and holds_run(run)
    (run / STATE_DIR / "epoch-000003.partial").mkdir()  # interrupted, and set aside as damaged: neither counts
    (run / STATE_DIR / "epoch-000002.damaged").mkdir()
    assert not can_resume(run)
    (run / STATE_DIR / "epoch-000001").mkdir()
    (run / STATE_DIR / "epoch-000002").mkdir()
    (run / LAST_MODEL).unlink()  # the trainer puts the published files back from the checkpoint
    assert can_resume(run) and committed_epoch(run) == 2 and holds_run(run)

    legacy = tmp_path / "legacy"  # a run saved before checkpoints had folders
    _touch(legacy / STATE_DIR / "optimizer.npz")
    _touch(legacy / STATE_DIR / "state.json", '{"epoch": 4}')
    assert can_resume(legacy) and committed_epoch(legacy) == 4

"""Fine-tuning from the model in use (issue 22): ``--from MODEL`` starts from the user's model with its own
backbone and size, trains on the whole dataset with a fine-tune's defaults, records what it started from and
compares the new model with it; a bad ``--from`` names the file and the problem. Real TensorFlow training on
small pictures; and the Train tab's "Fine-tune the model in use"."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from PySide6.QtCore import QSettings
from test_multiface_training import write_faces_dataset

from training.core.errors import TrainingError
from training.data.dataset import load_dataset
from training.data.formats.labelme import write_labelme
from training.data.kept_frames import write_kept_frame
from training.engine.finetune import finetune_verdict, inspect_start_model, load_start_network
from training.engine.settings import config_to_args
from training.engine.trainer import TrainConfig, train

INPUT = 64
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def start(tmp_path_factory) -> tuple[Path, Path]:
    """A small multiface model trained for 2 epochs (the "model in use"), and its dataset."""
    base = tmp_path_factory.mktemp("finetune")
    data = write_faces_dataset(base / "data", counts=(32, 12, 12))
    config = TrainConfig(data=str(data), backbone="multiface", epochs=2, input_size=INPUT, batch_size=8,
                         learning_rate=4e-3, out=str(base / "start"), patience=0)
    return train(config).best_model, data


def add_kept_frames(data: Path, model: Path, count: int = 6) -> list[Path]:
    """Frames kept in the Detect tab (pictures like the test split's), then reviewed: their labels corrected."""
    import cv2

    test = load_dataset(data).require_split("test")
    images = []
    for sample in test[:count]:
        frame = cv2.imread(str(sample.image_path))
        kept = write_kept_frame(frame, data, [(0.4, (1, 1, 20, 20))], reason="key", model_name=model.name)
        boxes = [tuple(b * s for b, s in zip(box, (96, 96, 96, 96), strict=True)) for box in sample.boxes]
        write_labelme(kept.label_path, kept.image_path, boxes or None, 96, 96)  # reviewed: the truth
        images.append(kept.image_path)
    return images


def test_a_fine_tune_starts_from_the_model_with_its_own_defaults_and_compares_with_it(start, tmp_path) -> None:
    model, original = start
    data = tmp_path / "data"
    shutil.copytree(original, data)
    kept = add_kept_frames(data, model)
    events: list[dict] = []
    # Asked for another backbone and size: a fine-tune keeps the model's, and says so.
    config = TrainConfig(data=str(data), from_model=str(model), backbone="tiny", input_size=96, batch_size=8,
                         out=str(tmp_path / "ft"), patience=0)
    result = train(config, on_event=events.append)

    warnings = " ".join(e["message"] for e in events if e["event"] == "warning")
    assert "keeps the model's backbone (multiface)" in warnings and "input size (64 px)" in warnings
    record = json.loads((result.run_dir / "config.json").read_text())
    assert record["config"]["epochs"] == 3 and record["config"]["learning_rate"] == pytest.approx(2e-4)  # 2e-3 / 10
    assert record["config"]["backbone"] == "multiface" and record["config"]["input_size"] == INPUT
    assert record["config"]["from_model"] == str(model)
    assert record["start_model"]["path"] == str(model.resolve())
    assert record["start_model"]["file"]["sha256"] and record["start_model"]["backbone"] == "multiface"
    assert record["started_from"] == "your model start/best.keras (multiface, 64 px), fine-tuned"
    assert record["weights_used"] == "model"
    start_event = next(e for e in events if e["event"] == "start")
    assert start_event["started_from"] == record["started_from"]
    assert start_event["train_images"] == 32 + len(kept)  # the whole dataset: old pictures and the kept frames

    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    comparison = metrics["finetune"]
    assert comparison["start_model"] == str(model)
    assert comparison["test"]["start"]["images"] == comparison["test"]["new"]["images"] == 12
    assert comparison["kept_all"]["frames"] == len(kept)
    assert comparison["kept_held_out"]["frames"] == 0  # a train/val/test dataset: kept frames go to train
    assert metrics["verdict"].startswith(f"Fine-tuned from {model.name}, new against start: test pictures")
    assert f"all {len(kept)} reviewed kept frames ({len(kept)} trained on)" in metrics["verdict"]


def test_the_network_trained_is_the_model_itself(start) -> None:
    """What a fine-tune trains (training.engine.finetune.load_start_network, the trainer's network) holds the file's
    weights, in the same architecture."""
    model, _data = start
    network = load_start_network(inspect_start_model(model))
    saved = keras.models.load_model(model)
    assert network.name == saved.name == "facetracker_multiface"
    assert [layer.name for layer in network.layers] == [layer.name for layer in saved.layers]
    for mine, theirs in zip(network.get_weights(), saved.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def bad_file(folder: Path, kind: str) -> Path:
    """A --from that is no model to fine-tune."""
    if kind == "missing":
        return folder / "gone.keras"
    if kind == "folder":
        return folder
    path = folder / {"onnx": "m.onnx", "text": "notes.keras", "zip": "half.keras"}[kind]
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("model.weights.h5", b"")
    else:
        path.write_text("not a model")
    return path


@pytest.mark.parametrize("kind, message", [
    ("missing", "gone.keras: cannot fine-tune from it: no such file"),
    ("folder", ": cannot fine-tune from it: a folder, not a .keras model file"),
    ("onnx", "m.onnx: cannot fine-tune from an exported ONNX model: give the .keras file"),
    ("text", "notes.keras: cannot fine-tune from it: not a .keras model file"),
    ("zip", "half.keras: cannot fine-tune from it: a zip archive but not a Keras model"),
])
def test_a_bad_start_model_is_refused_naming_the_file(tmp_path, kind, message) -> None:
    with pytest.raises(TrainingError) as raised:
        inspect_start_model(bad_file(tmp_path, kind))
    assert message in str(raised.value)


def test_a_keras_model_of_another_kind_is_refused_before_anything_is_written(tmp_path, start) -> None:
    other = tmp_path / "other.keras"
    inputs = keras.Input((8,))
    keras.Model(inputs, keras.layers.Dense(1)(inputs), name="classifier").save(other)
    _model, data = start
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "training", str(data), "--from", str(other), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert f"{other}: cannot fine-tune from it: a Keras model of another kind ('classifier')" in done.stderr
    assert "Traceback" not in done.stderr and not out.exists()


def comparison(test=(0.90, 0.91), kept=(0.40, 0.80), real=(0.95, 0.95)) -> dict:
    def pair(values: tuple[float, float]) -> dict:
        return {"start": {"ap50": values[0], "images": 10, "faces": 9},
                "new": {"ap50": values[1], "images": 10, "faces": 9}}

    return {"start_model": "runs/x/best.keras", "test": pair(test), "kept_held_out": {**pair(kept), "frames": 5},
            "kept_all": {**pair((0.5, 0.9)), "frames": 20, "trained_on": 15}, "real_photos": pair(real)}


def test_the_verdict_says_whether_to_switch() -> None:
    better = finetune_verdict(comparison())
    assert better.startswith("Fine-tuned from best.keras, new against start: test pictures (10 pictures): AP50 "
                             "0.90 -> 0.91; the 5 kept frames it did not train on: AP50 0.40 -> 0.80")
    assert "Better where the model in use was wrong" in better and "Use this model" in better
    forgot = finetune_verdict(comparison(test=(0.90, 0.80)))
    assert "It lost some of what it knew (the test pictures)" in forgot and "keep the model in use" in forgot
    forgot_photos = finetune_verdict(comparison(real=(0.95, 0.80)))
    assert "lost some of what it knew (real photographs)" in forgot_photos
    same = finetune_verdict(comparison(kept=(0.80, 0.81)))
    assert "No better on the kept frames" in same
    photos = finetune_verdict(comparison(kept=(0.80, 0.81), real=(0.70, 0.80)))
    assert "Better on real photographs, as good elsewhere" in photos


# ------------------------------------------------------------------------------------------- the Train tab


def test_the_train_tab_fine_tunes_the_model_in_use(qtbot, tmp_path, start) -> None:
    from desktop.train_tab import TrainTab

    model, data = start
    tab = TrainTab(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(tab)
    tab.epochs_spin.setValue(25)
    panel = tab.finetune_panel
    assert not panel.check.isEnabled() and "No model of your own in use" in panel.check.toolTip()
    assert panel.check.text() == "Fine-tune the model in use (none of your own yet)"

    tab.set_model_in_use(None)
    tab.set_model_in_use(type("Detector", (), {"path": model})())
    assert panel.check.isEnabled() and panel.check.text() == f"Fine-tune {model.name} (multiface): 3 epochs at 2e-04"
    panel.check.setChecked(True)
    assert tab.epochs_spin.value() == 3 and not tab.backbone_combo.isEnabled() and not tab.weights_combo.isEnabled()
    assert tab.start_label.text() == "your model start/best.keras (multiface, 64 px), fine-tuned"
    tab._save_settings()  # as Start does: the fine-tune's epochs are not remembered as the user's
    assert tab.settings.value("train/epochs") in (25, "25")
    config = tab.training_config(data, tmp_path / "run")
    assert config.from_model == str(model) and config.backbone == "multiface" and config.input_size is None
    assert config_to_args(config)[-2:] == ["--from", str(model)]

    panel.check.setChecked(False)  # back to a new run: the settings as they were
    assert tab.epochs_spin.value() == 25 and tab.backbone_combo.isEnabled()
    assert tab.training_config(data, tmp_path / "run").from_model is None

    exported = tmp_path / "m.onnx"
    exported.write_bytes(b"x")
    tab.set_model_in_use(type("Detector", (), {"path": exported})())
    assert not panel.check.isEnabled() and panel.check.text() == "Fine-tune the model in use (not m.onnx)"
    assert "m.onnx: cannot fine-tune from an exported ONNX model: give the .keras file" in panel.check.toolTip()

"""The default recipe fine-tunes a detector that already sees real faces, and keeps seeing them.

The default backbone starts from the pretrained BlazeFace: a short training on webcam-like real-face frames
learns (its loss falls), is no worse than its start on the user's kind of pictures (people it never saw,
pasted and in context, faces 10-160 px at 320x240), and does not forget real photographs (no training set
uses them). The recipe before this one (3e-4, the tutorial's loss in frame units) failed here: test AP50
0.72 -> 0.61, real photographs 0.75.

The full measurement (10 CPU-minutes, 360 training frames, every figure side by side with the pretrained
start and the classic finder) is ``benchmarks/bench_multiface.py``; this is its quick form, sized for the
test run.
"""

from __future__ import annotations

import csv

import pytest

from training.data.dataset import load_dataset
from training.data.realfaces import make_real_demo_data
from training.engine.trainer import TrainConfig, train
from training.evaluation.evaluate import evaluate_model
from training.inference.detector import Detector
from training.inference.pretrained import pretrained_detector

pytestmark = pytest.mark.slow  # trainings: minutes on 2 cores

EPOCHS = 4


@pytest.fixture(scope="module")
def real_faces(tmp_path_factory):
    """240 real-face frames at 320x240: 168 train, 36 val, 36 test (people absent from train and val)."""
    return make_real_demo_data(tmp_path_factory.mktemp("real") / "data", count=240, width=320, height=240, seed=3,
                               split_fractions={"train": 0.7, "val": 0.15, "test": 0.15}, test_people="new")


def test_a_short_fine_tune_learns_the_users_pictures_and_keeps_real_faces(real_faces, tmp_path):
    config = TrainConfig(data=str(real_faces), out=str(tmp_path / "run"), epochs=EPOCHS, patience=0, seed=0)
    assert config.backbone == "blazeface"  # the default recipe, as a user gets it
    result = train(config)
    test = load_dataset(real_faces).require_split("test")
    before = evaluate_model(pretrained_detector(), test)
    after = evaluate_model(Detector.from_file(result.best_model), test)
    real = result.metrics["real_photos"]
    print(f"\npretrained: AP50 {before['ap50']:.2f}, F1 {before['f1']:.2f}, mean IoU {before['mean_iou']:.2f}; "
          f"fine-tuned {result.metrics['epochs_completed']} epochs: AP50 {after['ap50']:.2f}, F1 {after['f1']:.2f}, "
          f"mean IoU {after['mean_iou']:.2f}; real photographs: AP50 {real['ap50']:.2f}")
    with open(result.run_dir / "history.csv", newline="") as handle:
        losses = [float(row["total_loss"]) for row in csv.DictReader(handle)]
    assert losses[-1] < losses[0], losses  # it learns
    assert after["ap50"] >= before["ap50"] - 0.02, (before, after)  # no worse on the user's kind of pictures
    assert real["ap50"] >= 0.8 and real["faces"] >= 8  # and real faces not forgotten
    assert result.metrics["test"]["ap50"] == pytest.approx(after["ap50"])  # the run's own report agrees

"""Per-backbone training defaults, in plain Python so the desktop's Train tab can show them
without importing Keras.

The tutorial's 1e-4 and 10 epochs suit a pretrained VGG16 fed 60 offline copies of every picture
per epoch. The tiny network learns from scratch on one freshly augmented copy per epoch: it needs
bigger steps and more epochs (on 300 demo pictures: test IoU 0.74 after 60 epochs, ~3.5 CPU
minutes; 2e-3 sometimes stalled for 25 epochs with the box sigmoids saturated, so 1e-3).
"""

from __future__ import annotations

#: Backbone names, the default first (training.model.BACKBONES holds their specs).
BACKBONE_NAMES = ("blazeface", "multiface", "grid", "tiny", "mobilenetv2", "vgg16")
# blazeface: it starts from a detector pretrained on real faces, so what it learns from a user's few
# hundred pictures adds to knowing faces instead of replacing it (benchmarks/bench_real_photos.py, README).
DEFAULT_BACKBONE = "blazeface"
#: Backbones with the per-cell head (no tutorial-exact loss for them).
GRID_BACKBONES = ("blazeface", "grid", "multiface")
#: Backbones that find every face in a frame (trained on every labelled face, NMS at inference).
MULTI_FACE_BACKBONES = ("blazeface", "multiface")
#: Faces per picture a multi-face model trains on (the largest ones; WIDER FACE pictures hold hundreds).
MAX_FACES = 32
DEFAULT_LEARNING_RATES = {"blazeface": 1e-4, "grid": 2e-3, "multiface": 2e-3, "tiny": 1e-3, "mobilenetv2": 1e-4, "vgg16": 1e-4}
# grid: its face-trained stem learns fast (real faces, 480 frames: validation F1 0.95 by epoch 24 of a
# 40-epoch cosine schedule, about 7 CPU-minutes on 2 cores).
DEFAULT_EPOCHS = {"blazeface": 10, "grid": 40, "multiface": 40, "tiny": 60, "mobilenetv2": 10, "vgg16": 10}
DEFAULT_BATCH_SIZE = 8  # the tutorial's
#: A backbone's start: auto (its pretrained weights when it has them and they can be had, else from
#: scratch), imagenet (mobilenetv2, vgg16; downloaded once), face (grid: MTCNN's face-trained stem,
#: shipped in the mtcnn package), none (from scratch).
WEIGHT_CHOICES = ("auto", "imagenet", "face", "none")
#: The pretrained start each backbone can have (what ``auto`` takes): ``training.model.BACKBONES``' ``pretrained``,
#: spelled out here so the Train tab can say what a run starts from without importing Keras.
PRETRAINED_WEIGHTS: dict[str, str | None] = {
    "blazeface": "face", "multiface": "face", "grid": "face", "tiny": None, "mobilenetv2": "imagenet", "vgg16": "imagenet",
}
#: What a blazeface run with its face weights starts from (config.json's ``started_from``, the Train tab).
BLAZEFACE_START = "MediaPipe BlazeFace full-range (pretrained on real faces)"


def default_learning_rate(backbone: str) -> float:
    """The starting learning rate a backbone trains with when none is given."""
    return DEFAULT_LEARNING_RATES.get(backbone, 1e-4)


def default_epochs(backbone: str) -> int:
    """How many epochs a backbone trains for when none are given."""
    return DEFAULT_EPOCHS.get(backbone, 10)

#: A fine-tune (``--from MODEL``, training.finetune): a short run from the user's model at a tenth of the
#: backbone's rate, so it learns the kept frames without forgetting what it knew.
FINETUNE_EPOCHS = 3
FINETUNE_RATE_FACTOR = 0.1


def finetune_learning_rate(backbone: str) -> float:
    """A fine-tune's starting rate when none is given: a tenth of the backbone's own."""
    return default_learning_rate(backbone) * FINETUNE_RATE_FACTOR


#: Early stopping: epochs without a better validation F1 (then mean IoU) before training ends.
DEFAULT_PATIENCE = 15


def resolved_weights(backbone: str, weights: str) -> str:
    """The start a weights choice gives a backbone: ``auto`` its pretrained weights (or none), else the choice."""
    if weights == "auto":
        return PRETRAINED_WEIGHTS.get(backbone) or "none"
    return weights


def describe_start(backbone: str, weights: str | None) -> str:
    """What a new run of ``backbone`` starts from with the resolved ``weights``, in words (config.json's
    ``started_from``, the CLI's and the Train tab's lines). Plain Python: the Train tab calls it before Start."""
    if weights == "face" and backbone == "blazeface":
        return BLAZEFACE_START
    if weights == "face":
        return "MTCNN's face-trained first layers (RNet), the rest from scratch"
    if weights == "imagenet":
        return f"{backbone} with ImageNet weights, the heads from scratch"
    return "random weights (from scratch)"


def start_text(backbone: str, weights: str) -> tuple[str, bool]:
    """What a new run of ``backbone`` with the ``weights`` choice starts from, in words, before it runs (the
    Train tab), and whether the trainer accepts that choice (a backbone without those weights is refused)."""
    resolved = resolved_weights(backbone, weights)
    if resolved in ("face", "imagenet") and PRETRAINED_WEIGHTS.get(backbone) != resolved:
        kind = "face-trained" if resolved == "face" else "ImageNet"
        return f"{backbone} has no {kind} weights: choose auto or none", False
    text = describe_start(backbone, resolved)
    if weights == "auto" and resolved == "imagenet":
        text += " (downloaded once; from scratch when offline)"
    return text, True

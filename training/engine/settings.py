"""Every training setting once: name, type, default, choices, help text and command-line flag.

One table (:data:`TRAIN_SETTINGS`) feeds the four places that used to spell these out each for
itself, in the manner of Ultralytics' ``cfg/default.yaml``:

* the ``facetracker-train train`` parser (:func:`add_train_arguments`),
* :class:`TrainConfig`'s defaults,
* the desktop Train tab's child command (:func:`config_to_args`) and its settings form, built from
  each setting's kind, default, choices, range, label and help (``desktop.settings_form``),
* the command line back into a config (:func:`config_from_args`).

Plain Python, free of Qt and Keras, so ``--help`` answers at once and the app imports it freely.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from training.engine.distribute import devices_argument
from training.model.backbones import (
    BACKBONE_NAMES,
    BACKBONES,
    DEFAULT_BACKBONE,
    DEFAULT_BATCH_SIZE,
    FINETUNE_EPOCHS,
    FINETUNE_RATE_FACTOR,
    MULTI_FACE_BACKBONES,
    WEIGHT_CHOICES,
)


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: a whole number of at least 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number above 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _per_backbone(field: str) -> str:
    """``40 for grid, 60 for tiny, ...``: one field of every backbone's spec (training.model.backbones.BACKBONES),
    so help texts never go stale."""
    def text(value: Any) -> str:
        return f"{value:.0e}".replace("e-0", "e-") if isinstance(value, float) else str(value)  # 0.002 -> 2e-3

    specs = sorted(BACKBONES.values(), key=lambda spec: getattr(spec, field))  # equal values side by side
    return ", ".join(f"{text(getattr(spec, field))} for {spec.name}" for spec in specs)


def _same_or_per_backbone(field: str) -> str:
    """A spec field's value where every backbone has the same (``15``), else :func:`_per_backbone`'s list."""
    values = {getattr(spec, field) for spec in BACKBONES.values()}
    return str(values.pop()) if len(values) == 1 else _per_backbone(field)


def _input_sizes() -> str:
    """``192 for blazeface, 128 for multiface and grid, ...``: the backbones' own input sizes, grouped."""
    sizes: dict[int, list[str]] = {}
    for name, spec in BACKBONES.items():
        sizes.setdefault(spec.default_input_size, []).append(name)
    return ", ".join(f"{size} for {'/'.join(names)}" for size, names in sizes.items())


def _share(fraction: float) -> str:
    """"a tenth", "a half", else "0.2": how a help text says a share of a default."""
    return {0.1: "a tenth", 0.5: "a half", 0.25: "a quarter"}.get(fraction, f"{fraction:g}")


@dataclass(frozen=True)
class Setting:
    """One training setting. ``flag`` None: the positional argument. A bool's flag turns it to the
    opposite of its default (``--no-augment``, ``--strict``)."""

    name: str  # the TrainConfig field
    kind: type  # str, int, float or bool (None allowed where default is None)
    default: Any
    help: str
    flag: str | None = None
    metavar: str | None = None
    parse: Callable[[str], Any] | None = None  # argparse type (None: kind itself)
    choices: tuple[str, ...] | None = None
    cli_checks_choices: bool = True  # False: the trainer checks, with its own message (exit 1, not 2)
    tooltip: str | None = None  # the Train tab's words, where they differ from ``help``
    # What a form needs to show it (desktop.settings_form builds the Train tab's widgets from these):
    label: str = ""  # the form row's label ("Epochs:"); a bool's check box text
    range: tuple[float, float] | None = None  # lowest and highest value a number may take
    auto: str | None = None  # shown for None (the value left to the trainer): a spin box's first entry, a placeholder
    suffix: str = ""  # after a number (" px")
    decimals: int = 0  # a float's spin box decimals; 0: typed as text (1e-4), in scientific notation
    folder: bool = False  # a str that names a folder: a folder field with Browse…

    @property
    def dest(self) -> str:
        """The argparse attribute the value lands in (``--lr`` -> ``lr``, ``--no-augment`` -> ``augment``)."""
        if self.flag is None or self.kind is bool:
            return self.name
        return self.flag.lstrip("-").replace("-", "_")

    def tip(self) -> str:
        """What a widget's tooltip says about this setting."""
        text = self.tooltip or self.help
        return text[:1].upper() + text[1:]


#: The table, in the order ``facetracker-train train --help`` lists it.
TRAIN_SETTINGS: tuple[Setting, ...] = (
    Setting("data", str, None, "dataset folder: data/{train,val,test}/{images,labels}, images/ + labels/, "
            "or pictures with labelme JSON beside them",
            label="Dataset:", auto="dataset folder (images/ + labels/, or train/val/test)", folder=True),
    Setting("epochs", int, None, "total passes over the training pictures (default: the backbone's, "
            f"{_per_backbone('epochs')}; a fine-tune (--from): {FINETUNE_EPOCHS}; resuming: the run's own)",
            flag="--epochs", metavar="N", parse=positive_int,
            label="Epochs:", range=(1, 10_000)),
    Setting("out", str, None, "run folder (default runs/train, runs/train2, ...)", flag="--out", metavar="DIR",
            label="Run folder:", auto="runs/train, runs/train2, ...", folder=True),
    Setting("batch_size", int, DEFAULT_BATCH_SIZE, f"pictures per step (default {DEFAULT_BATCH_SIZE})",
            flag="--batch-size", metavar="N", parse=positive_int,
            label="Batch size:", range=(1, 1024)),
    Setting("backbone", str, DEFAULT_BACKBONE,
            "network: blazeface (default: MediaPipe's BlazeFace, pretrained on real faces, fine-tuned on yours; finds "
            "every face), multiface (a small network with a score and box per cell that finds every face, fast on a "
            "CPU), grid (the same network answering one face), tiny (one box from a small CNN), mobilenetv2, or vgg16 "
            f"(the tutorial's); one of {', '.join(BACKBONE_NAMES)}",
            flag="--backbone", metavar="NAME", choices=BACKBONE_NAMES, cli_checks_choices=False,
            tooltip="blazeface (the default): MediaPipe's BlazeFace, pretrained on real faces and fine-tuned on "
            "yours, finds every face; multiface: a small network with a face score and box per cell that finds "
            "every face; grid: the same network trained to answer the best face only; "
            "tiny: one box from a small network; mobilenetv2: fast, with ImageNet weights when online; "
            "vgg16: the tutorial's model (heavy)",
            label="Backbone:"),
    Setting("input_size", int, None, "square input side in pixels (default: the backbone's own: "
            f"{_input_sizes()})", flag="--input-size", metavar="PX", parse=positive_int,
            label="Input size:", range=(32, 1024), auto="auto (backbone's size)", suffix=" px"),
    Setting("learning_rate", float, None, "starting learning rate (default: the backbone's, "
            f"{_per_backbone('learning_rate')}; a fine-tune (--from): {_share(FINETUNE_RATE_FACTOR)} of it)",
            flag="--lr", metavar="RATE", parse=positive_float,
            tooltip="Starting learning rate, e.g. 1e-4. Empty: the backbone's default "
            f"({_per_backbone('learning_rate')})",
            label="Learning rate:", range=(1e-8, 10.0), auto="auto (the backbone's own)"),
    Setting("patience", int, None, "stop after N epochs without a better validation AP50 "
            f"({', '.join(MULTI_FACE_BACKBONES)}) or F1 (default: the backbone's, {_same_or_per_backbone('patience')}; "
            "0: never stop early)", flag="--patience", metavar="N",
            label="Patience:", range=(0, 10_000), auto="auto (the backbone's own)", suffix=" epochs"),
    Setting("freeze", int, 0, "keep the first N weighted layers of the pretrained start as they are (default 0: "
            "train them all; keeping blazeface's stem and stages, --freeze 64, lost more on real photographs)",
            flag="--freeze", metavar="N", parse=non_negative_int,
            tooltip="Layers of the pretrained start kept as they are. 0 (the default): every layer learns, at the "
            "backbone's low learning rate",
            label="Frozen layers:", range=(0, 10_000)),
    Setting("time_limit", float, None, "stop after the epoch that passes this many minutes (the best model so far "
            "is kept)", flag="--time-limit", metavar="MINUTES", parse=positive_float,
            label="Time limit:", range=(0.1, 100_000.0), auto="none", suffix=" min", decimals=1),
    Setting("weights", str, "auto", "backbone start: imagenet (mobilenetv2, vgg16; downloaded once), face (blazeface: "
            "MediaPipe's weights, shipped; multiface, grid: MTCNN's face-trained stem, shipped in the mtcnn package), "
            "none (from scratch), or auto (the backbone's pretrained weights when they can be had; default)",
            flag="--weights", choices=WEIGHT_CHOICES,
            tooltip="auto: the backbone's pretrained weights when they can be had, else from scratch (blazeface: "
            "MediaPipe's weights; multiface, grid: MTCNN's face-trained stem, shipped with the app; mobilenetv2, "
            "vgg16: ImageNet, downloaded once)",
            label="Weights:"),
    Setting("tutorial_exact", bool, False, "also train the box on pictures without a face, as the tutorial did",
            flag="--tutorial-exact",
            label="Tutorial-exact loss (box loss on no-face pictures too)"),
    Setting("augment", bool, True, "train on the pictures as they are (no random crops, flips, colour changes)",
            flag="--no-augment", tooltip="random crops, flips and colour changes of every training picture, "
            "fresh each epoch",
            label="Augment (random crops, flips, colour)"),
    Setting("cache", str, "auto", "where the training pictures are kept between epochs: memory (decoded once), "
            "stream (read from disk every epoch, for datasets larger than memory; the same batches), or auto "
            "(memory when they fit in a quarter of the machine's memory; default)", flag="--cache",
            choices=("auto", "memory", "stream"), tooltip="auto: keep the decoded pictures in memory when they fit "
            "in a quarter of it, else read them from disk every epoch (the same batches, for large datasets)",
            label="Picture cache:"),
    Setting("mixed_precision", bool, True, "keep float32 on a GPU (mixed precision is on by default there; no effect "
            "on a CPU)", flag="--no-mixed-precision",
            label="Mixed precision on a GPU"),
    Setting("devices", str, "1", "devices to train on: 1 (default), N, or all GPUs (tf.distribute.MirroredStrategy; "
            "--batch-size stays the whole step's batch, split between them). Without a GPU, N > 1 splits the CPU into "
            "N devices: it shows the path, it is not faster. With TF_CONFIG: each machine's devices (see the README)",
            flag="--devices", metavar="N|all", parse=devices_argument,
            label="Devices:"),
    Setting("strict", bool, False, "stop at the first bad picture or label instead of skipping it", flag="--strict",
            label="Stop at the first bad picture or label"),
    Setting("resume", str, None, "continue an interrupted run folder", flag="--resume", metavar="RUN_DIR",
            label="Resume run:", auto="a run folder to continue", folder=True),
    Setting("from_model", str, None, "fine-tune this model (a .keras file FaceTracker trained, e.g. "
            "runs/x/best.keras) instead of starting anew: its backbone, input size and weights are kept; it "
            "trains on the whole dataset (older pictures too, so it keeps what it knew) for "
            f"{FINETUNE_EPOCHS} epochs at {_share(FINETUNE_RATE_FACTOR)} of the backbone's rate unless --epochs and "
            "--lr say otherwise; config.json records it, and the verdict compares the new model with it on the "
            "same test pictures and on the frames kept in the Detect tab", flag="--from", metavar="MODEL",
            tooltip="Fine-tune the model in use: a short run from it on the whole dataset, kept frames included",
            label="Fine-tune from:", auto="a model to start from (none: a new run)"),
    Setting("seed", int, 0, "random seed for shuffling and augmentation (default 0)", flag="--seed", metavar="N",
            label="Seed:", range=(0, 2**31 - 1)),
)
SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in TRAIN_SETTINGS}


def setting(name: str) -> Setting:
    """The table's entry for one setting (KeyError names it when there is none)."""
    return SETTINGS_BY_NAME[name]


def _default(name: str) -> Any:
    return SETTINGS_BY_NAME[name].default


@dataclass
class TrainConfig:
    """Everything one training run needs; saved as ``config.json`` in the run folder.

    Defaults come from :data:`TRAIN_SETTINGS`. ``epochs`` None: the backbone's (resuming: the run's
    own); ``learning_rate`` None: the backbone's; ``patience`` None: the backbone's (its spec's), 0: never stop
    early; ``time_limit`` in minutes, training ends after the epoch that passes it.
    """

    data: str
    out: str | None = _default("out")
    epochs: int | None = _default("epochs")
    batch_size: int = _default("batch_size")
    backbone: str = _default("backbone")
    input_size: int | None = _default("input_size")
    learning_rate: float | None = _default("learning_rate")
    weights: str = _default("weights")
    tutorial_exact: bool = _default("tutorial_exact")
    augment: bool = _default("augment")
    cache: str = _default("cache")
    mixed_precision: bool = _default("mixed_precision")
    strict: bool = _default("strict")
    seed: int = _default("seed")
    resume: str | None = _default("resume")
    patience: int | None = _default("patience")
    freeze: int = _default("freeze")
    time_limit: float | None = _default("time_limit")
    devices: str = _default("devices")
    from_model: str | None = _default("from_model")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every setting of the table to the ``train`` command's parser."""
    for s in TRAIN_SETTINGS:
        if s.flag is None:
            parser.add_argument(s.name, help=s.help)
        elif s.kind is bool:
            parser.add_argument(s.flag, dest=s.name, action="store_false" if s.default else "store_true",
                                help=s.help)
        else:
            options: dict[str, Any] = {"default": s.default, "help": s.help, "type": s.parse or s.kind}
            if s.metavar:
                options["metavar"] = s.metavar
            if s.choices and s.cli_checks_choices:
                options["choices"] = s.choices
            parser.add_argument(s.flag, **options)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` a parsed ``train`` command line asks for."""
    return TrainConfig(**{s.name: getattr(args, s.dest) for s in TRAIN_SETTINGS})


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)  # repr: a float comes back exactly


def config_to_args(config: TrainConfig) -> list[str]:
    """``["train", DATA, --flag value, ...]``: the command line that trains ``config`` (settings left at
    their defaults are left out); :func:`config_from_args` of its parse gives ``config`` back."""
    args = ["train"]
    for s in TRAIN_SETTINGS:
        value = getattr(config, s.name)
        if s.flag is None:
            args.append(str(value))
        elif s.kind is bool:
            if bool(value) != s.default:
                args.append(s.flag)
        elif value is not None and value != s.default:
            args += [s.flag, _text(value)]
    return args


def _check_table() -> None:
    """Every TrainConfig field has exactly one setting, with a label (checked at import: a new field cannot be
    forgotten)."""
    names = {f.name for f in fields(TrainConfig)}
    if names != set(SETTINGS_BY_NAME):
        raise RuntimeError(f"training.engine.settings: TrainConfig and TRAIN_SETTINGS differ: {names ^ set(SETTINGS_BY_NAME)}")
    unlabelled = [s.name for s in TRAIN_SETTINGS if not s.label]
    if unlabelled:  # a form shows every setting it is given: each needs words
        raise RuntimeError(f"training.engine.settings: settings without a label: {unlabelled}")


_check_table()

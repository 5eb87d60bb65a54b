"""Fine-tuning from the model in use: ``facetracker-train DATA --from runs/x/best.keras``.

A user's model meets new rooms, people and light in the Detect tab; the frames it got wrong are kept
(:mod:`training.data.kept_frames`), reviewed in the Label tab, and this short run teaches them to the model the
user already has instead of training again from the start:

* it starts from that ``.keras`` file, its architecture, backbone and input size kept (a file that is
  missing, not a FaceTracker model, or an exported ``.onnx``/``.tflite`` is refused, naming the file and
  the problem), and trains it with the seed's losses as any run does;
* on the whole dataset, old pictures included, so that what the model knew is not forgotten;
* by default for :data:`~training.model.backbones.FINETUNE_EPOCHS` epochs at a tenth of the backbone's rate
  (``--epochs`` and ``--lr`` still say otherwise);
* the run folder's ``config.json`` records what it started from (``start_model``: the file, its size and
  SHA-256, its backbone and metadata), and ``metrics.json``'s ``finetune`` compares the new model with the
  one it started from on the same test pictures, on the kept frames (those it did not train on, and all of
  them) and on real photographs no training set uses; the verdict says which is better. Nothing switches
  to the new model by itself: the Train tab's "Use this model" does, when the user says so.

:func:`inspect_start_model` reads only the archive's ``config.json`` (no Keras import), so the Train tab
can say what a fine-tune starts from before it runs.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from training.core.errors import TrainingError
from training.data.kept_frames import is_kept, kept_samples
from training.model.backbones import BACKBONE_NAMES, FINETUNE_EPOCHS, finetune_learning_rate

MAX_CONFIG_BYTES = 64 * 2**20  # a Keras model's config.json (BlazeFace's: about 200 kB)
#: An AP50 change smaller than this is "as good": the test split's own noise between two close models.
SAME_AP = 0.02


@dataclass(frozen=True)
class StartModel:
    """The model a fine-tune starts from, as read from its file without loading it."""

    path: Path
    backbone: str
    input_size: int
    metadata: dict  # facetracker.json inside the archive: its threshold, epoch, validation figures

    def record(self) -> dict:
        """What config.json says of it: the file (name, size, SHA-256), its backbone, input size and metadata."""
        from training.core.detection import file_fingerprint

        return {"path": str(self.path.resolve()), "file": file_fingerprint(self.path), "backbone": self.backbone,
                "input_size": self.input_size, "metadata": self.metadata}

    def describe(self) -> str:
        """config.json's ``started_from``: "your model x/best.keras (blazeface, 192 px), fine-tuned" (its run
        folder and name: ``start_model`` has the whole path)."""
        return f"your model {self.path.parent.name}/{self.path.name} ({self.backbone}, {self.input_size} px), fine-tuned"


def inspect_start_model(path: str | os.PathLike) -> StartModel:
    """Read what a fine-tune needs to know of a model file (its backbone and input size), without Keras.

    Raises:
        TrainingError: naming the file: missing, a folder, an exported model, not a .keras archive, or a
            Keras model FaceTracker did not make.
    """
    from training.core.detection import read_model_metadata
    from training.core.inputs import InputError, check_regular_file, parse_json

    path = Path(path)
    shown = str(path)
    if not path.exists():
        raise TrainingError(f"{shown}: cannot fine-tune from it: no such file")
    if path.is_dir():
        raise TrainingError(f"{shown}: cannot fine-tune from it: a folder, not a .keras model file "
                            "(give the run's best.keras)")
    try:
        check_regular_file(path, what="model file")
    except InputError as exc:
        raise TrainingError(f"cannot fine-tune from {exc}") from None
    suffix = path.suffix.lower()
    if suffix in (".onnx", ".tflite"):
        raise TrainingError(f"{shown}: cannot fine-tune from an exported {suffix[1:].upper()} model: give the "
                            ".keras file it was exported from (e.g. the run's best.keras)")
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                raise TrainingError(f"{shown}: cannot fine-tune from it: its config.json is {info.file_size} bytes, "
                                    "too large for a FaceTracker model")
            text = archive.read(info).decode("utf-8")
    except KeyError:
        raise TrainingError(f"{shown}: cannot fine-tune from it: a zip archive but not a Keras model "
                            "(no config.json inside)") from None
    except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError, RuntimeError) as exc:
        raise TrainingError(f"{shown}: cannot fine-tune from it: not a .keras model file ({exc})") from None
    try:
        config = parse_json(text)
        name = str(config["config"]["name"])
        layers = config["config"]["layers"]
        shape = next(layer["config"]["batch_shape"] for layer in layers if layer.get("class_name") == "InputLayer")
        input_size = int(shape[1])
    except (ValueError, KeyError, TypeError, StopIteration, IndexError) as exc:
        raise TrainingError(f"{shown}: cannot fine-tune from it: not a FaceTracker model (its config.json does not "
                            f"describe one: {type(exc).__name__} {exc})") from None
    backbone = name.removeprefix("facetracker_")
    if not name.startswith("facetracker_") or backbone not in BACKBONE_NAMES:
        raise TrainingError(f"{shown}: cannot fine-tune from it: a Keras model of another kind ({name!r}), not one "
                            f"FaceTracker trained (its backbones: {', '.join(BACKBONE_NAMES)})")
    if suffix != ".keras":
        raise TrainingError(f"{shown}: cannot fine-tune from it: a Keras model whose name does not end in .keras")
    try:
        metadata = read_model_metadata(path)
    except ValueError:
        metadata = {}
    return StartModel(path, backbone, input_size, metadata)


def load_start_network(start: StartModel) -> Any:
    """The start model's network: loaded in Keras' safe mode, checked to be the detector it said it was, and
    its weights put into a network built here for its backbone and input size (the same architecture: every
    FaceTracker model is built by ``build_model``). A loaded file's layer names would clash with the ones
    training adds for its per-cell losses (Keras names new operations from its own counters, which a loaded
    model does not advance: "The name "add" is used 2 times").

    Raises:
        TrainingError: naming the file and the problem (damaged, not a detector, another backbone or shape).
    """
    from training.core.detection import ModelFileError
    from training.inference.detector import load_detector_model
    from training.model.build import backbone_of, rebuilt

    try:
        loaded = load_detector_model(start.path)
    except ModelFileError as exc:
        raise TrainingError(f"cannot fine-tune from {exc}") from None
    try:
        backbone = backbone_of(loaded)
    except ValueError as exc:
        raise TrainingError(f"{start.path}: cannot fine-tune from it: {exc}") from None
    if backbone != start.backbone:
        raise TrainingError(f"{start.path}: cannot fine-tune from it: its network is {backbone}, its "
                            f"config says {start.backbone}")
    try:
        return rebuilt(loaded)
    except ValueError:
        raise TrainingError(f"{start.path}: cannot fine-tune from it: its {backbone} network is not the one this "
                            f"version builds ({len(loaded.get_weights())} weight arrays that do not fit it): train "
                            "it again, or fine-tune with the version that made it") from None


def finetune_config(config: Any, start: StartModel) -> tuple[Any, list[str]]:
    """``config`` (a TrainConfig) made to fine-tune ``start``: its backbone and input size; and a note for
    each setting asked for that a fine-tune cannot honour."""
    from training.engine.settings import TrainConfig

    defaults = TrainConfig(data="")
    notes = []
    if config.backbone not in (defaults.backbone, start.backbone):
        notes.append(f"fine-tuning keeps the model's backbone ({start.backbone}); --backbone {config.backbone} "
                     "is ignored")
    if config.input_size not in (None, start.input_size):
        notes.append(f"fine-tuning keeps the model's input size ({start.input_size} px); --input-size "
                     f"{config.input_size} is ignored")
    if config.weights != defaults.weights:
        notes.append(f"fine-tuning starts from the model's own weights; --weights {config.weights} is ignored")
    return replace(config, backbone=start.backbone, input_size=start.input_size, weights=defaults.weights), notes


def default_epochs() -> int:
    """How long a fine-tune trains when --epochs is not given."""
    return FINETUNE_EPOCHS


def default_learning_rate(backbone: str) -> float:
    """A fine-tune's rate when --lr is not given: a tenth of the backbone's own."""
    return finetune_learning_rate(backbone)


def dataset_notes(dataset: Any) -> list[str]:
    """What to tell a user before a fine-tune: kept frames whose suggested boxes nobody reviewed yet
    (they are learned as they are)."""
    samples = [sample for split in dataset.splits.values() for sample in split]
    waiting = kept_samples(samples, reviewed=False)
    if not waiting:
        return []
    return [f"{len(waiting)} kept frame{'s are' if len(waiting) != 1 else ' is'} not reviewed yet: "
            f"{'their' if len(waiting) != 1 else 'its'} suggested boxes are learned as they are, and the verdict "
            "cannot measure them (review them in the Label tab: Review kept frames)"]


# ------------------------------------------------------------------------------------------------ verdict


def _measure(detector: Any, samples: Sequence[Any]) -> dict | None:
    from training.evaluation.evaluate import evaluate_model

    return evaluate_model(detector, samples) if samples else None


def compare(start_path: str | os.PathLike, new_path: str | os.PathLike, dataset: Any, *,
            new_test: dict | None = None, new_real: dict | None = None) -> dict:
    """The new model beside the one it started from, each at its own threshold, on the same pictures: the
    test split, the reviewed kept frames it did not train on (val and test), all reviewed kept frames, and
    real photographs (when the run measured the new model on them: ``new_real``).

    ``new_test`` / ``new_real``: the new model's figures the run already has (not measured twice).
    """
    from training.inference.detector import Detector

    start = Detector.from_file(start_path)
    new = Detector.from_file(new_path)
    test = list(dataset.splits.get("test") or [])
    held = kept_samples([*dataset.splits.get("val", []), *test], reviewed=True)
    every = kept_samples([s for split in dataset.splits.values() for s in split], reviewed=True)
    kept_train = sum(1 for s in dataset.splits.get("train", []) if is_kept(s.image_path))
    result: dict[str, Any] = {
        "start_model": str(Path(start_path)),
        "test": {"start": _measure(start, test), "new": new_test if new_test is not None else _measure(new, test)},
        "kept_held_out": {"start": _measure(start, held), "new": _measure(new, held), "frames": len(held)},
        "kept_all": {"start": _measure(start, every), "new": _measure(new, every), "frames": len(every),
                     "trained_on": kept_train},
    }
    if new_real and "ap50" in new_real:
        from training.evaluation.realphotos import measure_detector

        try:
            result["real_photos"] = {"start": measure_detector(start), "new": new_real}
        except (OSError, ValueError) as exc:  # a photo that cannot be read never fails a finished run
            result["real_photos"] = {"error": f"{type(exc).__name__}: {exc}"}
    return result


def _ap(figures: dict | None) -> float | None:
    if not figures:
        return None
    for key in ("ap50", "f1"):  # a single-face model is compared by F1
        if key in figures:
            return float(figures[key])
    return None


def _change(pair: dict, what: str) -> tuple[str, float | None]:
    """"the 9 kept frames it did not train on: AP50 0.52 -> 0.81", and the change (None: not measured)."""
    start, new = pair.get("start"), pair.get("new")
    a, b = _ap(start), _ap(new)
    if a is None or b is None:
        return "", None
    measure = "AP50" if "ap50" in (new or {}) else "F1"
    if not (new or {}).get("faces", 1) and "false_alarms" in (new or {}):  # no face to find: count false alarms
        return f"{what}: false alarms {start['false_alarms']} -> {new['false_alarms']}", 0.0
    return f"{what}: {measure} {a:.2f} -> {b:.2f}", b - a


def finetune_verdict(comparison: dict) -> str:
    """The fine-tune's verdict in words: new against start on the test pictures, the kept frames and real
    photographs, and whether to switch to the new model (the user decides: "Use this model")."""
    name = Path(comparison.get("start_model", "the model")).name
    parts = []
    test_text, test_change = _change(comparison.get("test", {}), f"test pictures ({_count(comparison, 'test')})")
    if test_text:
        parts.append(test_text)
    held = comparison.get("kept_held_out", {})
    every = comparison.get("kept_all", {})
    held_text, held_change = _change(held, f"the {held.get('frames', 0)} kept frames it did not train on")
    all_text, all_change = _change(every, f"all {every.get('frames', 0)} reviewed kept frames "
                                          f"({every.get('trained_on', 0)} trained on)")
    kept_change = held_change if held_change is not None else all_change
    parts += [text for text in (held_text, all_text) if text]
    real = comparison.get("real_photos", {})
    real_text, real_change = _change(real, "real photographs no one trained on") if "error" not in real else ("", None)
    if real_text:
        parts.append(real_text)
    line = f"Fine-tuned from {name}, new against start: " + "; ".join(parts) + "." if parts else \
        f"Fine-tuned from {name}."
    forgot = [what for what, change in (("the test pictures", test_change), ("real photographs", real_change))
              if change is not None and change < -SAME_AP]
    if forgot:
        return (line + f" It lost some of what it knew ({' and '.join(forgot)}): keep the model in use, or "
                "fine-tune again with fewer epochs or a lower rate.")
    switch = "\"Use this model\" switches to it."
    if kept_change is not None and kept_change > SAME_AP:
        return line + f" Better where the model in use was wrong, as good elsewhere: {switch}"
    if real_change is not None and real_change > SAME_AP and (kept_change is None or kept_change >= -SAME_AP):
        return line + f" Better on real photographs, as good elsewhere: {switch}"
    if kept_change is None:
        return line + (" No reviewed kept frame to measure it on (review them in the Label tab first); as good "
                       f"as the start elsewhere: {switch[:-1]} if you want.")
    return line + (" No better on the kept frames: keep the model in use, or keep more frames (K) and correct "
                   "their boxes (a kept frame whose suggested boxes were accepted as they were teaches little).")


def _count(comparison: dict, key: str) -> str:
    new = (comparison.get(key) or {}).get("new") or {}
    return f"{new.get('images', '?')} pictures"


__all__ = [
    "SAME_AP", "StartModel", "compare", "dataset_notes", "default_epochs", "default_learning_rate",
    "finetune_config", "finetune_verdict", "inspect_start_model", "load_start_network",
]

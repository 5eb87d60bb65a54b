"""The child process that makes a model's light copy for the app (see :mod:`desktop.runtime`).

``python -m desktop.runtime_child MODEL.keras|:pretrained FOLDER tflite|onnx`` (in the
bundle, ``FaceTracker --runtime-child ...``) exports the model with the existing export
(:func:`training.inference.export.export_model`: written only when it reproduces the ``.keras`` answers on real
pictures) into a staging folder that becomes ``FOLDER`` whole. TensorFlow is imported here, never in the
window. Prints JSON events on stdout (:mod:`training.core.events`), one a line: ``end`` with the export's
result and the device TensorFlow computes on here (so the app learns whether a GPU is usable without
importing TensorFlow itself), or ``error`` with the message (and ``model_file_error`` when the model file
itself is not usable: the app then reports it as such instead of trying TensorFlow).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from desktop.runtime import PRETRAINED_ARG, SUFFIXES
from training.core import END, ERROR


def _emit(event: dict) -> None:
    print(json.dumps(event, default=str), flush=True)


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="facetracker --runtime-child",
                                     description="Make a model's light-runtime copy for the app (internal).")
    parser.add_argument("model", help=f"a .keras file, or {PRETRAINED_ARG} for the pretrained face detector")
    parser.add_argument("folder", help="the copy's folder (made whole, or not at all)")
    parser.add_argument("format", choices=sorted(SUFFIXES))
    return parser.parse_args(list(argv))


def export_into(model: str, folder: Path, fmt: str) -> dict:
    """Export ``model`` (a path, or :data:`PRETRAINED_ARG`) into ``folder``; returns the ``end`` event."""
    from training.core import staging_folder
    from training.inference import export_model

    with tempfile.TemporaryDirectory(prefix="facetracker-export-") as scratch:
        if model == PRETRAINED_ARG:  # its weights are where the app found them (desktop.runtime.pretrained_weights_path)
            from training.inference import save_pretrained_model

            source, name = save_pretrained_model(Path(scratch) / "blazeface.keras"), "blazeface"
        else:
            source, name = Path(model), Path(model).stem
        final = folder / f"{name}{SUFFIXES[fmt]}"
        result = None
        try:
            with staging_folder(folder) as staging:
                result = export_model(source, fmt, staging / final.name)
        except OSError:
            if not final.is_file():
                raise
            # Another process made the same copy meanwhile (the folder was there, whole): it is as good.
    from training.core import device_name

    summary = result.as_dict() if result is not None else {"format": fmt}
    return {"event": END, **{k: v for k, v in summary.items() if k not in ("path", "sidecar")},
            "path": str(final), "tensorflow_device": device_name()}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the child; 0 when the copy is there, 1 (after an ``error`` event) when not, 2 for bad arguments."""
    from training.core import quiet_tensorflow_logs

    try:
        args = _parse(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    quiet_tensorflow_logs()
    try:
        _emit(export_into(args.model, Path(args.folder), args.format))
    except Exception as exc:  # every failure is one line for the app's status line
        from training.core import ModelFileError

        text = str(getattr(exc, "message", None) or exc).strip()  # an ExportError's path is the staging folder's
        event = {"event": ERROR, "message": text.splitlines()[0] if text else type(exc).__name__}
        if isinstance(exc, ModelFileError):
            event.update(model=str(exc.path), model_file_error=exc.message)
        _emit(event)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

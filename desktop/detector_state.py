"""What the Detect tab detects with, and what it says about it: a Qt-free model of its detector.

The tab (``desktop.detect_tab.DetectTab``) loads detectors in a worker thread and tells this model what
happened (loading started, a detector came, a load failed); the model decides what follows (the
fallback to the classic face finder) and the words shown (the model label, the banner, the status
line's model part). The tab listens to :attr:`DetectorState.changed` and renders; the rules are tested
without Qt (tests/test_detector_state.py).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from desktop.observable import Emitter

CLASSIC_NOTICE = (
    "<b>No model yet.</b> The amber boxes come from the <b>classic face finder</b> (scikit-image's LBP "
    "cascade), not from a trained model. To build your own detector: <b>Collect</b> pictures, "
    "<b>Label</b> them, <b>Train</b> — or open a .keras model."
)
OPEN_MODEL = "Open model…"  # the banner button that opens a model file


class ModelState(str, Enum):
    """What the tab detects with. A ``str`` so that ``state == "model"`` reads as it always did."""

    NONE = "none"        # nothing yet
    LOADING = "loading"  # a model (or the classic finder) is being loaded; the old detector runs meanwhile
    CLASSIC = "classic"  # the classic face finder: no trained model
    MODEL = "model"      # a trained model

    def __str__(self) -> str:  # "model", not "ModelState.MODEL", on every Python version
        return self.value


class BannerKind(Enum):
    """How the model banner looks: hidden, a busy note, a notice (no model yet), or an error."""

    HIDDEN = "hidden"
    BUSY = "busy"
    NOTICE = "notice"
    ERROR = "error"


@dataclass(frozen=True)
class Banner:
    """The model banner: its look, its text (Qt rich text, already escaped) and its button, if any."""

    kind: BannerKind = BannerKind.HIDDEN
    text: str = ""
    button: str | None = None


class DetectorState:
    """The detector in use (none, classic finder or a model), the one loading, and what the tab shows.

    ``changed`` is emitted after every change, with no arguments.
    """

    def __init__(self) -> None:
        self.state = ModelState.NONE
        self.running = ModelState.NONE  # the detector running now: NONE, CLASSIC or MODEL
        self.model_path: str | None = None  # the trained model running now
        self.label = "Model: —"
        self.tooltip = ""
        self.banner = Banner()
        self.pending_error: str | None = None  # a failed model's message, shown once the classic finder is in
        self.changed = Emitter()

    # --- what the tab tells the model ------------------------------------------------------------
    def start_loading(self, path: str | None) -> None:
        """A model file (``path``), or the classic finder (None), starts loading in the background."""
        self.state = ModelState.LOADING
        if path is None:
            self.label = "Model: starting the classic face finder…"
            self.tooltip = ""
            self.banner = Banner(BannerKind.BUSY, "Starting the classic face finder (no model yet)…")
        else:
            name = Path(path).name
            self.label = f"Model: loading {name}…"
            self.banner = Banner(BannerKind.BUSY, f"Loading model <b>{html.escape(name)}</b>… (the first load "
                                                  "also starts TensorFlow, which takes a few seconds)")
        self.changed.emit()

    def loaded_classic(self) -> None:
        """The classic face finder is now the detector; a model that failed before is named again."""
        self.state = self.running = ModelState.CLASSIC
        self.model_path = None
        self.label = "Model: classic face finder (no model)"
        if self.pending_error:
            self.banner = self._error_banner(self.pending_error, "the classic face finder")
        else:
            self.banner = Banner(BannerKind.NOTICE, CLASSIC_NOTICE, OPEN_MODEL)
        self.changed.emit()

    def loaded_model(self, path: str) -> None:
        """The trained model at ``path`` is now the detector."""
        self.state = self.running = ModelState.MODEL
        self.model_path = str(path)
        self.label = f"Model: {Path(path).name}"
        self.tooltip = self.model_path
        self.banner = Banner()
        self.changed.emit()

    def load_failed(self, path: str, message: str) -> bool:
        """A load failed with ``message``. True: nothing runs yet and a model was asked for, so the caller
        starts the classic face finder (this model already says so); False: the old detector goes on."""
        if self.running is ModelState.NONE and path:
            self.start_loading(None)
            self.banner = self._error_banner(message, "the classic face finder (starting…)")
            self.pending_error = message  # shown again once the classic finder is in
            self.changed.emit()
            return True
        self.state = self.running
        if self.state is ModelState.MODEL and self.model_path:
            self.label = f"Model: {Path(self.model_path).name}"
        elif self.state is ModelState.CLASSIC:
            self.label = "Model: classic face finder (no model)"
        else:
            self.label = "Model: —"
        still = (f"the previous model ({Path(self.model_path or '').name})" if self.running is ModelState.MODEL
                 else "the classic face finder")
        self.banner = self._error_banner(message, still)
        self.changed.emit()
        return False

    def _error_banner(self, message: str, still_using: str) -> Banner:
        self.pending_error = None
        return Banner(BannerKind.ERROR, f"<b>Could not use this model.</b> {html.escape(message)}<br>"
                                        f"Detecting with {still_using} instead.", OPEN_MODEL)

    # --- what the tab shows ----------------------------------------------------------------------
    def status_part(self) -> str | None:
        """The status line's last part: "model: loading…", "model: best.keras", or None."""
        if self.state is ModelState.LOADING:
            return "model: loading…"
        if self.model_path and self.state is ModelState.MODEL:
            return f"model: {Path(self.model_path).name}"
        if self.state is ModelState.CLASSIC:
            return "model: none (classic face finder)"
        return None


def status_line(
    source: str,
    live: bool,
    running: bool,
    fps: float,
    inference_ms: tuple[float, float] | None,
    dropped: int,
    device: str | None,
    model: str | None,
) -> str:
    """The Detect tab's status line: source and its fps, inference time (mean, max), dropped frames,
    device, model; e.g. "Camera 0: camera 29.8 fps  ·  inference 4.1 ms (max 9)  ·  dropped 3  ·  CPU"."""
    parts = [f"{source}: {'camera' if live else 'video'} {fps:.1f} fps" if running else f"{source}: stopped"]
    parts.append(f"inference {inference_ms[0]:.1f} ms (max {inference_ms[1]:.0f})" if inference_ms else "inference —")
    parts.append(f"dropped {dropped}")
    parts.append(device or "device —")
    if model:
        parts.append(model)
    return "  ·  ".join(parts)

"""What the Detect tab detects with, and what it says about it: a Qt-free model of its detector.

The tab (``desktop.detect_tab.DetectTab``) loads detectors in a worker thread and tells this model what
happened (loading started, a detector came, a load failed); the model decides what follows (the
fallbacks: a model that cannot be used gives way to the pretrained face detector, and that to the
classic face finder) and the words shown (the model label, the banner, the status line's model part).
The tab listens to :attr:`DetectorState.changed` and renders; the rules are tested without Qt
(tests/test_detector_state.py).

Without a model of one's own the tab detects with the pretrained face detector (MediaPipe's BlazeFace,
``training.inference.pretrained``): it finds real faces from the first start, and is said everywhere to be
"pretrained, not yet yours", so no one takes it for the model they will train.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from desktop.observable import Emitter

#: What the tab's loader is given to build the pretrained face detector (it has no file).
PRETRAINED = ":pretrained"
PRETRAINED_NOTICE = (
    "<b>No model of your own yet.</b> The blue boxes come from a <b>pretrained face detector</b> (MediaPipe's "
    "BlazeFace): it finds faces, but it is <b>not yet yours</b>. To make it yours: <b>Collect</b> pictures "
    "of yourself, <b>Label</b> them, <b>Train</b> (a new run starts from this detector) — or open a .keras model."
)
PRETRAINED_MODEL_LABEL = "Model: pretrained (BlazeFace), not yet yours"
PRETRAINED_TOOLTIP = ("MediaPipe's BlazeFace full-range face detector, pretrained on real faces and shipped with "
                      "FaceTracker: what you use until you train a model of your own, and what a new run starts from")
CLASSIC_NOTICE = (
    "<b>No model yet.</b> The amber boxes come from the <b>classic face finder</b> (scikit-image's LBP "
    "cascade), not from a trained model. To build your own detector: <b>Collect</b> pictures, "
    "<b>Label</b> them, <b>Train</b> — or open a .keras model."
)
OPEN_MODEL = "Open model…"  # the banner button that opens a model file


class ModelState(str, Enum):
    """What the tab detects with. A ``str`` so that ``state == "model"`` reads as it always did."""

    NONE = "none"        # nothing yet
    LOADING = "loading"  # a detector is being loaded; the old one runs meanwhile
    PRETRAINED = "pretrained"  # the pretrained face detector: no model of the user's own yet
    CLASSIC = "classic"  # the classic face finder: the pretrained detector could not be loaded
    MODEL = "model"      # a model file (the user's)

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
    """The detector in use (none, the pretrained detector, the classic finder or a model), the one loading,
    and what the tab shows.

    ``changed`` is emitted after every change, with no arguments.
    """

    def __init__(self) -> None:
        self.state = ModelState.NONE
        self.running = ModelState.NONE  # the detector running now: NONE, PRETRAINED, CLASSIC or MODEL
        self.model_path: str | None = None  # the model file running now
        self.loading: str | None = None  # what is loading (a path, PRETRAINED, or None: the classic finder)
        self.activity: str | None = None  # what the load is doing now, when it takes a while (an export)
        self.label = "Model: —"
        self.tooltip = ""
        self.banner = Banner()
        # failed loads' (headline, message), shown again once the detector that stood in is running
        self.pending_errors: list[tuple[str, str]] = []
        self.changed = Emitter()

    @property
    def pending_error(self) -> str | None:
        """The last failed load's message, until the detector standing in for it is running."""
        return self.pending_errors[-1][1] if self.pending_errors else None

    # --- what the tab tells the model ------------------------------------------------------------
    def start_loading(self, path: str | None) -> None:
        """A model file (``path``), the pretrained detector (:data:`PRETRAINED`) or the classic finder (None)
        starts loading in the background."""
        self.state = ModelState.LOADING
        self.loading = path
        self.activity = None
        if path is None:
            self.label = "Model: starting the classic face finder…"
            self.tooltip = ""
            self.banner = Banner(BannerKind.BUSY, "Starting the classic face finder (no model yet)…")
        elif path == PRETRAINED:
            self.label = "Model: starting the pretrained face detector…"
            self.tooltip = PRETRAINED_TOOLTIP
            self.banner = Banner(BannerKind.BUSY, "Starting the pretrained face detector (no model of your own "
                                                  "yet)…")
        else:
            name = Path(path).name
            self.label = f"Model: loading {name}…"
            self.banner = Banner(BannerKind.BUSY, f"Loading model <b>{html.escape(name)}</b>…")
        self.changed.emit()

    def preparing(self, text: str) -> None:
        """The load in progress is doing something that takes a while (``text``: "preparing best.keras for
        LiteRT …", once per model): said in the banner and the status line; the old detector runs on."""
        if self.state is not ModelState.LOADING:
            return
        self.activity = text
        self.banner = Banner(BannerKind.BUSY, html.escape(text[:1].upper() + text[1:]))
        self.changed.emit()

    def loaded_pretrained(self) -> None:
        """The pretrained face detector is now the detector; a model that failed before is named again."""
        self.state = self.running = ModelState.PRETRAINED
        self.model_path = None
        self.label = PRETRAINED_MODEL_LABEL
        self.tooltip = PRETRAINED_TOOLTIP
        self._notice_or_pending(PRETRAINED_NOTICE, "the pretrained face detector (not yet yours)")
        self.changed.emit()

    def loaded_classic(self) -> None:
        """The classic face finder is now the detector; what failed before it is named again."""
        self.state = self.running = ModelState.CLASSIC
        self.model_path = None
        self.label = "Model: classic face finder (no model)"
        self.tooltip = ""
        self._notice_or_pending(CLASSIC_NOTICE, "the classic face finder")
        self.changed.emit()

    def loaded_model(self, path: str, pretrained: bool = False) -> None:
        """The model file at ``path`` is now the detector (``pretrained``: a saved copy of the pretrained
        detector, which is still not the user's own)."""
        self.state = self.running = ModelState.MODEL
        self.model_path = str(path)
        self.label = f"Model: {Path(path).name}" + (" (pretrained, not yet yours)" if pretrained else "")
        self.tooltip = self.model_path
        self.banner = Banner()
        self.pending_errors = []
        self.changed.emit()

    def load_failed(self, path: str, message: str) -> bool:
        """A load failed with ``message``. True: nothing runs yet and something was asked for, so the caller
        loads what stands in for it, :attr:`loading` (a model gives way to the pretrained detector, that to
        the classic finder; this state already says so). False: the old detector goes on."""
        headline = _headline(path)
        if self.running is ModelState.NONE and path:
            fallback = PRETRAINED if path != PRETRAINED else None
            self.start_loading(fallback)
            self.pending_errors.append((headline, message))  # shown again once the stand-in is running
            starting = "the pretrained face detector" if fallback == PRETRAINED else "the classic face finder"
            self.banner = self._error_banner(f"{starting} (starting…)", keep=True)
            self.changed.emit()
            return True
        self.state = self.running
        self.loading = None
        self.pending_errors = [(headline, message)]
        if self.state is ModelState.MODEL and self.model_path:
            self.label = f"Model: {Path(self.model_path).name}"
            still = f"the previous model ({Path(self.model_path).name})"
        elif self.state is ModelState.PRETRAINED:
            self.label, still = PRETRAINED_MODEL_LABEL, "the pretrained face detector (not yet yours)"
        elif self.state is ModelState.CLASSIC:
            self.label, still = "Model: classic face finder (no model)", "the classic face finder"
        else:
            self.label, still = "Model: —", None
        self.banner = self._error_banner(still)
        self.changed.emit()
        return False

    def _notice_or_pending(self, notice: str, still_using: str) -> None:
        """The banner once a stand-in runs: what failed before it, else the stand-in's notice."""
        if self.pending_errors:
            self.banner = self._error_banner(still_using)
        else:
            self.banner = Banner(BannerKind.NOTICE, notice, OPEN_MODEL)

    def _error_banner(self, still_using: str | None, keep: bool = False) -> Banner:
        """Every failed load's headline and message, and what detects instead (None: nothing does); the
        messages are forgotten unless ``keep`` (they are shown again once the stand-in runs)."""
        lines = [f"<b>{html.escape(headline)}</b> {html.escape(message)}" for headline, message in self.pending_errors]
        lines.append(f"Detecting with {still_using} instead." if still_using else "No face detector is running.")
        if not keep:
            self.pending_errors = []
        return Banner(BannerKind.ERROR, "<br>".join(lines), OPEN_MODEL)

    # --- what the tab shows ----------------------------------------------------------------------
    def status_part(self) -> str | None:
        """The status line's last part: "model: loading…", "model: best.keras", or None."""
        if self.state is ModelState.LOADING:
            if self.activity:  # its first words: the banner has the whole sentence
                return f"model: {self.activity.split(' (')[0].rstrip('…')}…"
            return "model: loading…"
        if self.model_path and self.state is ModelState.MODEL:
            return f"model: {Path(self.model_path).name}"
        if self.state is ModelState.PRETRAINED:
            return "model: pretrained (BlazeFace), not yet yours"
        if self.state is ModelState.CLASSIC:
            return "model: none (classic face finder)"
        return None


def _headline(path: str) -> str:
    """The first words of a failed load's message: what could not be used."""
    if path == PRETRAINED:
        return "The pretrained face detector could not start."
    if not path:
        return "The classic face finder could not start."
    return "Could not use this model."


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

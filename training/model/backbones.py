"""Every per-backbone fact in one table (:data:`BACKBONES`), in plain Python, so the CLI's help, TrainConfig,
the desktop's Train tab, the trainer and the model builders all read the same spec without importing Keras.

One :class:`BackboneSpec` per backbone: its input size, learning rate, epochs and patience, its head (one box,
or a score and a box per cell; one face or every face), its pretrained start and weight choices, and what
its builder and losses need (pixel scaling, head width, box decoding, cell stride, face reach, XLA). The
builders live one file per family (``training.model.grid``, ``tiny``, ``applications``, ``blazeface``), as
``keras.applications`` keeps one file per architecture; ``training.model.build.build_model`` dispatches.
Measured figures behind these choices are in ``docs/models.md`` and the ``benchmarks/`` output.
"""

from __future__ import annotations

from dataclasses import dataclass


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were asked for but could not be downloaded or read (offline, say)."""


#: What a blazeface run with its face weights starts from (config.json's ``started_from``, the Train tab).
BLAZEFACE_START = "MediaPipe BlazeFace full-range (pretrained on real faces)"
#: What a grid or multiface run with its face weights starts from.
FACE_STEM_START = "MTCNN's face-trained first layers (RNet), the rest from scratch"
FACE_STEM_SCALE, FACE_STEM_OFFSET = 1 / 128.0, -127.5 / 128.0  # MTCNN's pixel scaling (the grid family's stem)


@dataclass(frozen=True)
class BackboneSpec:
    """Everything FaceTracker knows of one backbone: how it trains, what it starts from, how it is built."""

    name: str
    #: The builder family (the module of ``training.model`` that builds it): "blazeface", "grid", "tiny",
    #: "applications" (``keras.applications``' VGG16 and MobileNetV2).
    family: str
    #: Square input side in pixels when none is given.
    default_input_size: int
    #: Starting learning rate, epochs, and early stopping's patience (epochs without a better validation
    #: AP50 for a multi-face backbone, F1 then mean IoU for the others) when none are given.
    learning_rate: float
    epochs: int
    patience: int
    #: The head: "max" (the tutorial's GlobalMaxPooling2D), "flatten" (keeps where things are) or "grid"
    #: (a face score and a box per cell of a feature map, decoded in the model).
    box_pooling: str
    #: Whether it answers for every face (a per-cell head with every cell's score and box as outputs,
    #: trained on every labelled face, NMS at inference); False: one face, the best.
    multi_face: bool
    #: The pretrained start it can have: "imagenet" (downloaded once by keras.applications), "face"
    #: (face-trained weights shipped with FaceTracker or the mtcnn package) or None.
    pretrained: str | None
    #: What a run with those pretrained weights starts from, in words (config.json's ``started_from``).
    pretrained_start: str | None
    #: Pixel scaling of the model's first layer: x * scale + offset.
    scale: float
    offset: float
    #: Units of the head's hidden layer (the grid head's channels; 0: blazeface's own head).
    head_units: int
    #: How a per-cell head's box values become boxes: "grid" (sigmoid offsets within reach of the cell, sizes
    #: as fractions) or "anchor" (BlazeFace's: centre = anchor + value / input size).
    box_decoding: str = "grid"
    #: How far around a face's centre cell (in cells, as a fraction of the face's width/height) cells are
    #: trained to box it and are not counted as "no face" (at least the 3x3 block): see multi_face_losses.
    face_reach: float = 0.0
    #: The face size (fraction of the input) at which the tutorial's localization loss is kept as it is; other
    #: faces' box errors are weighed in their own size (multi_face_losses' size_reference). None: as it is.
    box_loss_size: float | None = None
    #: Input pixels per cell of a per-cell head's maps (its cells: (input_size / cell_stride) ** 2).
    cell_stride: int = 8
    #: Whether Detector compiles its forward pass with XLA: faster for plain convolutions, much slower for
    #: depthwise ones (blazeface; docs/models.md has the figures).
    xla: bool = True

    @property
    def grid(self) -> bool:
        """Whether it has the per-cell head (no tutorial-exact loss for it)."""
        return self.box_pooling == "grid"

    @property
    def has_imagenet_weights(self) -> bool:
        return self.pretrained == "imagenet"

    @property
    def weight_choices(self) -> tuple[str, ...]:
        """The ``--weights`` choices this backbone accepts: auto, its pretrained start if any, none."""
        return ("auto", self.pretrained, "none") if self.pretrained else ("auto", "none")

    @property
    def input_multiple(self) -> int:
        """What a per-cell head's input side must be a multiple of (1: any size of at least 32)."""
        if not self.grid:
            return 1
        return 32 if self.box_decoding == "anchor" else 2 * self.cell_stride


_BACKBONE_LIST = (
    # The default: MediaPipe's full-range BlazeFace (training.model.blazeface), pretrained on real faces, so
    # what it learns from a user's few hundred pictures adds to knowing faces instead of replacing it; it is
    # fine-tuned with the seed's losses per face. A score and a box for each cell of a 48x48 map (4 input
    # pixels apart) at 192 px, as multiface has; it already finds real faces before any training.
    BackboneSpec("blazeface", "blazeface", 192, learning_rate=1e-4, epochs=10, patience=15, box_pooling="grid",
                 multi_face=True, pretrained="face", pretrained_start=BLAZEFACE_START, scale=1 / 127.5, offset=-1.0,
                 head_units=0, box_decoding="anchor", face_reach=0.25, box_loss_size=0.25, cell_stride=4, xla=False),
    # The grid network below answering for every face: besides grid's best face it outputs every cell's
    # score and box (``scores``, ``boxes``), which Detector.detect_all thresholds and thins out with
    # non-maximum suppression (training.core.boxes.faces_from_cells). Trained on every labelled face.
    BackboneSpec("multiface", "grid", 128, learning_rate=2e-3, epochs=40, patience=15, box_pooling="grid",
                 multi_face=True, pretrained="face", pretrained_start=FACE_STEM_START, scale=FACE_STEM_SCALE,
                 offset=FACE_STEM_OFFSET, head_units=64),
    # A small CNN whose head gives every cell of a 16x16 map (8 input pixels apart) its own face score and
    # box, so one set of weights finds a face anywhere in the frame (translation-equivariant, as in CenterNet
    # or BlazeFace) instead of learning each position; it answers with its best face. 128 px: a 60 px face
    # in a 640x480 frame is still 12 px wide. Its stem starts from MTCNN's face-trained weights, which learn
    # fast (docs/models.md).
    BackboneSpec("grid", "grid", 128, learning_rate=2e-3, epochs=40, patience=15, box_pooling="grid",
                 multi_face=False, pretrained="face", pretrained_start=FACE_STEM_START, scale=FACE_STEM_SCALE,
                 offset=FACE_STEM_OFFSET, head_units=64),
    # A small single-box CNN that learns from scratch: bigger steps and more epochs than a pretrained
    # backbone (a larger rate sometimes left the box sigmoids saturated for many epochs). 80 px: faces fill
    # much of a webcam frame, and a small input trains many epochs per CPU minute.
    BackboneSpec("tiny", "tiny", 80, learning_rate=1e-3, epochs=60, patience=15, box_pooling="flatten",
                 multi_face=False, pretrained=None, pretrained_start=None, scale=1 / 255.0, offset=0.0,
                 head_units=256),
    # A MobileNet-class backbone: fast, with ImageNet weights when there is internet.
    BackboneSpec("mobilenetv2", "applications", 128, learning_rate=1e-4, epochs=10, patience=15, box_pooling="max",
                 multi_face=False, pretrained="imagenet", pretrained_start="mobilenetv2 with ImageNet weights, "
                 "the heads from scratch", scale=1 / 127.5, offset=-1.0, head_units=512),
    # The tutorial's model, exactly: VGG16 at 120x120, /255, GlobalMaxPooling2D -> Dense(2048) heads, 1e-4
    # and 10 epochs (for a pretrained VGG16 fed 60 offline copies of every picture per epoch).
    BackboneSpec("vgg16", "applications", 120, learning_rate=1e-4, epochs=10, patience=15, box_pooling="max",
                 multi_face=False, pretrained="imagenet", pretrained_start="vgg16 with ImageNet weights, "
                 "the heads from scratch", scale=1 / 255.0, offset=0.0, head_units=2048),
)
#: The table: backbone name -> its spec, the default first.
BACKBONES: dict[str, BackboneSpec] = {spec.name: spec for spec in _BACKBONE_LIST}
BACKBONE_NAMES = tuple(BACKBONES)
DEFAULT_BACKBONE = BACKBONE_NAMES[0]
#: Backbones with the per-cell head, and those answering for every face (read from the table).
GRID_BACKBONES = tuple(name for name, spec in BACKBONES.items() if spec.grid)
MULTI_FACE_BACKBONES = tuple(name for name, spec in BACKBONES.items() if spec.multi_face)
#: Faces per picture a multi-face model trains on (the largest ones; WIDER FACE pictures hold hundreds).
MAX_FACES = 32
DEFAULT_BATCH_SIZE = 8  # the tutorial's
#: A backbone's start: auto (its pretrained weights when it has them and they can be had, else from
#: scratch), imagenet (mobilenetv2, vgg16; downloaded once), face (blazeface: MediaPipe's weights, shipped;
#: grid, multiface: MTCNN's face-trained stem, shipped in the mtcnn package), none (from scratch).
WEIGHT_CHOICES = ("auto", "imagenet", "face", "none")
SCRATCH_START = "random weights (from scratch)"


def resolved_weights(backbone: str, weights: str) -> str:
    """The start a weights choice gives a backbone: ``auto`` its pretrained weights (or none), else the choice."""
    if weights == "auto":
        return BACKBONES[backbone].pretrained or "none"
    return weights


def describe_start(backbone: str, weights: str | None) -> str:
    """What a new run of ``backbone`` starts from with the resolved ``weights``, in words (config.json's
    ``started_from``, the CLI's and the Train tab's lines). Plain Python: the Train tab calls it before Start."""
    spec = BACKBONES.get(backbone)
    if spec is not None and weights is not None and weights == spec.pretrained and spec.pretrained_start:
        return spec.pretrained_start
    if weights == "face":
        return FACE_STEM_START
    if weights == "imagenet":
        return f"{backbone} with ImageNet weights, the heads from scratch"
    return SCRATCH_START


def start_text(backbone: str, weights: str) -> tuple[str, bool]:
    """What a new run of ``backbone`` with the ``weights`` choice starts from, in words, before it runs (the
    Train tab), and whether the trainer accepts that choice (a backbone without those weights is refused)."""
    resolved = resolved_weights(backbone, weights)
    if resolved in ("face", "imagenet") and BACKBONES[backbone].pretrained != resolved:
        kind = "face-trained" if resolved == "face" else "ImageNet"
        return f"{backbone} has no {kind} weights: choose auto or none", False
    text = describe_start(backbone, resolved)
    if weights == "auto" and resolved == "imagenet":
        text += " (downloaded once; from scratch when offline)"
    return text, True


#: A fine-tune (``--from MODEL``, training.engine.finetune): a short run from the user's model at a tenth of the
#: backbone's rate, so it learns the kept frames without forgetting what it knew.
FINETUNE_EPOCHS = 3
FINETUNE_RATE_FACTOR = 0.1


def finetune_learning_rate(backbone: str) -> float:
    """A fine-tune's starting rate when none is given: a tenth of the backbone's own."""
    return BACKBONES[backbone].learning_rate * FINETUNE_RATE_FACTOR

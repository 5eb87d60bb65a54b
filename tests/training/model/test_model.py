"""The two-head network: every backbone builds, outputs the contract's shapes and ranges, saves and loads."""

import keras
import numpy as np
import pytest

from training.model.backbones import BACKBONES, MULTI_FACE_BACKBONES, WeightsUnavailableError
from training.model.build import build_model, model_input_size


@pytest.fixture(scope="module")
def tiny():
    keras.utils.set_random_seed(0)
    return build_model("tiny", 64)


def random_pixels(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype(np.float32)


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_each_backbone_builds_at_its_default_size(backbone):
    """vgg16 (~14.7 M backbone parameters) is only built, never trained, here."""
    model = build_model(backbone, weights=None)
    size = BACKBONES[backbone].default_input_size
    assert model_input_size(model) == size
    assert model.inputs[0].shape[1:] == (size, size, 3)
    count = (size // BACKBONES[backbone].cell_stride) ** 2
    cells = [(None, count), (None, count, 4)] if backbone in MULTI_FACE_BACKBONES else []
    assert [tuple(out.shape) for out in model.outputs] == [(None, 1), (None, 4), *cells]
    assert [model.get_layer(name).name for name in ("class", "box")] == ["class", "box"]


@pytest.mark.parametrize("backbone", sorted(b for b, spec in BACKBONES.items() if spec.box_pooling != "grid"))
def test_single_box_heads_end_in_sigmoids(backbone):
    model = build_model(backbone, weights=None)
    assert model.get_layer("box").activation.__name__ == "sigmoid"
    assert model.get_layer("class").activation.__name__ == "sigmoid"


def test_vgg16_is_the_tutorials_network():
    model = build_model("vgg16", weights=None)
    assert model_input_size(model) == 120
    assert model.get_layer("class_hidden").units == 2048
    assert model.get_layer("box_hidden").units == 2048
    assert isinstance(model.get_layer("box_pool"), keras.layers.GlobalMaxPooling2D)
    vgg = next(layer for layer in model.layers if layer.name.startswith("vgg16"))
    assert 14.5e6 < vgg.count_params() < 15e6


@pytest.mark.parametrize("backbone,size", [("tiny", 64), ("tiny", 80), ("mobilenetv2", 96)])
def test_outputs_have_contract_shapes_and_ranges(backbone, size):
    model = build_model(backbone, size, weights=None)
    scores, boxes = model.predict(random_pixels(3, size), verbose=0)
    assert scores.shape == (3, 1) and boxes.shape == (3, 4)
    assert scores.dtype == np.float32 and boxes.dtype == np.float32
    assert np.all((scores >= 0) & (scores <= 1))
    assert np.all((boxes >= 0) & (boxes <= 1))


def test_scaling_travels_inside_the_model(tiny):
    """Pixels go in as 0..255; the first layer rescales, so a saved file carries it."""
    layer = tiny.get_layer("scale_pixels")
    assert isinstance(layer, keras.layers.Rescaling)
    assert layer.scale == pytest.approx(1 / 255)


def test_save_then_load_gives_the_same_predictions(tiny, tmp_path):
    path = tmp_path / "tiny.keras"
    tiny.save(path)
    loaded = keras.models.load_model(path)  # safe mode, no custom objects
    x = random_pixels(4, 64, seed=1)
    for before, after in zip(tiny.predict(x, verbose=0), loaded.predict(x, verbose=0), strict=True):
        np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-6)
    assert model_input_size(loaded) == 64


def test_same_seed_same_weights():
    keras.utils.set_random_seed(3)
    a = build_model("tiny", 48)
    keras.utils.set_random_seed(3)
    b = build_model("tiny", 48)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"backbone": "resnet"}, "unknown backbone"),
        ({"input_size": 16}, "at least 32"),
        ({"weights": "coco"}, "weights must be"),
        ({"backbone": "tiny", "weights": "imagenet"}, "no ImageNet weights"),
        ({"backbone": "grid", "weights": "imagenet"}, "no ImageNet weights"),
        ({"backbone": "vgg16", "weights": "face"}, "no face-trained weights"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_model(**kwargs)


def test_offline_imagenet_weights_raise_weights_unavailable(monkeypatch):
    """keras.applications fetch weights with get_file; failing it is what being offline looks like."""
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(WeightsUnavailableError, match="mobilenetv2"):
        build_model("mobilenetv2", 96, weights="imagenet")


# ------------------------------------------------------------------------------- the grid default


def test_face_weights_are_the_mtcnn_packages_rnet():
    """weights="face" starts the grid stem from the RNet weights the mtcnn package ships (no download)."""
    import importlib.resources

    import joblib
    rnet = joblib.load(str(importlib.resources.files("mtcnn.assets.weights") / "rnet.lz4"))
    pretrained = build_model("grid", 128, weights="face")
    scratch = build_model("grid", 128, weights=None)
    for i in range(3):
        kernel, bias = pretrained.get_layer(f"face_stem_conv{i + 1}").get_weights()
        np.testing.assert_array_equal(kernel, rnet[3 * i])
        np.testing.assert_array_equal(bias, rnet[3 * i + 1])
        assert not np.array_equal(scratch.get_layer(f"face_stem_conv{i + 1}").get_weights()[0], rnet[3 * i])


def test_missing_face_weights_raise_weights_unavailable(monkeypatch):
    """Without the mtcnn package (or its weights file) the error says so and what to do."""
    import importlib.resources

    def missing(package):
        raise ModuleNotFoundError(f"No module named {package!r}")

    monkeypatch.setattr(importlib.resources, "files", missing)
    with pytest.raises(WeightsUnavailableError, match="mtcnn"):
        build_model("grid", 64, weights="face")


def test_grid_model_answers_with_its_best_cell(tmp_path):
    """The saved grid model's [score, box] is the best cell's score and its block's box, decoded in the graph."""
    from training.model.backbones import BACKBONES
    from training.model.build import grid_cell_boxes, grid_maps_model, is_grid_model

    keras.utils.set_random_seed(3)
    model = build_model("grid")
    assert is_grid_model(model) and model.name == "facetracker_grid"
    size = BACKBONES["grid"].default_input_size
    x = np.random.default_rng(0).uniform(0, 255, (3, size, size, 3)).astype(np.float32)
    score, box = (np.asarray(v) for v in model.predict(x, verbose=0))
    logits, box_map = (np.asarray(v) for v in grid_maps_model(model).predict(x, verbose=0))
    grid = logits.shape[1]
    assert logits.shape == (3, grid, grid, 1) and box_map.shape == (3, grid, grid, 4) and grid == size // 8
    cells = np.asarray(grid_cell_boxes(box_map, grid)).reshape(3, grid, grid, 4)
    flat = logits.reshape(3, -1)
    np.testing.assert_allclose(score[:, 0], 1 / (1 + np.exp(-flat.max(axis=1))), rtol=1e-5)
    for i, best in enumerate(flat.argmax(axis=1)):  # the best cell's 3x3 block, boxes weighted by their scores
        row, column = divmod(int(best), grid)
        rows, columns = slice(max(row - 1, 0), row + 2), slice(max(column - 1, 0), column + 2)
        weights = 1 / (1 + np.exp(-logits[i, rows, columns, 0]))
        expected = (weights[..., None] * cells[i, rows, columns]).sum(axis=(0, 1)) / weights.sum()
        np.testing.assert_allclose(box[i], np.clip(expected, 0, 1), atol=1e-5)
    path = tmp_path / "grid.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe mode, no custom objects
    np.testing.assert_allclose(loaded.predict(x, verbose=0)[1], box, atol=1e-6)


def test_grid_input_must_fit_its_cells():
    with pytest.raises(ValueError, match="multiple of 16"):
        build_model("grid", 100)

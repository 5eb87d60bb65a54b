"""The two-head network: every backbone builds, outputs the contract's shapes and ranges, saves and loads."""

import keras
import numpy as np
import pytest

from training.model import BACKBONES, WeightsUnavailableError, build_model, model_input_size


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
    assert [tuple(out.shape) for out in model.outputs] == [(None, 1), (None, 4)]
    assert [model.get_layer(name).name for name in ("class", "box")] == ["class", "box"]
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

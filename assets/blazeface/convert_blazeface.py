"""Copy MediaPipe's full-range BlazeFace weights into ``face_detection_full_range.npz`` (this folder).

Run once by a maintainer, not by users (the ``.npz`` is committed)::

    pip download --no-deps mediapipe==0.10.21 -d /tmp/mp && unzip -o /tmp/mp/mediapipe-*.whl \\
        'mediapipe/modules/face_detection/*' -d /tmp/mp
    python assets/blazeface/convert_blazeface.py \\
        /tmp/mp/mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite

It reads the ``.tflite`` graph with the LiteRT interpreter (``ai-edge-litert``, a test extra), takes
every convolution's kernel and bias in the order the graph runs them (the sparse, float16 weights are
densified and dequantised by the interpreter itself), turns them into Keras' layouts and checks that
the Keras network of :mod:`training.model.blazeface` gives the interpreter's answers on real photographs
before it writes anything.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def read_weights(tflite_path: Path) -> tuple[dict[str, np.ndarray], object]:
    """Every convolution's (kernel, bias) in graph order, in Keras' layouts, and the ready interpreter."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # No XNNPACK delegate: it would take the whole graph over and leave the dequantised weights unwritten.
    interpreter = Interpreter(model_path=str(tflite_path), experimental_preserve_all_tensors=True,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    shape = interpreter.get_input_details()[0]["shape"]
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.zeros(shape, np.float32))
    interpreter.invoke()  # the DEQUANTIZE/DENSIFY ops fill the float weights in
    arrays: dict[str, np.ndarray] = {}
    index = 0
    for op in interpreter._get_ops_details():  # noqa: SLF001 - the op list is only exposed this way
        if op["op_name"] not in WEIGHT_OPS:
            continue
        index += 1
        kernel = interpreter.get_tensor(int(op["inputs"][1]))
        bias = interpreter.get_tensor(int(op["inputs"][2]))
        if op["op_name"] == "CONV_2D":  # (out, kh, kw, in) -> (kh, kw, in, out)
            kernel = np.transpose(kernel, (1, 2, 3, 0))
        else:  # (1, kh, kw, channels) -> (kh, kw, channels, 1)
            kernel = np.transpose(kernel, (1, 2, 3, 0))
        arrays[f"{index:03d}_kernel"] = kernel.astype(np.float32)
        arrays[f"{index:03d}_bias"] = bias.astype(np.float32)
    return arrays, interpreter


def _photos() -> list[np.ndarray]:
    import skimage
    from matplotlib import cbook
    from PIL import Image

    data = Path(skimage.__file__).parent / "data"
    paths = [data / "astronaut.png", data / "coffee.png", Path(cbook.get_sample_data("grace_hopper.jpg",
                                                                                     asfileobj=False))]
    return [np.asarray(Image.open(p).convert("RGB").resize((192, 192)), np.float32) for p in paths]


def check(arrays: dict[str, np.ndarray], interpreter) -> float:
    """The largest difference between the Keras network and the interpreter on three photographs."""
    import keras

    from training.model.blazeface import blazeface_maps, load_blazeface_weights

    pixels = keras.Input((192, 192, 3))
    scores, boxes = blazeface_maps(pixels)
    model = keras.Model(pixels, [scores, boxes])
    out = Path("/tmp/_blazeface_check.npz")
    np.savez(out, **arrays)
    load_blazeface_weights(model, out)
    inputs = interpreter.get_input_details()[0]["index"]
    outputs = {tuple(o["shape"])[-1]: o["index"] for o in interpreter.get_output_details()}
    worst = 0.0
    for photo in _photos():
        interpreter.set_tensor(inputs, (photo / 127.5 - 1.0)[np.newaxis])
        interpreter.invoke()
        want_scores = interpreter.get_tensor(outputs[1]).reshape(-1)
        want_boxes = interpreter.get_tensor(outputs[16]).reshape(-1, 16)
        got_scores, got_boxes = (np.asarray(v) for v in model(photo[np.newaxis]))
        worst = max(worst, float(np.abs(got_scores.reshape(-1) - want_scores).max()),
                    float(np.abs(got_boxes.reshape(-1, 16) - want_boxes).max()))
        print(f"best score logit: keras {got_scores.max():.4f}, tflite {want_scores.max():.4f}")
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tflite", type=Path, help="face_detection_full_range_sparse.tflite from mediapipe 0.10.x")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("face_detection_full_range.npz"))
    args = parser.parse_args(argv)
    arrays, interpreter = read_weights(args.tflite)
    worst = check(arrays, interpreter)
    print(f"{len(arrays) // 2} layers; largest difference from the interpreter: {worst:.2e}")
    if worst > 1e-3:
        print("not written: the Keras network does not give the interpreter's answers", file=sys.stderr)
        return 1
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

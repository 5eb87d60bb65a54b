"""Time the dataset scan (``training.data.dataset.load_dataset``) and the header read (``image_size``).

    python benchmarks/bench_scan.py [--pictures 400] [--repeats 5] [--json]

Writes ``--pictures`` 640x480 JPEGs (a photo moved over a textured background, a third of them with an
EXIF orientation, half labelled) into a temporary ``images/`` + ``labels/`` dataset, then reports the best
of ``--repeats`` runs of: the whole scan (every picture's pixel data checked, every label read) and the
header read alone (size and EXIF orientation, what ``image_size`` does per picture).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402


def write_dataset(root: Path, pictures: int) -> Path:
    """A flat dataset of ``pictures`` 640x480 JPEGs; every other one labelled with a face box."""
    import skimage.data
    from PIL import Image

    from training.data.formats.labelme import write_labelme

    photo = cv2.resize(cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR), (240, 240))
    rng = np.random.default_rng(0)
    background = rng.integers(40, 200, size=(480, 640, 3), dtype=np.uint8)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(pictures):
        frame = background.copy()
        x, y = 10 + (i * 7) % 380, 10 + (i * 5) % 220
        frame[y : y + 240, x : x + 240] = photo
        path = root / "images" / f"p{i:04d}.jpg"
        if i % 3 == 0:  # the phone's way: pixels as taken, the turn in EXIF
            buffer = io.BytesIO()
            exif = Image.Exif()
            exif[0x0112] = 1 if i % 2 else 3  # upright or upside down: the shown size stays 640x480
            Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)).save(buffer, "JPEG", quality=90, exif=exif)
            path.write_bytes(buffer.getvalue())
        else:
            path.write_bytes(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
        if i % 2 == 0:
            write_labelme(root / "labels" / f"p{i:04d}.json", path, (x, y, x + 240, y + 240), 640, 480)
    return root


def best_of(repeats: int, work) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    from training.data.dataset import load_dataset
    from training.data.pictures import image_size

    with tempfile.TemporaryDirectory() as folder:
        root = write_dataset(Path(folder) / "data", args.pictures)
        paths = sorted((root / "images").iterdir())
        dataset = load_dataset(root)  # warm the file cache and the imports
        assert not dataset.problems, dataset.problems
        scan = best_of(args.repeats, lambda: load_dataset(root))
        header = best_of(args.repeats, lambda: [image_size(p) for p in paths])
    figures = {
        "pictures": args.pictures,
        "scan_s": round(scan, 4),
        "scan_ms_per_picture": round(1000 * scan / args.pictures, 3),
        "image_size_us_per_picture": round(1e6 * header / args.pictures, 1),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"load_dataset on {args.pictures} 640x480 JPEGs: {scan:.3f} s "
              f"({figures['scan_ms_per_picture']} ms a picture, best of {args.repeats})")
        print(f"image_size (header and EXIF orientation): {figures['image_size_us_per_picture']} µs a picture")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The double-click app's figures: build time, bundle size, cold start and self-check.

Run on demand (not part of the test suite)::

    python benchmarks/bench_bundle.py                    # build into a temporary folder, then measure
    python benchmarks/bench_bundle.py --dist dist        # measure an existing dist/FaceTracker

Start time is wall time from launching the executable to the window's event loop running (the app
prints a line then, under its hidden ``--quit-after`` option), under ``QT_QPA_PLATFORM=offscreen``.
The first launch after a build reads 2 GB of libraries from disk; later ones come from the page
cache, which is what a user sees on the second double-click. The same figure for ``python -m desktop``
in this environment is shown beside it. TensorFlow is imported after the window is up, so it is not in
these times; the self-check's own timing covers it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXE_NAME = "FaceTracker.exe" if os.name == "nt" else "FaceTracker"


def build(dist: Path, work: Path) -> float:
    """Run PyInstaller on build.spec; return the seconds it took."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "ERROR",
                    "--distpath", str(dist), "--workpath", str(work), "build.spec"], cwd=ROOT, check=True)
    return time.perf_counter() - started


def sizes(app_dir: Path, top: int = 8) -> tuple[int, list[tuple[str, int]]]:
    """Total bytes, and the biggest top-level parts of ``_internal`` (package folders or libraries)."""
    parts: Counter[str] = Counter()
    total = 0
    for path in app_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            size = path.stat().st_size
            total += size
            relative = path.relative_to(app_dir).parts
            parts[relative[1] if relative[0] == "_internal" and len(relative) > 1 else relative[0]] += size
    return total, parts.most_common(top)


def seconds_to_window(command: list[str], env: dict[str, str], cwd: Path) -> float:
    """Launch ``command`` and return the wall time until it reports its window's event loop running."""
    started = time.perf_counter()
    process = subprocess.Popen(command + ["--quit-after", "0.5", "--settings", str(cwd / "bench.ini")],
                               cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    shown = None
    for line in process.stdout:
        if line.startswith("window shown") and shown is None:
            shown = time.perf_counter() - started
    process.wait(timeout=120)
    if shown is None:
        raise RuntimeError(f"{command[0]} exited with {process.returncode} before showing its window")
    return shown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dist", type=Path, help="folder holding an already built FaceTracker/ (skips the build)")
    parser.add_argument("--starts", type=int, default=5, help="launches to time (the first is the cold one)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="facetracker-bundle-") as scratch:
        scratch_dir = Path(scratch)
        if args.dist is None:
            dist = scratch_dir / "dist"
            print("building the bundle (a few minutes)...", flush=True)
            print(f"build time: {build(dist, scratch_dir / 'build'):.0f} s")
        else:
            dist = args.dist
        app_dir = dist / "FaceTracker"
        total, biggest = sizes(app_dir)
        print(f"bundle size: {total / 2**20:.0f} MiB ({app_dir})")
        for name, size in biggest:
            print(f"  {size / 2**20:7.0f} MiB  {name}")

        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HOME=str(scratch_dir))
        for label, command in (("bundle", [str(app_dir / EXE_NAME)]),
                               ("python -m desktop", [sys.executable, "-m", "desktop"])):
            times = [seconds_to_window(command, env, scratch_dir) for _ in range(args.starts)]
            print(f"start to window, {label}: first {times[0]:.2f} s, then median "
                  f"{statistics.median(times[1:] or times):.2f} s over {len(times[1:]) or 1}")

        started = time.perf_counter()
        check = subprocess.run([str(app_dir / EXE_NAME), "--self-check"], cwd=scratch_dir, env=env,
                               capture_output=True, text=True, timeout=600)
        print(f"self-check: exit {check.returncode} in {time.perf_counter() - started:.1f} s")
        print("\n".join("  " + line for line in check.stdout.splitlines()))
        return check.returncode


if __name__ == "__main__":
    raise SystemExit(main())

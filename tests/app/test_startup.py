"""Start-up that explains itself: a missing X11 library named with its install command instead of Qt's
abort, and OpenCV's own warnings kept off the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop.platform_check import (
    EXIT_MISSING_LIBRARIES,
    XCB_LIBRARIES,
    PlatformProblem,
    find_problem,
    platform_will_be_xcb,
    unloadable_library,
    xcb_plugin_paths,
)

REPO = Path(__file__).resolve().parents[2]
PLUGIN = Path("/qt/plugins/platforms/libqxcb.so")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Qt's xcb plugin is Linux's")


def _loader(missing: dict[str, str]):
    """A dlopen stand-in: each name in ``missing`` fails with the loader message given."""

    def load(name: str) -> None:
        if name in missing:
            raise OSError(missing[name])

    return load


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"DISPLAY": ":0"}, True),  # Qt's default on an X11 desktop
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, True),
        ({"QT_QPA_PLATFORM": "xcb"}, True),
        ({"QT_QPA_PLATFORM": "xcb:dpi=96"}, True),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, False),
        ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "wayland;xcb"}, False),  # wayland may well load
        ({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0", "XDG_SESSION_TYPE": "wayland"}, False),
        ({}, False),  # no display at all: Qt says so itself
    ],
)
def test_the_check_runs_only_when_qt_will_use_xcb(environ, expected) -> None:
    assert platform_will_be_xcb(environ, "linux") is expected
    assert platform_will_be_xcb(environ, "win32") is False


def test_a_plugin_that_loads_means_nothing_is_missing_whatever_the_table_says() -> None:
    everything_missing = {name: f"{name}: cannot open shared object file" for name in XCB_LIBRARIES}
    assert find_problem({"DISPLAY": ":0"}, loader=_loader(everything_missing), plugins=[PLUGIN],
                        platform="linux") is None


def test_every_missing_library_is_named_with_its_packages_and_the_install_commands() -> None:
    missing = {
        str(PLUGIN): "libxcb-icccm.so.4: cannot open shared object file: No such file or directory",
        "libxcb-icccm.so.4": "libxcb-icccm.so.4: cannot open shared object file: No such file or directory",
        "libxcb-keysyms.so.1": "libxcb-keysyms.so.1: cannot open shared object file: No such file or directory",
        # the cursor library is there, but one of its own needs is not: that one is named
        "libxcb-cursor.so.0": "libxcb-image.so.0: cannot open shared object file: No such file or directory",
        "libxcb-image.so.0": "libxcb-image.so.0: cannot open shared object file: No such file or directory",
    }
    problem = find_problem({"DISPLAY": ":0"}, loader=_loader(missing), plugins=[PLUGIN], platform="linux")
    assert problem is not None
    assert problem.missing == ("libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-image.so.0")
    message = problem.message()
    assert "sudo apt install libxcb-icccm4 libxcb-image0 libxcb-keysyms1" in message
    assert "sudo dnf install xcb-util-image xcb-util-keysyms xcb-util-wm" in message
    assert "libxcb-cursor0" not in message  # installed: only its missing dependency is named


@pytest.mark.parametrize(
    "error",
    [
        "/qt/plugins/platforms/libqxcb.so: undefined symbol: _ZN7QWindow4showEv",  # broken Qt, not a package
        "/qt/plugins/platforms/libqxcb.so: file too short",  # the plugin file itself is damaged
    ],
)
def test_a_failure_that_is_no_missing_library_lets_qt_speak(error) -> None:
    assert find_problem({"DISPLAY": ":0"}, loader=_loader({str(PLUGIN): error}), plugins=[PLUGIN],
                        platform="linux") is None


def test_loader_messages_name_the_library_that_could_not_load() -> None:
    assert unloadable_library("libxcb-icccm.so.4: cannot open shared object file: No such file") == "libxcb-icccm.so.4"
    assert unloadable_library("/tmp/x/libxcb-cursor.so.0: file too short") == "libxcb-cursor.so.0"
    assert unloadable_library("/lib/libxcb.so.1: version `XCB_9' not found (required by libqxcb.so)") is None
    assert unloadable_library("/lib/libfoo.so: undefined symbol: bar") is None


def test_an_unknown_library_gets_a_way_to_find_its_package_and_wayland_a_way_round() -> None:
    problem = PlatformProblem(("libxcb-cursor.so.0", "libweird.so.3"), "libweird.so.3: cannot open", wayland=True)
    message = problem.message()
    assert "apt-file search libweird.so.3" in message and "dnf provides '*/libweird.so.3'" in message
    assert "sudo apt install libxcb-cursor0" in message
    assert "QT_QPA_PLATFORM=wayland" in message


def _app_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY", "OPENCV_LOG_LEVEL", "FACETRACKER_SKIP_PLATFORM_CHECK")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


@linux_only
def test_the_app_names_a_missing_xcb_library_instead_of_aborting(tmp_path: Path) -> None:
    """The real thing: Qt's xcb plugin cannot load because libxcb-cursor.so.0, found first on the library
    path, is unreadable (as if missing). Without the check Qt aborts; with it, one clear message."""
    if not xcb_plugin_paths(os.environ):
        pytest.skip("this PySide6 has no xcb platform plugin")
    hidden = tmp_path / "lib"
    hidden.mkdir()
    (hidden / "libxcb-cursor.so.0").write_bytes(b"")  # the loader stops at it: "file too short"
    env = _app_env(QT_QPA_PLATFORM="xcb", DISPLAY=":93", LD_LIBRARY_PATH=str(hidden))
    command = [sys.executable, "-m", "desktop", "--settings", str(tmp_path / "app.ini"), "--quit-after", "1"]

    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_MISSING_LIBRARIES, done.stderr
    assert "libxcb-cursor.so.0  (Debian/Ubuntu package libxcb-cursor0, Fedora xcb-util-cursor)" in done.stderr
    install = [line.strip() for line in done.stderr.splitlines() if "install" in line and "sudo" in line]
    assert install[0].startswith("Debian/Ubuntu:  sudo apt install ") and "libxcb-cursor0" in install[0]
    assert install[1].startswith("Fedora:         sudo dnf install ") and "xcb-util-cursor" in install[1]
    assert "Could not load the Qt platform plugin" not in done.stderr

    # The same start without the check: Qt's own abort, which is what the check stands in front of.
    unchecked = subprocess.run(command, cwd=tmp_path, env={**env, "FACETRACKER_SKIP_PLATFORM_CHECK": "1"},
                               capture_output=True, text=True, timeout=120)
    assert unchecked.returncode != 0
    assert 'Could not load the Qt platform plugin "xcb"' in unchecked.stderr, unchecked.stderr


def test_a_missing_camera_prints_no_opencv_warning(tmp_path: Path) -> None:
    """OpenCV writes "[ WARN:0@0.463] global cap_v4l.cpp ... can't open camera by index" for a camera
    that is not there; the app says so in its own banner and keeps OpenCV's lines for --verbose."""
    index = next((i for i in range(40, 64) if not Path(f"/dev/video{i}").exists()), 63)
    command = [sys.executable, "-m", "desktop", "--source", str(index), "--settings", str(tmp_path / "app.ini"),
               "--quit-after", "1.5"]
    quiet = subprocess.run(command, cwd=tmp_path, env=_app_env(QT_QPA_PLATFORM="offscreen"),
                           capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0, quiet.stderr
    assert f"Camera {index}: stopped" in quiet.stdout  # the camera really failed to open
    assert "[ WARN" not in quiet.stderr and "VIDEOIO" not in quiet.stderr, quiet.stderr
    if sys.platform.startswith("linux"):  # V4L2's warnings: the way back for whoever wants them
        verbose = subprocess.run([*command, "--verbose"], cwd=tmp_path, env=_app_env(QT_QPA_PLATFORM="offscreen"),
                                 capture_output=True, text=True, timeout=120)
        assert verbose.returncode == 0, verbose.stderr
        assert "[ WARN" in verbose.stderr and "can't open camera by index" in verbose.stderr, verbose.stderr


def test_the_plugin_is_looked_for_where_qt_looks_first(tmp_path: Path) -> None:
    """A PyInstaller bundle points QT_PLUGIN_PATH at its own copy of Qt's plugins: that one is checked."""
    plugin = tmp_path / "plugins" / "platforms" / "libqxcb.so"
    plugin.parent.mkdir(parents=True)
    plugin.write_bytes(b"")
    assert xcb_plugin_paths({"QT_PLUGIN_PATH": str(tmp_path / "plugins")})[0] == plugin
    assert xcb_plugin_paths({"QT_QPA_PLATFORM_PLUGIN_PATH": str(plugin.parent)})[0] == plugin



@linux_only
def test_the_loader_hears_the_dynamic_loaders_words_even_where_ctypes_is_wrapped(tmp_path: Path,
                                                                               monkeypatch) -> None:
    """PyInstaller replaces ctypes.CDLL with a wrapper whose error hides which library failed ("Failed to
    load dynlib/dll"); the check's own dlopen still hears it (found by building the bundle)."""
    import ctypes

    from desktop.platform_check import _dlopen

    class Wrapped(ctypes.CDLL):
        def __init__(self, name: str, *args, **kwargs) -> None:
            try:
                super().__init__(name, *args, **kwargs)
            except OSError as exc:
                raise OSError(f"Failed to load dynlib/dll {name!r}. Most likely ...") from exc

    monkeypatch.setattr(ctypes, "CDLL", Wrapped)
    broken = tmp_path / "libxcb-icccm.so.4"
    broken.write_bytes(b"")
    with pytest.raises(OSError) as failed:
        _dlopen(str(broken))
    assert unloadable_library(failed.value) == "libxcb-icccm.so.4", failed.value
    with pytest.raises(OSError) as missing:
        _dlopen("libfacetracker-nowhere.so.9")
    assert unloadable_library(missing.value) == "libfacetracker-nowhere.so.9", missing.value

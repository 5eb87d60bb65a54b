"""Name the missing system libraries before Qt's xcb platform plugin aborts the app.

On Linux the window goes through Qt's ``xcb`` (X11) platform plugin, which links against a dozen
system libraries that a fresh or minimal install may lack (``libxcb-cursor0``, ``libxcb-icccm4``,
``libxcb-keysyms1``...). Without them Qt prints "Could not load the Qt platform plugin xcb" and aborts
(a core dump, exit 134), naming at most one package. :func:`check_platform` runs before the
QApplication exists: it loads the plugin the way Qt will, and when that fails because a library is
missing, it names every missing one with the command that installs them (apt, dnf).

It never blocks a start it is unsure about: when the plugin loads, when the platform will not be
xcb, or when the plugin fails for another reason (a missing symbol), Qt goes on as usual.
"""

from __future__ import annotations

import _ctypes
import ctypes
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

#: Exit status of the app when the platform's libraries are missing (Qt's own abort is 134).
EXIT_MISSING_LIBRARIES = 3

#: The system libraries Qt 6's xcb plugin loads (its own and libQt6XcbQpa's needs, libc aside), with the
#: package that holds each on Debian/Ubuntu and on Fedora. From ``ldd libqxcb.so`` (PySide6 6.8 to 6.11).
XCB_LIBRARIES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
}

#: The packages a desktop usually has but a minimal or fresh install may lack (README, install section).
USUALLY_MISSING = ("libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-image.so.0",
                   "libxcb-render-util.so.0", "libxcb-shape.so.0", "libxkbcommon-x11.so.0")

Loader = Callable[[str], None]  # loads a library by name or path; raises OSError (dlopen's message) if it cannot


@dataclass(frozen=True)
class PlatformProblem:
    """Libraries the xcb plugin needs and cannot load, and what to tell the user."""

    missing: tuple[str, ...]  # sonames, e.g. "libxcb-cursor.so.0"
    detail: str  # the dynamic loader's own words for the first failure
    wayland: bool = False  # a Wayland session: QT_QPA_PLATFORM=wayland is a way round

    def packages(self, distro: str) -> list[str]:
        """The packages to install on ``"debian"`` (Debian/Ubuntu) or ``"fedora"``, unknown sonames left out."""
        column = 0 if distro == "debian" else 1
        names = [XCB_LIBRARIES[name][column] for name in self.missing if name in XCB_LIBRARIES]
        return sorted(set(names))

    def message(self) -> str:
        """What the app prints instead of Qt's abort: the missing libraries and the install commands."""
        lines = ["FaceTracker cannot open its window: Qt's X11 platform plugin (xcb)",
                 "needs system libraries that are missing (or unreadable) here:"]
        for name in self.missing:
            if name in XCB_LIBRARIES:
                debian, fedora = XCB_LIBRARIES[name]
                lines.append(f"  {name}  (Debian/Ubuntu package {debian}, Fedora {fedora})")
            else:
                lines.append(f"  {name}  (find its package: apt-file search {name}, or dnf provides '*/{name}')")
        debian, fedora = self.packages("debian"), self.packages("fedora")
        if debian:
            lines += ["Install them, then start FaceTracker again:",
                      f"  Debian/Ubuntu:  sudo apt install {' '.join(debian)}",
                      f"  Fedora:         sudo dnf install {' '.join(fedora)}"]
        if self.wayland:
            lines.append("In this Wayland session, QT_QPA_PLATFORM=wayland starts FaceTracker without X11.")
        lines += ["The dynamic loader said:", f"  {self.detail}"]
        return "\n".join(lines)


def platform_will_be_xcb(environ: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Whether Qt is going to use its xcb plugin: Linux, and QT_QPA_PLATFORM says xcb, or says nothing
    while an X display is set and the session is not Wayland (Qt prefers its wayland plugin there)."""
    if not platform.startswith("linux"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "").strip()
    if chosen:
        # "xcb", "xcb:option=...", or a fallback list ("wayland;xcb") whose every entry is xcb
        names = [entry.split(":", 1)[0].strip() for entry in chosen.split(";") if entry.strip()]
        return bool(names) and all(name == "xcb" for name in names)
    wayland = bool(environ.get("WAYLAND_DISPLAY")) and environ.get("XDG_SESSION_TYPE", "") == "wayland"
    return bool(environ.get("DISPLAY")) and not wayland


def xcb_plugin_paths(environ: Mapping[str, str]) -> list[Path]:
    """Where Qt looks for ``platforms/libqxcb.so``: QT_QPA_PLATFORM_PLUGIN_PATH, QT_PLUGIN_PATH, then
    PySide6's own plugin folder (in a PyInstaller bundle too, through its qt.conf)."""
    folders = [Path(p) for p in environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", "").split(os.pathsep) if p]
    folders += [Path(p) / "platforms" for p in environ.get("QT_PLUGIN_PATH", "").split(os.pathsep) if p]
    try:
        from PySide6.QtCore import QLibraryInfo

        folders.append(Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms")
    except ImportError:  # pragma: no cover - PySide6 is a dependency
        pass
    return [folder / "libqxcb.so" for folder in folders if (folder / "libqxcb.so").is_file()]


def _dlopen(name: str) -> None:
    """dlopen() as Qt does it, raising OSError with the dynamic loader's own message.

    Not ``ctypes.CDLL``: in a PyInstaller bundle it is replaced by a wrapper whose error says only "Failed
    to load dynlib/dll", without the library that is missing. A bare name is looked for in the bundle
    first, as the plugin finds its libraries there. The handle stays open: Qt gets it back a moment later.
    """
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle and "/" not in name and (Path(bundle) / name).is_file():
        name = str(Path(bundle) / name)
    _ctypes.dlopen(name, ctypes.RTLD_LOCAL)


def unloadable_library(error: OSError | str) -> str | None:
    """The library a dlopen error says could not be loaded ("libxcb-icccm.so.4: cannot open shared
    object file", "/x/libfoo.so.0: file too short"), or None when the failure is of another kind (a
    missing symbol or symbol version: the library is there, so nothing to install)."""
    text = str(error)
    if "undefined symbol" in text or "version `" in text:
        return None
    head = text.split(": ", 1)[0].strip()
    return Path(head).name if head and " " not in head else None


def find_problem(environ: Mapping[str, str] | None = None, *, loader: Loader = _dlopen,
                 plugins: Iterable[Path] | None = None, libraries: Iterable[str] = XCB_LIBRARIES,
                 platform: str = sys.platform) -> PlatformProblem | None:
    """The platform's missing libraries, or None when Qt can go ahead (or the check cannot tell).

    The plugin itself is loaded first, as Qt will load it: when that works nothing is missing, whatever
    the table says. Only when it fails for want of a library is each library of the table loaded on its
    own, so that all the missing ones are named at once (the loader stops at the first).
    """
    environ = os.environ if environ is None else environ
    if not platform_will_be_xcb(environ, platform):
        return None
    found = list(xcb_plugin_paths(environ) if plugins is None else plugins)
    if not found:
        return None  # no xcb plugin to load: Qt explains that itself
    try:
        loader(str(found[0]))
        return None
    except OSError as exc:
        detail = str(exc)
    first = unloadable_library(detail)
    if first is None or first == found[0].name:
        return None  # the plugin is there but broken in another way: let Qt say what
    missing = [first]
    for name in libraries:
        try:
            loader(name)
        except OSError as exc:
            culprit = unloadable_library(exc)
            if culprit and culprit not in missing:
                missing.append(culprit)
    wayland = bool(environ.get("WAYLAND_DISPLAY"))
    return PlatformProblem(tuple(sorted(missing, key=_table_order)), detail, wayland)


def _table_order(name: str) -> tuple[int, str]:
    names = list(XCB_LIBRARIES)
    return (names.index(name), name) if name in names else (len(names), name)


def check_platform(environ: Mapping[str, str] | None = None) -> int | None:
    """Print the missing libraries and the install commands and return the exit status to use, or
    None when the app can start. ``FACETRACKER_SKIP_PLATFORM_CHECK=1`` skips the check."""
    environ = os.environ if environ is None else environ
    if environ.get("FACETRACKER_SKIP_PLATFORM_CHECK") == "1":
        return None
    problem = find_problem(environ)
    if problem is None:
        return None
    message = problem.message()
    print(message, file=sys.stderr, flush=True)
    if getattr(sys, "frozen", False):
        _show_outside_a_terminal(message)
    return EXIT_MISSING_LIBRARIES


def _show_outside_a_terminal(message: str) -> None:
    """Started by double-clicking the bundle there is no terminal to read: show the message in a
    desktop dialog, with the first helper found (none need Qt's xcb libraries), best effort."""
    import shutil
    import subprocess

    if sys.stderr is not None and sys.stderr.isatty():
        return
    for command in (["zenity", "--error", "--no-markup", "--title=FaceTracker", f"--text={message}"],
                    ["kdialog", "--title", "FaceTracker", "--error", message],
                    ["xmessage", "-center", "-title", "FaceTracker", "-file", "-"]):  # the message on stdin
        if shutil.which(command[0]):
            try:
                dialog = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True, text=True)
                dialog.stdin.write(message + "\n")
                dialog.stdin.close()
            except OSError:
                continue
            return

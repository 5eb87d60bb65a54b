"""Small wordings shared by the command line and the desktop app, so the two always say it alike.

Free of Qt, Keras and TensorFlow: the app's screens and the CLI's progress bar import it alike.
"""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour: how the progress bar and the app's Train tab show time."""
    seconds = max(0, int(round(seconds)))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"

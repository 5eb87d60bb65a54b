"""A list of callbacks: how the app's Qt-free models (``label_session``, ``detector_state``) tell the
widgets that show them that something changed, napari's way (its models emit events; views subscribe).

No Qt here, so the models are tested with plain functions as listeners. Callbacks run at once, in the
thread that changed the model: the widgets only change their models on the UI thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Emitter:
    """Callbacks to call, in the order connected, each time :meth:`emit` is called."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> Callable[..., Any]:
        """Call ``callback`` on every emit from now on (once, however often it is connected)."""
        if callback not in self._callbacks:
            self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable[..., Any]) -> None:
        """Stop calling ``callback``; one that is not connected is ignored."""
        if callback in self._callbacks:
            self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        """Call every connected callback with ``args``."""
        for callback in list(self._callbacks):
            callback(*args)

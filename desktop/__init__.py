"""FaceTracker's desktop app (PySide6): detect, collect, label and train from one window."""

"""``python -m desktop`` (and the bundled executable): the FaceTracker app."""

from desktop.app import main

if __name__ == "__main__":
    raise SystemExit(main())

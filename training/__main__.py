"""``python -m training ...`` is ``facetracker-train ...`` (the desktop app starts training this way)."""

import sys

from training.cli import main

if __name__ == "__main__":
    sys.exit(main())

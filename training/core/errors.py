"""The error a training run stops with: one line saying why and what to do (the CLI prints it, exit 1)."""


class TrainingError(RuntimeError):
    """Training cannot start or cannot go on; the message says why and what to do."""

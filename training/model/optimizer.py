"""Adam with the tutorial's per-batch learning-rate decay, in today's Keras terms.

The notebook used ``Adam(learning_rate=1e-4, decay=lr_decay)``, which current Keras rejects. The
old ``decay`` meant ``lr_t = lr_0 / (1 + decay * t)`` with t the step count; ``InverseTimeDecay``
with ``decay_steps=1`` is that curve, so the rate is 75 % of the start after one epoch and
``lr_0 / (1 + k / 3)`` after k epochs.
"""

from __future__ import annotations

import keras

DEFAULT_LEARNING_RATE = 1e-4
EPOCH_DECAY_FACTOR = 0.75


def tutorial_lr_schedule(
    batches_per_epoch: int,
    initial_learning_rate: float = DEFAULT_LEARNING_RATE,
    epoch_factor: float = EPOCH_DECAY_FACTOR,
) -> keras.optimizers.schedules.InverseTimeDecay:
    """Per-step inverse-time decay that leaves ``epoch_factor`` of the rate after one epoch."""
    if batches_per_epoch < 1:
        raise ValueError(f"batches_per_epoch must be at least 1, got {batches_per_epoch}")
    decay_rate = (1.0 / epoch_factor - 1.0) / batches_per_epoch
    return keras.optimizers.schedules.InverseTimeDecay(
        initial_learning_rate=initial_learning_rate, decay_steps=1, decay_rate=decay_rate
    )


def cosine_lr_schedule(
    total_steps: int, initial_learning_rate: float, warmup_steps: int = 0, final_fraction: float = 0.02
) -> keras.optimizers.schedules.CosineDecay:
    """A linear warm-up to ``initial_learning_rate``, then a cosine decay to ``final_fraction`` of it.

    The grid recipe's schedule: the tutorial's inverse-time decay (tuned for 10 epochs of 60 copies per
    picture) leaves 1.5 % of the rate after 200 epochs, so late epochs barely move; a cosine keeps
    learning through most of the run and still ends small. The warm-up keeps Adam's first, noisy
    steps from throwing the score map into saturation.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be at least 1, got {total_steps}")
    warmup_steps = min(int(warmup_steps), total_steps - 1)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=initial_learning_rate / 10 if warmup_steps else initial_learning_rate,
        decay_steps=total_steps - warmup_steps, alpha=final_fraction,
        warmup_target=initial_learning_rate if warmup_steps else None, warmup_steps=warmup_steps,
    )


def make_optimizer(
    batches_per_epoch: int, learning_rate: float = DEFAULT_LEARNING_RATE, total_steps: int | None = None
) -> keras.optimizers.Adam:
    """Adam with a decaying rate: the tutorial's :func:`tutorial_lr_schedule`, or, given the run's
    ``total_steps``, :func:`cosine_lr_schedule` with one epoch of warm-up."""
    if total_steps is None:
        return keras.optimizers.Adam(learning_rate=tutorial_lr_schedule(batches_per_epoch, learning_rate))
    return keras.optimizers.Adam(learning_rate=cosine_lr_schedule(total_steps, learning_rate, batches_per_epoch))

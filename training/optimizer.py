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


def make_optimizer(batches_per_epoch: int, learning_rate: float = DEFAULT_LEARNING_RATE) -> keras.optimizers.Adam:
    """The tutorial's optimizer: Adam on :func:`tutorial_lr_schedule`."""
    return keras.optimizers.Adam(learning_rate=tutorial_lr_schedule(batches_per_epoch, learning_rate))

"""The tutorial's Adam-with-decay, rebuilt on InverseTimeDecay: lr after k epochs is lr0 / (1 + k/3)."""

import numpy as np
import pytest

from training.model.optimizer import DEFAULT_LEARNING_RATE, make_optimizer, tutorial_lr_schedule

BATCHES_PER_EPOCH = 7


@pytest.mark.parametrize("epochs", [0, 1, 2, 3, 10])
def test_schedule_after_k_epochs(epochs):
    schedule = tutorial_lr_schedule(BATCHES_PER_EPOCH, 1e-4)
    lr = float(schedule(epochs * BATCHES_PER_EPOCH))
    assert lr == pytest.approx(1e-4 / (1 + epochs / 3), rel=1e-5)


def test_one_epoch_leaves_three_quarters():
    assert float(tutorial_lr_schedule(40, 2e-3)(40)) == pytest.approx(0.75 * 2e-3, rel=1e-5)


def test_decay_is_per_step_not_per_epoch():
    schedule = tutorial_lr_schedule(BATCHES_PER_EPOCH, 1e-4)
    rates = [float(schedule(step)) for step in range(BATCHES_PER_EPOCH + 1)]
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))  # falls every batch


@pytest.mark.parametrize("epochs", [0, 1, 4])
def test_optimizer_learning_rate_follows_real_steps(epochs):
    """Take real Adam steps and read the rate the optimizer reports, as the trainer does."""
    import keras

    optimizer = make_optimizer(BATCHES_PER_EPOCH, 1e-3)
    weight = keras.Variable(np.ones(3, np.float32))
    for _ in range(epochs * BATCHES_PER_EPOCH):
        optimizer.apply_gradients([(keras.ops.ones(3), weight)])
    assert int(optimizer.iterations) == epochs * BATCHES_PER_EPOCH
    assert float(optimizer.learning_rate) == pytest.approx(1e-3 / (1 + epochs / 3), rel=1e-5)


def test_default_is_the_tutorials_rate():
    optimizer = make_optimizer(5)
    assert DEFAULT_LEARNING_RATE == 1e-4
    assert float(optimizer.learning_rate) == pytest.approx(1e-4)


@pytest.mark.parametrize("batches", [0, -3])
def test_needs_at_least_one_batch(batches):
    with pytest.raises(ValueError, match="batches_per_epoch"):
        tutorial_lr_schedule(batches)


def test_cosine_schedule_warms_up_then_decays_to_its_floor():
    from training.model.optimizer import cosine_lr_schedule

    schedule = cosine_lr_schedule(total_steps=100, initial_learning_rate=1e-3, warmup_steps=10, final_fraction=0.02)
    rates = [float(schedule(step)) for step in (0, 5, 10, 55, 100, 150)]
    assert rates[0] == pytest.approx(1e-4) and rates[1] == pytest.approx(5.5e-4)  # linear from a tenth
    assert rates[2] == pytest.approx(1e-3)
    assert rates[3] == pytest.approx(1e-3 * (0.02 + 0.98 * 0.5), rel=1e-4)  # half-way down the cosine
    assert rates[4] == pytest.approx(2e-5, rel=1e-4) and rates[5] == pytest.approx(2e-5, rel=1e-4)


def test_make_optimizer_picks_the_schedule():
    from keras.optimizers.schedules import CosineDecay, InverseTimeDecay

    assert isinstance(make_optimizer(BATCHES_PER_EPOCH, 1e-4)._learning_rate, InverseTimeDecay)
    assert isinstance(make_optimizer(BATCHES_PER_EPOCH, 1e-3, total_steps=70)._learning_rate, CosineDecay)

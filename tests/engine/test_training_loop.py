"""The one training loop (engine.training.run_training) on a tiny regression task: resume, LR per
parameter group, finite-loss check, checkpoint timing, resume fields, curve rows, autocast, EpochBatches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from seg_pipelines.engine import training
from seg_pipelines.engine.training import EpochBatches, TrainingTask, load_checkpoint, run_training

ITERATIONS = 10


def _model() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(3, 1)


def _task(model: nn.Module, **overrides) -> TrainingTask:
    """y = x·(1, -2, 0.5) + 0.3 with the batch of iteration t drawn from a generator seeded with t."""
    optimizer = torch.optim.SGD(
        [{"params": [model.weight], "lr_mult": 1.0}, {"params": [model.bias], "lr_mult": 0.5}], lr=0.1, momentum=0.9
    )

    def batch(t: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(8, 3, generator=torch.Generator().manual_seed(t))
        return x, x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3

    def loss(trained: nn.Module, batch: tuple[torch.Tensor, torch.Tensor], t: int) -> dict[str, torch.Tensor]:
        x, y = batch
        return {"loss": ((trained(x).squeeze(-1) - y) ** 2).mean()}

    values = dict(
        model=model,
        optimizer=optimizer,
        iterations=ITERATIONS,
        batch=batch,
        loss=loss,
        lr=lambda t: 0.1 * (1 - t / ITERATIONS),
    )
    values.update(overrides)
    return TrainingTask(**values)


def _run(task: TrainingTask, directory=None, **options) -> list[dict[str, float]]:
    settings = dict(log_interval=2, checkpoint_interval=3, show_progress=False)
    settings.update(options)
    return run_training(task, directory, **settings)


def test_interrupted_and_resumed_run_ends_with_the_same_weights(tmp_path):
    reference = _model()
    reference_curve = _run(_task(reference), tmp_path / "a")
    assert [row["iteration"] for row in reference_curve] == [2, 4, 6, 8, 10]
    assert reference_curve[0]["lr"] == 0.1 * (1 - 1 / ITERATIONS)  # the lr of the row's last iteration
    assert reference_curve[-1]["loss"] < 0.5 * reference_curve[0]["loss"]
    assert not reference.training, "left in eval mode"

    interrupted = _run(_task(_model()), tmp_path / "b", stop_after=5)
    assert [row["iteration"] for row in interrupted] == [2, 4, 5]  # the interruption logs its last row
    assert load_checkpoint(tmp_path / "b" / "last.pt")["iteration"] == 5
    fresh = nn.Linear(3, 1)  # another initialisation: weights and momentum come from the checkpoint only
    curve = _run(_task(fresh), tmp_path / "b")
    assert [row["iteration"] for row in curve] == [2, 4, 5, 6, 8, 10]
    assert [row for row in curve if row["iteration"] != 5] == reference_curve
    assert torch.equal(fresh.weight, reference.weight) and torch.equal(fresh.bias, reference.bias)


def test_each_parameter_group_gets_lr_times_its_multiplier():
    task = _task(_model())
    _run(task)
    last = 0.1 * (1 - (ITERATIONS - 1) / ITERATIONS)
    assert [group["lr"] for group in task.optimizer.param_groups] == [last * 1.0, last * 0.5]


def test_a_non_finite_loss_stops_training_before_the_step():
    model = _model()
    task = _task(model)
    finite = task.loss

    def loss(trained, batch, t):
        terms = finite(trained, batch, t)
        return {"mse": terms["loss"], "loss": terms["loss"] * (float("nan") if t == 3 else 1.0)}

    task.loss = loss
    message = r"^train: loss became nan at iteration 3: \{mse: [0-9.]+, loss: nan\}$"
    with pytest.raises(FloatingPointError, match=message):
        _run(task)
    assert torch.isfinite(model.weight).all() and torch.isfinite(model.bias).all()


def test_checkpoints_every_interval_or_wall_clock_interval_and_at_the_end(tmp_path, monkeypatch):
    saved = []
    original = training.save_training_state
    monkeypatch.setattr(
        training, "save_training_state", lambda *a, **k: saved.append(k["iteration"]) or original(*a, **k)
    )
    _run(_task(_model()), tmp_path / "interval")
    assert saved == [3, 6, 9, 10]
    saved.clear()
    _run(_task(_model()), tmp_path / "hour", checkpoint_seconds=3600.0)
    assert saved == [10]
    saved.clear()
    _run(_task(_model()), tmp_path / "always", checkpoint_seconds=0.0)
    assert saved == list(range(1, ITERATIONS + 1))
    saved.clear()
    _run(_task(_model()))  # no checkpoint directory: nothing written
    assert saved == []


def test_a_checkpoint_of_other_resume_fields_is_ignored(tmp_path):
    first = _model()
    curve = _run(_task(first, resume_fields={"settings": {"width": 1}}), tmp_path)
    state = load_checkpoint(tmp_path / "last.pt")
    assert list(state) == ["model", "optimizer", "iteration", "curve", "settings"]
    assert state["settings"] == {"width": 1} and state["curve"] == curve

    same = nn.Linear(3, 1)
    assert _run(_task(same, resume_fields={"settings": {"width": 1}}), tmp_path) == curve  # finished: nothing to do
    assert torch.equal(same.weight, first.weight)

    other = _model()
    assert _run(_task(other, resume_fields={"settings": {"width": 2}}), tmp_path) == curve  # trained afresh
    assert torch.equal(other.weight, first.weight)
    assert load_checkpoint(tmp_path / "last.pt")["settings"] == {"width": 2}


def test_running_mean_rows_extras_position_key_and_after_step(tmp_path):
    per_step = _run(_task(_model()), log_interval=1)
    steps = []
    task = _task(
        _model(),
        position_key="step",
        running_mean_loss=True,
        curve_extra=lambda done, losses: {"done_twice": 2.0 * done},
        after_step=lambda: steps.append(len(steps)),
        description="pretraining",
    )
    curve = _run(task, tmp_path, log_interval=4)
    means = [float(np.mean([row["loss"] for row in per_step[a:b]])) for a, b in ((0, 4), (4, 8), (8, 10))]
    assert curve == [
        {"step": done, "lr": 0.1 * (1 - (done - 1) / ITERATIONS), "loss": mean, "done_twice": 2.0 * done}
        for done, mean in zip((4, 8, 10), means, strict=True)
    ]
    assert steps == list(range(ITERATIONS))
    assert load_checkpoint(tmp_path / "last.pt")["step"] == ITERATIONS


def test_amp_dtype_runs_the_loss_under_autocast():
    dtypes = []
    task = _task(_model(), amp_dtype="bfloat16")
    task.loss = lambda trained, batch, t: dtypes.append(trained(batch[0]).dtype) or {"loss": trained.weight.sum()}
    _run(task, log_interval=5)
    assert dtypes == [torch.bfloat16] * ITERATIONS


def test_epoch_batches_seek_gives_the_batch_of_that_iteration():
    generator = torch.Generator()
    loader = DataLoader(list(range(10)), batch_size=3, shuffle=True, drop_last=True, generator=generator)

    def batches() -> EpochBatches:
        return EpochBatches(loader, lambda epoch: generator.manual_seed(100 + epoch))

    continuous = batches()
    order = []
    for t in range(7):
        continuous.seek(t)
        order.append(next(continuous).tolist())
    assert order[:3] != order[3:6]  # each epoch its own order
    for t in (0, 2, 4, 6):  # a resume at t: the same batch as the continuous run's
        resumed = batches()
        resumed.seek(t)
        assert next(resumed).tolist() == order[t]
    with pytest.raises(ValueError, match="4 training samples give no full batch of 5"):
        EpochBatches(DataLoader(list(range(4)), batch_size=5, drop_last=True), lambda epoch: None)

"""Training engine: poly LR, loss goes down, interrupted+resumed == uninterrupted, DDP, checkpoints."""

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from seg_pipelines.engine.training import (
    CheckpointError,
    TrainConfig,
    launch_local_ddp,
    load_checkpoint,
    load_model_weights,
    poly_lr,
    save_checkpoint,
    train,
)


class NoisyBlobs(Dataset):
    """Two-class images: class 1 where a channel is bright; random noise added per draw (so the
    global RNG matters, as augmentation does)."""

    def __init__(self, n=24, size=8):
        generator = torch.Generator().manual_seed(1)
        self.labels = (torch.rand(n, size, size, generator=generator) > 0.5).long()

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        label = self.labels[i]
        image = label.float().expand(3, -1, -1) * 2 - 1 + 0.3 * torch.randn(3, *label.shape)
        return {"image": image, "label": label}


class TinySegmentor(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout2d(0.1))
        self.classifier = nn.Conv2d(8, 2, 1)

    def forward(self, images, target=None):
        return {"logits": self.classifier(self.body(images))}

    def losses(self, outputs, target):
        return {"loss_ce": nn.functional.cross_entropy(outputs["logits"], target, ignore_index=255)}


def _config(**overrides):
    values = dict(iterations=12, batch_size=4, lr=0.05, checkpoint_interval=5, log_interval=1, seed=3)
    values.update(overrides)
    return TrainConfig(**values)


def test_poly_schedule():
    assert poly_lr(0.01, 0, 100, 0.9) == pytest.approx(0.01)
    assert poly_lr(0.01, 50, 100, 0.9) == pytest.approx(0.01 * 0.5**0.9)
    assert poly_lr(0.01, 100, 100, 0.9, min_lr=1e-4) == pytest.approx(1e-4)


def test_loss_goes_down():
    torch.manual_seed(0)
    model = TinySegmentor()
    curve = train(model, NoisyBlobs(), _config(iterations=40), show_progress=False)
    first = sum(row["loss"] for row in curve[:5]) / 5
    last = sum(row["loss"] for row in curve[-5:]) / 5
    assert last < 0.5 * first


def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path):
    torch.manual_seed(0)
    reference = TinySegmentor()
    resumed = TinySegmentor()
    resumed.load_state_dict(reference.state_dict())
    train(reference, NoisyBlobs(), _config(), tmp_path / "a", show_progress=False)
    train(resumed, NoisyBlobs(), _config(), tmp_path / "b", stop_after=7, show_progress=False)  # 'crash' after 7
    assert load_checkpoint(tmp_path / "b" / "last.pt")["iteration"] == 7
    fresh = TinySegmentor()  # a new process: weights come only from the checkpoint
    curve = train(fresh, NoisyBlobs(), _config(), tmp_path / "b", show_progress=False)
    assert [row["iteration"] for row in curve] == list(range(1, 13))
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[name], value, rtol=0, atol=1e-6, msg=name)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "bad.pt")
    save_checkpoint(tmp_path / "ok.pt", {"model": nn.Linear(3, 2).state_dict()})
    with pytest.raises(CheckpointError, match="does not match"):
        load_model_weights(nn.Linear(4, 2), load_checkpoint(tmp_path / "ok.pt")["model"], "ok.pt")


def _ddp_worker(rank, world_size, directory):
    torch.manual_seed(0)
    model = TinySegmentor()
    train(model, NoisyBlobs(n=16), _config(iterations=4, batch_size=2), directory, show_progress=False)
    torch.save(model.state_dict(), f"{directory}/rank{rank}.pt")


def test_ddp_two_processes_stay_in_sync(tmp_path):
    launch_local_ddp(_ddp_worker, 2, str(tmp_path))
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    parameters = [name for name, _ in TinySegmentor().named_parameters()]
    for name in parameters:  # gradients are all-reduced: weights agree (BN running stats are per rank on CPU)
        torch.testing.assert_close(rank0[name], rank1[name], msg=name)
    torch.manual_seed(0)
    initial = TinySegmentor()  # the workers' starting weights
    assert not torch.allclose(initial.state_dict()["classifier.weight"], rank0["classifier.weight"]), "it trained"
    state = load_checkpoint(tmp_path / "last.pt")
    assert state["iteration"] == 4
    assert any("running_mean" in k for k in state["model"]), "BatchNorm buffers are checkpointed"


def test_wall_clock_checkpoints_foreach_channels_last_and_amp_detection(tmp_path, monkeypatch):
    from seg_pipelines.engine import training

    saved = []
    original = training.save_training_state
    monkeypatch.setattr(
        training, "save_training_state", lambda *a, **k: saved.append(k["iteration"]) or original(*a, **k)
    )
    torch.manual_seed(0)
    reference = TinySegmentor()
    other = TinySegmentor()
    other.load_state_dict(reference.state_dict())
    train(reference, NoisyBlobs(), _config(), tmp_path / "a", show_progress=False)
    assert saved == [5, 10, 12]  # every checkpoint_interval iterations and the end
    saved.clear()
    # wall-clock interval (an hour): only the final checkpoint; same weights with foreach + channels_last
    config = _config(checkpoint_seconds=3600.0, foreach=True, channels_last=True)
    train(other, NoisyBlobs(), config, tmp_path / "b", show_progress=False)
    assert saved == [12]
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(other.state_dict()[name], value, rtol=1e-4, atol=1e-5, msg=name)
    monkeypatch.setattr(training, "cpu_has_amx", lambda: False)
    assert training.resolve_amp_dtype("auto", torch.device("cpu")) is None
    monkeypatch.setattr(training, "cpu_has_amx", lambda: True)
    assert training.resolve_amp_dtype("auto", torch.device("cpu")) is torch.bfloat16
    assert training.resolve_amp_dtype(None, torch.device("cpu")) is None
    assert training.resolve_amp_dtype("bfloat16", torch.device("cpu")) is torch.bfloat16


def test_save_checkpoint_writes_the_same_bytes_for_the_same_weights(tmp_path):
    # torch.save on a path names the zip's root after the (random) temporary file: every save of unchanged
    # weights had another sha256, so the CLIP-keyed lsmseg resume check and ablation cache never matched
    import hashlib

    from seg_pipelines.engine.training import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    payload = {"weight": torch.randn(4, 3), "bias": torch.zeros(4), "step": 7}
    digests = []
    for name in ("a.pt", "b.pt", "a.pt"):  # a second file, and the first one overwritten
        save_checkpoint(tmp_path / name, payload)
        digests.append(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
    assert len(set(digests)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.pt"]  # no temporary file left
    loaded = load_checkpoint(tmp_path / "b.pt")
    assert torch.equal(loaded["weight"], payload["weight"]) and loaded["step"] == 7
    payload["weight"][0, 0] += 1.0
    save_checkpoint(tmp_path / "b.pt", payload)
    assert hashlib.sha256((tmp_path / "b.pt").read_bytes()).hexdigest() != digests[0]

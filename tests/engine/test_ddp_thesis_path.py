"""Training under DDP (a one-process gloo group, the CPU stand-in for ``torchrun``) through
``engine.training.train`` for every add-on and the head with extra outputs: found by the GPU check
(benchmarks/gpu_check.py ``ddp_syncbn``): with an add-on, the decode head's unused ``conv_seg`` made
DDP stop at the second iteration ("parameters that were not used in producing loss")."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist

from seg_pipelines.engine.training import TrainConfig, train
from seg_pipelines.experiments.closed_set import build_segmentor, closed_set_model_config


class _Random(torch.utils.data.Dataset):
    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.images = torch.randn(4, 3, 32, 32, generator=generator)
        self.labels = torch.randint(0, 5, (4, 32, 32), generator=generator)

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index):
        return {"image": self.images[index], "label": self.labels[index]}


@pytest.fixture
def gloo_world_of_one(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize(("head", "addon"), [("fcn", "caa"), ("fcn", "ecac"), ("isnet", None), ("fcn", None)])
def test_ddp_training_runs_with_every_addon(gloo_world_of_one, head, addon):
    model = {"head": head, "backbone": "resnet_tiny", "channels": 16, "aux_channels": 8}
    config = closed_set_model_config(model, num_classes=5, ignore_index=255, addon=addon)
    if addon == "caa":
        config["addon_cfg"].update(channels=8, affinity_channels=4)
    torch.manual_seed(0)
    segmentor = build_segmentor(config)
    curve = train(segmentor, _Random(), TrainConfig(iterations=3, batch_size=2, log_interval=1), show_progress=False)
    assert [row["iteration"] for row in curve] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor(row["loss"])) for row in curve)
    assert os.environ.get("RANK") is None  # nothing leaked into the environment

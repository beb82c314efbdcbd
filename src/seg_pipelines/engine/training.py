"""The one training loop (:func:`run_training`), its checkpoints and DDP, and closed-set training.

Every model is trained by :func:`run_training`; what differs between models is a
:class:`TrainingTask`: how the batch of iteration ``t`` is drawn (its data order and RNG use), the
optimizer, the learning rate ``lr(t)``, the loss on a batch, what a curve row adds and which
settings a checkpoint records. The loop owns the rest:

* Resume: ``checkpoint_dir/last.pt`` holds the model, optimizer, position, curve and the task's
  ``resume_fields``; a checkpoint written for other settings is ignored (warning) and training
  starts afresh. A run interrupted and resumed ends with the same weights as an uninterrupted one
  when the task's batch of ``t`` depends only on ``t`` (tested with ``num_workers=0``).
* Each step: the learning rate ``lr(t) × lr_mult`` per parameter group, the loss under autocast
  (``amp_dtype``), a finite-loss check, zero_grad / backward / optional gradient clipping / step.
* Curve rows every ``log_interval`` iterations and at the end, checkpoints every
  ``checkpoint_interval`` iterations (or ``checkpoint_seconds`` of wall time) and at the end,
  written atomically (temp file + rename) and loaded with ``weights_only=True``.
* DDP: when ``torch.distributed`` is initialised (``torchrun``), the model is converted to SyncBN
  (CUDA only: PyTorch's SyncBN has no CPU kernel, gloo runs keep per-rank BN statistics) and
  wrapped in DistributedDataParallel, the task's loss gets the wrapped model, only rank 0 writes
  checkpoints, and all ranks meet at a barrier at the end. ``launch_local_ddp`` starts N local
  processes (gloo on CPU) for tests.

Closed-set training (:func:`train`, MMSegmentation style): SGD + poly LR
``lr_t = (lr_0 - min_lr) · (1 - t/T)^power + min_lr`` (thesis §3.3.2, power 0.9); the sample order
per epoch comes from ``DistributedSampler`` seeded with ``seed`` (``set_epoch``), each rank draws
its share, and the global RNG is re-seeded from ``(seed, iteration)`` before every batch is drawn,
so augmentation, dropout and everything random depend only on the iteration. The OVSS models
(:func:`seg_pipelines.engine.ovss_training.train_ovss_model`) and the tiny CLIP
(:func:`seg_pipelines.experiments.clip_pretraining.pretrain_clip`) bring their own tasks.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from seg_pipelines.engine.runtime import keep_freed_cpu_memory
from seg_pipelines.models.checkpoints import CheckpointError, read_checkpoint

logger = logging.getLogger(__name__)

LossFn = Callable[[nn.Module, dict[str, Any], int], dict[str, torch.Tensor]]


@dataclass
class TrainConfig:
    """Optimisation settings (defaults: thesis §3.3.2 recipe at a CPU-sized budget)."""

    iterations: int = 200
    batch_size: int = 8
    lr: float = 0.01
    min_lr: float = 1e-4
    momentum: float = 0.9
    weight_decay: float = 5e-4
    poly_power: float = 0.9
    seed: int = 0
    num_workers: int = 0
    checkpoint_interval: int = 100
    checkpoint_seconds: float | None = None  # set: write last.pt when this much wall time has passed
    log_interval: int = 10
    grad_clip_norm: float | None = None
    amp_dtype: str | None = None  # "bfloat16" | "auto" (bf16 on CUDA / CPUs with AMX, fp32 elsewhere) | None
    channels_last: bool = False  # NHWC images and weights (oneDNN's fast convolution layout)
    foreach: bool | None = None  # SGD's multi-tensor update (None: PyTorch's default, per-tensor on CPU)
    extra: dict[str, Any] = field(default_factory=dict)


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles for bf16 matrix products (Linux ``/proc/cpuinfo`` flags)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            return any("amx_bf16" in line for line in info if line.startswith("flags"))
    except OSError:
        return False


def resolve_amp_dtype(amp_dtype: str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``amp_dtype``: ``"auto"`` is bf16 on CUDA and on CPUs with AMX (where
    bf16 matrix products are several times the fp32 rate) and None (fp32) elsewhere."""
    if amp_dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" or (device.type == "cpu" and cpu_has_amx()) else None
    return getattr(torch, amp_dtype) if amp_dtype else None


def poly_lr(base_lr: float, iteration: int, max_iterations: int, power: float, min_lr: float = 0.0) -> float:
    """MMSegmentation's PolyLR: ``(base - min) (1 - t/T)^p + min``."""
    return (base_lr - min_lr) * (1 - iteration / max_iterations) ** power + min_lr


def is_main_process() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def default_loss(model: nn.Module, batch: dict[str, Any], iteration: int) -> dict[str, torch.Tensor]:
    """Segmentors: ``outputs = model(images, target)``; ``model.losses(outputs, target)``. A model whose
    ``upsamples_in_loss`` is true is called with ``upsample=False`` (same loss, computed from the
    head-resolution logits: :class:`seg_pipelines.models.segmentor.EncoderDecoder`)."""
    core = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    outputs = model(batch["image"], batch["label"], **low_resolution_outputs(core))
    return core.losses(outputs, batch["label"])


def low_resolution_outputs(model: nn.Module) -> dict[str, bool]:
    """``{"upsample": False}`` for a model that computes its loss from head-resolution logits, else ``{}``."""
    return {"upsample": False} if getattr(model, "upsamples_in_loss", False) else {}


def project_relative(path: str | os.PathLike, root: str | os.PathLike | None = None) -> str:
    """``path`` relative to ``root`` (default: the working directory, the project root under ``kedro run``)
    when it lies inside it, else as given. What the project writes into its own files (model configs,
    run plans, cache keys), so a moved or copied project points at its own files, not the original's."""
    base = Path(root if root is not None else Path.cwd()).resolve()
    candidate = Path(path)
    try:
        return (candidate if candidate.is_absolute() else base / candidate).resolve().relative_to(base).as_posix()
    except ValueError:  # outside the project (a user's dataset or weights elsewhere): as given
        return str(path)


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Atomic write: a crash mid-save never leaves a truncated checkpoint under ``path``.

    The same payload gives the same bytes: ``torch.save`` given a *path* names the zip's root folder
    after the file (here the random temporary name), so every save of unchanged weights had another
    sha256 and invalidated what keys on it (the lsmseg resume check, the lsmseg_ablations result
    cache); given an open file it writes the fixed root ``archive``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(payload, stream)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def save_training_state(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer, **fields: Any) -> None:
    """Write :func:`run_training`'s resumable checkpoint (:func:`save_checkpoint`): ``model`` and ``optimizer``
    state dicts under ``"model"`` / ``"optimizer"``, then ``fields`` under their own keys, in order (the
    position, the curve and the task's ``resume_fields``, as the loop's resume reads them)."""
    save_checkpoint(path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(), **fields})


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load with ``weights_only=True``; a missing or unreadable file raises CheckpointError."""
    return read_checkpoint(path, "checkpoint")


def state_dict_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 of a state dict's names, dtypes, shapes and values (not of a file's bytes, which differ
    between two saves of the same weights): what an evaluation of those weights is reused by."""
    import hashlib

    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def load_model_weights(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Strict load with an error that lists missing/unexpected keys and shape mismatches."""
    own = model.state_dict()
    mismatched = [k for k, v in state_dict.items() if k in own and own[k].shape != v.shape]
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    if mismatched or missing or unexpected:
        raise CheckpointError(
            f"checkpoint {source} does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}, "
            f"shape mismatches {[(k, tuple(state_dict[k].shape), tuple(own[k].shape)) for k in mismatched[:5]]}"
        )
    model.load_state_dict(state_dict)


@dataclass
class TrainingTask:
    """What one model brings to :func:`run_training`; the loop does the rest (module docstring).

    ``batch(t)`` draws the batch of iteration ``t``. ``loss(model, batch, t)`` returns the loss
    terms, the total under ``"loss"`` (else their sum); ``model`` is the DDP-wrapped model when
    distributed. ``lr(t)`` is the learning rate, multiplied by each parameter group's ``lr_mult``
    (1 where absent). A curve row holds ``{position_key: t + 1, "lr", "loss"}`` (the last loss, or
    with ``running_mean_loss`` the mean since the previous row), then ``curve_extra(t + 1, terms)``.
    ``resume_fields`` are recorded in each checkpoint, and a checkpoint resumes only when they are
    equal. ``after_step()`` runs after each optimizer step.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    iterations: int
    batch: Callable[[int], Any]
    loss: Callable[[nn.Module, Any, int], dict[str, torch.Tensor]]
    lr: Callable[[int], float]
    resume_fields: dict[str, Any] = field(default_factory=dict)
    position_key: str = "iteration"
    running_mean_loss: bool = False
    curve_extra: Callable[[int, dict[str, torch.Tensor]], dict[str, float]] | None = None
    after_step: Callable[[], None] | None = None
    grad_clip_norm: float | None = None
    amp_dtype: str | None = None
    description: str = "train"


def run_training(
    task: TrainingTask,
    checkpoint_dir: str | Path | None = None,
    *,
    log_interval: int,
    checkpoint_interval: int,
    checkpoint_seconds: float | None = None,
    stop_after: int | None = None,
    show_progress: bool = True,
) -> list[dict[str, float]]:
    """Train ``task.model`` for ``task.iterations``; return the curve (one row per log step).

    Resumes from ``checkpoint_dir/last.pt`` when it was written with the task's ``resume_fields``.
    ``stop_after`` ends the run early at that iteration (after checkpointing): an interruption.
    The model is left in eval mode.
    """
    model, optimizer = task.model, task.optimizer
    device = next(model.parameters()).device
    if device.type == "cpu":
        keep_freed_cpu_memory()  # each step re-allocates what the last one freed: no page faults
    distributed = dist.is_initialized()
    trainable = model
    if distributed:
        if device.type == "cuda":  # SyncBN needs GPU modules; on CPU/gloo each rank keeps its own BN stats
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        trainable = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    checkpoint_path = Path(checkpoint_dir) / "last.pt" if checkpoint_dir is not None else None
    start, curve = 0, []
    if checkpoint_path is not None and checkpoint_path.is_file():
        state = load_checkpoint(checkpoint_path)
        if any(state.get(key) != value for key, value in task.resume_fields.items()):
            logger.warning("ignoring %s: written for another model or training configuration", checkpoint_path)
        else:
            load_model_weights(model, state["model"], str(checkpoint_path))
            optimizer.load_state_dict(state["optimizer"])
            start, curve = int(state[task.position_key]), list(state["curve"])
            logger.info("resuming %s from %s at %s %d", task.description, checkpoint_path, task.position_key, start)

    autocast_dtype = resolve_amp_dtype(task.amp_dtype, device)
    trainable.train()
    last_save = time.monotonic()
    running: list[float] = []
    end = task.iterations if stop_after is None else min(stop_after, task.iterations)
    show = show_progress and is_main_process()
    progress = tqdm(range(start, end), desc=task.description, disable=not show, initial=0)
    for iteration in progress:
        batch = task.batch(iteration)
        lr = task.lr(iteration)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_mult", 1.0)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            losses = task.loss(trainable, batch, iteration)
        # segmentors return their weighted terms plus the sum under "loss"; other losses are summed here
        total = losses["loss"] if "loss" in losses else sum(losses.values())
        if not torch.isfinite(total):
            raise FloatingPointError(
                f"{task.description}: loss became {total.item()} at {task.position_key} {iteration}: "
                f"{{{', '.join(f'{k}: {v.item():.4g}' for k, v in losses.items())}}}"
            )
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        if task.grad_clip_norm:
            nn.utils.clip_grad_norm_(model.parameters(), task.grad_clip_norm)
        optimizer.step()
        if task.after_step is not None:
            task.after_step()
        running.append(float(total.detach()))
        done = iteration + 1
        if done % log_interval == 0 or done == end:
            loss = float(np.mean(running)) if task.running_mean_loss else running[-1]
            row = {task.position_key: done, "lr": lr, "loss": loss}
            running = []
            if task.curve_extra is not None:
                row.update(task.curve_extra(done, losses))
            curve.append(row)
            progress.set_postfix(loss=f"{loss:.4f}")
        due = (
            time.monotonic() - last_save >= checkpoint_seconds
            if checkpoint_seconds is not None
            else done % checkpoint_interval == 0
        )
        if checkpoint_path is not None and is_main_process() and (due or done == end):
            position = {task.position_key: done}
            save_training_state(checkpoint_path, model, optimizer, **position, curve=curve, **task.resume_fields)
            last_save = time.monotonic()
    if distributed:
        dist.barrier()
    model.eval()
    return curve


class EpochBatches:
    """The batches of a DataLoader in a fixed order per epoch, addressable by iteration.

    ``start_epoch(epoch)`` fixes the epoch's order (a sampler's ``set_epoch``, a generator's seed)
    before its iterator is made. :meth:`seek` ``(t)`` makes the next batch drawn the batch of
    iteration ``t``, skipping the epoch's earlier batches after a resume.
    """

    def __init__(self, loader: DataLoader, start_epoch: Callable[[int], Any]) -> None:
        if len(loader) == 0:
            raise ValueError(
                f"{len(loader.dataset)} training samples give no full batch of {loader.batch_size} (per rank)"
            )
        self.loader, self.start_epoch = loader, start_epoch
        self.epoch, self.position, self.iterator = -1, 0, iter(())

    def seek(self, iteration: int) -> None:
        epoch, position = divmod(iteration, len(self.loader))
        if epoch != self.epoch:
            self.start_epoch(epoch)
            self.epoch, self.position, self.iterator = epoch, 0, iter(self.loader)
        while self.position < position:
            next(self.iterator)
            self.position += 1

    def __next__(self) -> Any:
        self.position += 1
        return next(self.iterator)


def _rng_seed(seed: int, iteration: int) -> int:
    return (seed * 1_000_003 + iteration * 7919) % (2**63 - 1)


def train(
    model: nn.Module,
    dataset: Dataset,
    config: TrainConfig,
    checkpoint_dir: str | Path | None = None,
    loss_fn: LossFn = default_loss,
    model_config: dict[str, Any] | None = None,
    parameter_groups: list[dict[str, Any]] | None = None,
    stop_after: int | None = None,
    show_progress: bool = True,
) -> list[dict[str, float]]:
    """Train ``model`` for ``config.iterations`` with :func:`run_training`; return the training curve.

    Resumes from ``checkpoint_dir/last.pt`` when present. ``stop_after`` ends the run early at that
    iteration (after checkpointing): used to simulate an interruption. ``parameter_groups`` may set
    per-group ``lr_mult`` (e.g. a backbone at 0.1×).
    """
    torch.manual_seed(config.seed)
    world, rank = (dist.get_world_size(), dist.get_rank()) if dist.is_initialized() else (1, 0)
    device = next(model.parameters()).device
    groups = parameter_groups or [{"params": [p for p in model.parameters() if p.requires_grad]}]
    for group in groups:
        group.setdefault("lr_mult", 1.0)
    optimizer = torch.optim.SGD(
        groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, foreach=config.foreach
    )
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=config.seed, drop_last=True)
    loader = DataLoader(
        dataset, batch_size=config.batch_size, sampler=sampler, num_workers=config.num_workers, drop_last=True
    )
    batches = EpochBatches(loader, sampler.set_epoch)

    def batch_at(iteration: int) -> dict[str, Any]:
        batches.seek(iteration)
        torch.manual_seed(_rng_seed(config.seed, iteration))
        batch = {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in next(batches).items()}
        if config.channels_last:
            batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
        return batch

    task = TrainingTask(
        model=model,
        optimizer=optimizer,
        iterations=config.iterations,
        batch=batch_at,
        loss=loss_fn,
        lr=lambda t: poly_lr(config.lr, t, config.iterations, config.poly_power, config.min_lr),
        resume_fields={"model_config": model_config or {}, "train_config": asdict(config)},
        curve_extra=lambda done, losses: {k: float(v.detach()) for k, v in losses.items() if k != "loss"},
        grad_clip_norm=config.grad_clip_norm,
        amp_dtype=config.amp_dtype,
    )
    return run_training(
        task,
        checkpoint_dir,
        log_interval=config.log_interval,
        checkpoint_interval=config.checkpoint_interval,
        checkpoint_seconds=config.checkpoint_seconds,
        stop_after=stop_after,
        show_progress=show_progress,
    )


def launch_local_ddp(function: Callable[..., None], world_size: int, *args: Any, backend: str = "gloo") -> None:
    """Run ``function(rank, world_size, *args)`` in ``world_size`` local processes with an
    initialised process group (gloo on CPU). For tests and single-node debugging; clusters use
    ``torchrun``."""
    import torch.multiprocessing as mp

    port = 29500 + (os.getpid() % 2000)
    mp.spawn(_ddp_entry, args=(world_size, port, backend, function, args), nprocs=world_size, join=True)


def _ddp_entry(rank: int, world_size: int, port: int, backend: str, function: Callable[..., None], args: tuple) -> None:
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group(backend, rank=rank, world_size=world_size)
    try:
        function(rank, world_size, *args)
        # no rank tears gloo down while a peer is still in a collective: without this barrier a
        # rank that finished first aborted its peer now and then ("terminate called without an
        # active exception"). Only on success: after an error the peer may never arrive.
        dist.barrier()
    finally:
        dist.destroy_process_group()

"""Model complexity: parameters, multiply-accumulates and latency.

MACs follow the mmcv ``get_model_complexity_info`` convention the thesis tables use ("FLOPs" in
Tables 3.5 / 4.6 are multiply-accumulates): they are counted with
:class:`torch.utils.flop_counter.FlopCounterMode` and halved (it counts one multiply-add as 2
FLOPs). Counted: convolutions (incl. depthwise / dilated / transposed), linear layers and every
matrix product (``mm``, ``addmm``, ``bmm``, ``baddbmm``, ``einsum`` -- which lowers to ``bmm`` --
and scaled-dot-product attention). Not counted: bias additions, BatchNorm/LayerNorm, activations,
softmax, pooling, interpolation and element-wise ops. mmcv additionally counts BN, ReLU, pooling and
conv biases (about one MAC per output element each), so the two differ by well under 1% on the
decode heads; mmcv does not count ``einsum``/``bmm``, which the criss-cross and ISNet attention use.

Counting runs on the ``meta`` device when the module lives there: no memory, no arithmetic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (buffers such as BN running stats are not parameters)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_flops_by_operator(module: nn.Module, *inputs: Tensor) -> dict[str, int]:
    """FLOPs (2 per multiply-add) of one forward pass, per aten operator."""
    counter = FlopCounterMode(display=False)
    with counter:
        module(*inputs)
    return {str(op): int(flops) for op, flops in counter.get_flop_counts()["Global"].items()}


def count_macs(module: nn.Module, *inputs: Tensor) -> int:
    """Multiply-accumulates of one forward pass of ``module(*inputs)`` (= FLOPs / 2)."""
    return sum(count_flops_by_operator(module, *inputs).values()) // 2


def feature_pyramid_shapes(
    image_size: int | tuple[int, int] = 512,
    channels: Sequence[int] = (256, 512, 1024, 2048),
    strides: Sequence[int] = (4, 8, 8, 8),
    batch_size: int = 1,
) -> list[tuple[int, int, int, int]]:
    """Shapes of the backbone levels of an ``image_size`` input (ceil division as in a ResNet).

    ``strides`` (4, 8, 8, 8) is a dilated (output stride 8) ResNet, (4, 8, 16, 32) a plain one.
    """
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    return [(batch_size, c, -(-height // s), -(-width // s)) for c, s in zip(channels, strides)]


def profile_module(
    module: nn.Module, input_shapes: Sequence[Sequence[int]], *, as_list: bool = True, device: str = "meta"
) -> dict[str, int]:
    """``{"params", "macs"}`` of ``module`` on random inputs of ``input_shapes``.

    With ``device="meta"`` build the module under ``torch.device("meta")`` first, so nothing is
    allocated. ``as_list`` passes the inputs as one list (decode heads) instead of positionally.
    """
    module = module.eval()
    inputs = [torch.empty(shape, device=device) for shape in input_shapes]
    args = (inputs,) if as_list else tuple(inputs)
    return {"params": count_parameters(module), "macs": count_macs(module, *args)}


def profile_decode_head(
    name: str,
    *,
    num_classes: int = 150,
    image_size: int = 512,
    strides: Sequence[int] | None = None,
    channels: Sequence[int] = (256, 512, 1024, 2048),
    **head_cfg,
) -> dict[str, int]:
    """Parameters and MACs of decode head ``name`` on the feature pyramid of an ``image_size``
    image, built on the meta device. Default strides: the head's own
    (:func:`~seg_pipelines.models.heads.default_feature_strides`: (4, 8, 16, 32) for UperNet, whose
    MMSeg ResNet is not dilated, (4, 8, 8, 8) (output stride 8) for the others)."""
    from seg_pipelines.models.heads import create_decode_head, default_feature_strides

    if strides is None:
        strides = default_feature_strides(name)
    with torch.device("meta"):
        head = create_decode_head(name, num_classes=num_classes, in_channels=channels, **head_cfg)
    return profile_module(head, feature_pyramid_shapes(image_size, channels, strides))


@torch.no_grad()
def measure_latency(
    module: nn.Module,
    *inputs: Tensor,
    warmup: int = 3,
    iterations: int = 10,
    synchronize: Callable[[], None] | None = None,
) -> float:
    """Median wall-clock seconds of one forward pass (``synchronize`` e.g. ``torch.cuda.synchronize``)."""
    sync = synchronize or (lambda: None)
    module.eval()
    for _ in range(warmup):
        module(*inputs)
    sync()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        module(*inputs)
        sync()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]

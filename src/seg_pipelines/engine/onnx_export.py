"""ONNX export and ONNX Runtime inference of a segmentation network (DESIGN.md §7, "Deployment").

    export_onnx(network, sample, "model.onnx", metadata={"class_names": json.dumps(names)})
    runtime = OnnxSegmentor("model.onnx")
    logits = runtime(images)["logits"]                 # (1, K, H, W), any H and W

A network here maps ``images`` (1, 3, H, W) to ``logits`` (1, K, H, W). It is exported with
``torch.onnx.export(..., dynamo=True)`` (the ``torch.export`` exporter; the TorchScript one fails on the
CLIP position-embedding arithmetic and drops in-place writes into slices without a word) with height and
width dynamic; the exported graph is checked to have kept them dynamic. What cannot be exported (an op
without an ONNX translation, a Python branch on a tensor value, a shape fixed by the code) raises
:class:`OnnxExportError` naming the submodule it happened in (its qualified name and class).
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 18


class OnnxExportError(RuntimeError):
    """A network that cannot be exported to ONNX, or an exported graph that lost its dynamic size."""


# --------------------------------------------------------------------------- locating the culprit


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and its causes / contexts, outermost first."""
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def _module_from_traceback(named: Mapping[int, str], error: BaseException) -> str | None:
    """The innermost submodule of the network whose ``forward`` is on the stack of ``error`` (or one of
    its causes): where tracing stopped, e.g. on a Python branch on a tensor value."""
    innermost = None
    for link in _chain(error):
        for frame, _ in traceback.walk_tb(link.__traceback__):
            owner = frame.f_locals.get("self")
            if isinstance(owner, nn.Module) and id(owner) in named:
                innermost = named[id(owner)]
    return innermost


def _module_from_graph(program: Any, message: str) -> str | None:
    """The submodule that calls the operator a conversion error names (``target=torch.ops.<op>``), read
    from the ``nn_module_stack`` of that node in the network's ``torch.export`` graph ``program``."""
    operators = set(re.findall(r"target=torch\.ops\.([\w.]+)", message))
    operators |= {m.replace("::", ".") for m in re.findall(r"op='([\w.:]+)'", message)}
    if program is None or not operators:
        return None
    for node in program.graph.nodes:
        target = str(node.target)
        if any(target == op or target.startswith(op + ".") for op in operators):
            stack = node.meta.get("nn_module_stack") or {}
            if stack:
                path, _ = list(stack.values())[-1]
                return str(path).removeprefix("L['self'].").removeprefix("L__self__.") or None
    return None


def locate_unexportable_module(network: nn.Module, error: BaseException, program: Any = None) -> tuple[str, str] | None:
    """``(qualified name, class name)`` of the submodule of ``network`` where ``error`` happened, or
    ``None`` when it cannot be pinned to one (the root is ``""``): the innermost submodule on the stack
    of a tracing error (``torch.export``), or the one that calls the operator a conversion error names
    in ``program`` (the network's ``torch.export`` graph)."""
    named = {id(module): name for name, module in network.named_modules()}
    name = _module_from_traceback(named, error)
    if name is None:
        text = "\n".join(str(link) for link in _chain(error))
        name = _module_from_graph(program, text)
    if name is None:
        return None
    modules = dict(network.named_modules())
    if name not in modules:  # a path from the export graph that is not ours verbatim: its longest known prefix
        parts = name.split(".")
        while parts and ".".join(parts) not in modules:
            parts.pop()
        name = ".".join(parts)
    return name, type(modules[name]).__name__


def _error_summary(error: BaseException) -> str:
    """The most specific line of an exporter error (its root cause)."""
    root = _chain(error)[-1]
    text = str(root).strip().splitlines()
    return f"{type(root).__name__}: {text[0] if text else ''}"[:400]


# --------------------------------------------------------------------------- export


def onnx_input_dims(path: str | Path) -> list[int | str]:
    """Dimensions of the graph input of ``path``: ints where fixed, symbol names where dynamic."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return [d.dim_param if d.HasField("dim_param") or not d.HasField("dim_value") else int(d.dim_value) for d in dims]


def export_onnx(
    network: nn.Module,
    sample: torch.Tensor,
    path: str | Path,
    *,
    metadata: Mapping[str, str] | None = None,
    opset: int = DEFAULT_OPSET,
    name: str = "network",
) -> Path:
    """Export ``network`` (images (1, 3, H, W) → logits (1, K, H, W)) to ``path`` with dynamic H and W
    and ``metadata`` as the model's ``metadata_props``.

    ``sample`` is the example input traced; pick a size no module treats specially (not the size an
    open-vocabulary model resizes to). Raises :class:`OnnxExportError` naming the submodule that cannot
    be exported, or when the exported graph fixed H or W.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    network = network.eval()
    dynamic_shapes = ({2: torch.export.Dim.AUTO, 3: torch.export.Dim.AUTO},)
    program = None
    try:
        with torch.no_grad():  # step 1, the graph (torch.export, non-strict); step 2, its ONNX translation
            program = torch.export.export(network, (sample,), dynamic_shapes=dynamic_shapes, strict=False)
            onnx_program = torch.onnx.export(
                program,
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                opset_version=opset,
                verbose=False,
            )
    except Exception as error:
        culprit = locate_unexportable_module(network, error, program)
        where = (
            f"module '{culprit[0] or '<root>'}' ({culprit[1]})"
            if culprit
            else "a module this export could not pin down (see the exporter error above)"
        )
        raise OnnxExportError(f"{name} cannot be exported to ONNX: {where}: {_error_summary(error)}") from error
    for key, value in dict(metadata or {}).items():
        onnx_program.model.metadata_props[str(key)] = str(value)
    onnx_program.save(str(path))
    dims = onnx_input_dims(path)
    if len(dims) != 4 or not (isinstance(dims[2], str) and isinstance(dims[3], str)):
        raise OnnxExportError(
            f"{name}: the exported graph fixed the input size to {dims} (height and width must stay dynamic): "
            f"a module treats the sample size {tuple(sample.shape)} as a constant; export with another sample size"
        )
    other_size = (int(sample.shape[-2]) + 9, int(sample.shape[-1]) + 11)
    try:  # a size written into the graph as a constant (a reshape to the traced size) fails here
        OnnxSegmentor(path, num_threads=1).run(np.zeros((*sample.shape[:2], *other_size), dtype=np.float32))
    except Exception as error:
        raise OnnxExportError(
            f"{name}: the exported graph does not run at another size {other_size[0]}x{other_size[1]} "
            f"(height and width must stay dynamic; a module fixes a shape to the traced one): {str(error)[:300]}"
        ) from error
    return path


# --------------------------------------------------------------------------- inference


def read_onnx_metadata(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of the ONNX model ``path`` (weights not loaded)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {prop.key: prop.value for prop in model.metadata_props}


class OnnxSegmentor(nn.Module):
    """An exported network run by ONNX Runtime (CPU) with a module's surface: ``forward(images)`` →
    ``{"logits": tensor}``, ``num_classes`` and the model's ``metadata``.

    Args:
        path: the ``.onnx`` file.
        num_threads: ONNX Runtime intra-op threads (0: its default).
    """

    def __init__(self, path: str | Path, *, num_threads: int = 0) -> None:
        super().__init__()
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(num_threads)
        options.inter_op_num_threads = 1
        self.path = str(path)
        self.session = onnxruntime.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.input_name = self.session.get_inputs()[0].name
        output_shape = self.session.get_outputs()[0].shape
        self._num_classes = output_shape[1] if isinstance(output_shape[1], int) else None

    @property
    def num_classes(self) -> int:
        if self._num_classes is None:
            raise ValueError(f"{self.path}: the class count is not fixed in the graph")
        return int(self._num_classes)

    def run(self, images: np.ndarray) -> np.ndarray:
        """Logits of ``images`` (1, 3, H, W) float32, as numpy."""
        return self.session.run(None, {self.input_name: np.ascontiguousarray(images, dtype=np.float32)})[0]

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": torch.from_numpy(self.run(images.detach().cpu().numpy()))}

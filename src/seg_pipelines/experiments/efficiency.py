"""Efficiency tables of the thesis: Tables 3.5, 3.6 (CAA), 4.6 (ECAC) and 5.8 (LSMSeg).

Every builder returns a DataFrame with the thesis table's own rows and columns, and for each
numeric thesis column ``C`` the columns ``"C thesis"`` and ``"C ours"`` (plus ``"C diff %"`` =
100 (ours / thesis - 1) where the two were measured in the same setting), and comparisons with the
row's baseline: ``"C ↑ thesis"`` / ``"C ↑ ours"`` (absolute increase, Tables 3.5 / 4.6) or
``"C ratio thesis"`` / ``"C ratio ours"`` (method / baseline, Tables 3.6 / 5.8). Values we cannot
measure here (accuracy, MCIBI, ZegFormer …) are NaN in the "ours" columns.

Complexity (parameters, multiply-accumulates) is counted on the ``meta`` device at the thesis'
full size; wall-clock timings run on the available device at an affordable size and are only
comparable as ratios to their baseline (the thesis measured on GPUs at 512x512 / 6k iterations).
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from seg_pipelines.engine.profiling import count_macs, count_parameters, feature_pyramid_shapes, measure_latency
from seg_pipelines.engine.runtime import set_torch_threads
from seg_pipelines.engine.tables import markdown_table
from seg_pipelines.models.heads import head_display_name
from seg_pipelines.thesis_tables import EfficiencyTable, tables_of

# ----------------------------------------------------------------------------- thesis numbers
# The thesis' efficiency tables as printed (seg_pipelines.thesis_tables, pipeline "efficiency"):
# caption, label and value columns, rows with the thesis' own columns plus "key" (our model
# configuration). A "{head}" in a label is filled in with the head's display name in the thesis'
# spelling (seg_pipelines.models.heads.head_display_name).


def _with_head_names(table: EfficiencyTable) -> dict[str, Any]:
    rows = []
    for row in table.rows:
        head = head_display_name(row["key"].partition("+")[0], thesis=True)
        rows.append({c: v.format(head=head) if c in table.label_columns else v for c, v in row.items()})
    return {
        "caption": table.caption,
        "label_columns": list(table.label_columns),
        "value_columns": list(table.value_columns),
        "rows": rows,
    }


THESIS_TABLES: dict[str, dict[str, Any]] = {table.key: _with_head_names(table) for table in tables_of("efficiency")}

# How each table compares a row with its baseline: "delta" (absolute increase) or "ratio".
BASELINE_COMPARISON = {"table_3_5": "delta", "table_3_6": "ratio", "table_4_6": "delta", "table_5_8": "ratio"}
# Value columns whose "ours" is measured in the thesis' own setting (so "diff %" is meaningful).
COMPARABLE_COLUMNS = {
    "table_3_5": ("Params(M)", "FLOPs(G)"),
    "table_3_6": (),
    "table_4_6": ("Params(M)", "FLOPs(G)"),
    "table_5_8": ("Params (M)", "GFLOPs"),
}


def split_key(key: str) -> tuple[str, str | None]:
    """``"pspnet+caa"`` → ``("pspnet", "caa")``; ``"fcn"`` → ``("fcn", None)``."""
    head, _, addon = key.partition("+")
    return head, addon or None


def baseline_key(table: str, key: str) -> str:
    """The row a row is compared with: the head alone (Tables 3.5, 3.6, 4.6), CAT-Seg (Table 5.8)."""
    return "catseg" if table == "table_5_8" else split_key(key)[0]


def thesis_rows(table: str) -> list[dict[str, Any]]:
    return THESIS_TABLES[table]["rows"]


# ----------------------------------------------------------------------------- table assembly


def _ratio_or_delta(value: float, base: float, mode: str) -> float:
    if value is None or base is None or not np.isfinite(value) or not np.isfinite(base):
        return math.nan
    return value - base if mode == "delta" else value / base


def comparison_table(table: str, measured: Mapping[str, Mapping[str, float]], **extra_columns: Any) -> pd.DataFrame:
    """Thesis table ``table`` with our ``measured[row key][thesis column]`` next to it.

    Rows and label columns are the thesis'; for each value column ``C``: ``C thesis``, ``C ours``,
    ``C diff %`` (comparable columns only) and the baseline comparison (``C ↑ …`` / ``C ratio …``)
    for rows that have a baseline. ``extra_columns`` are appended as constant columns (e.g. device).
    """
    spec = THESIS_TABLES[table]
    mode = BASELINE_COMPARISON[table]
    symbol = "↑" if mode == "delta" else "ratio"
    by_key = {row["key"]: row for row in spec["rows"]}
    records = []
    for row in spec["rows"]:
        key = row["key"]
        base_key = baseline_key(table, key)
        record: dict[str, Any] = {column: row[column] for column in spec["label_columns"]}
        ours_row = measured.get(key, {})
        for column in spec["value_columns"]:
            thesis_value = float(row[column])
            ours_value = float(ours_row.get(column, math.nan))
            record[f"{column} thesis"] = thesis_value
            record[f"{column} ours"] = ours_value
            if column in COMPARABLE_COLUMNS[table]:
                record[f"{column} diff %"] = 100.0 * (ours_value / thesis_value - 1.0)
            if column in COMPARABLE_COLUMNS[table] or (mode == "ratio" and not column.startswith("mIoU")):
                has_base = base_key != key and base_key in by_key
                base_thesis = float(by_key[base_key][column]) if has_base else math.nan
                base_ours = float(measured.get(base_key, {}).get(column, math.nan)) if has_base else math.nan
                record[f"{column} {symbol} thesis"] = _ratio_or_delta(thesis_value, base_thesis, mode)
                record[f"{column} {symbol} ours"] = _ratio_or_delta(ours_value, base_ours, mode)
        record["model"] = key
        record.update(extra_columns)
        records.append(record)
    return pd.DataFrame.from_records(records)


def _cell(value: Any, digits: int) -> str:
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "–"
        # small values (minutes of a few iterations) keep 3 significant digits
        return f"{value:.{digits}f}" if abs(value) >= 1 or value == 0 else f"{value:.3g}"
    return str(value)


def table_markdown(table: pd.DataFrame, title: str, notes: Sequence[str] = (), digits: int = 2) -> str:
    """GitHub markdown of a comparison table (NaN shown as "–") with a title and notes
    (:func:`seg_pipelines.engine.tables.markdown_table`)."""
    return markdown_table(table, cell=lambda value: _cell(value, digits), title=f"### {title}", notes=notes) + "\n"


# ----------------------------------------------------------------------------- complexity (meta)


class HeadWithAddon(nn.Module):
    """Decode head whose classifier (``cls_seg`` → ``conv_seg``) is replaced by an add-on (as in the segmentor)."""

    def __init__(self, head: nn.Module, addon: nn.Module | None = None) -> None:
        super().__init__()
        self.head = head
        self.addon = addon

    def forward(self, features: list[Tensor]) -> Tensor:
        head_features, _ = self.head.forward_features_with_extras(features)
        if self.addon is None:
            return self.head.cls_seg(head_features)
        return self.addon(head_features, None)["logits"]


def profile_head_with_addon(
    head_name: str,
    addon: str | None = None,
    *,
    num_classes: int = 150,
    image_size: int = 512,
    channels: int = 512,
    in_channels: Sequence[int] = (256, 512, 1024, 2048),
    addon_cfg: Mapping[str, Any] | None = None,
    exclude_replaced_classifier: bool = True,
) -> dict[str, int]:
    """``{"params", "macs"}`` of decode head ``head_name`` (+ ``addon``) on the backbone pyramid of
    an ``image_size`` image (2048x64x64 last level for 512 px at output stride 8), on meta.

    No auxiliary head (the thesis profiles the inference model). With an add-on the head's own
    classifier is unused; ``exclude_replaced_classifier`` leaves its parameters out of the count.
    """
    from seg_pipelines.models.heads import default_feature_strides

    strides = default_feature_strides(head_name)  # as profile_decode_head
    module = _head_with_addon(head_name, addon, num_classes, channels, in_channels, addon_cfg)
    inputs = [torch.empty(shape, device="meta") for shape in feature_pyramid_shapes(image_size, in_channels, strides)]
    return {
        "params": _counted_parameters(module, exclude_replaced_classifier),
        "macs": count_macs(module, inputs),
    }


def _head_with_addon(
    head_name: str,
    addon: str | None,
    num_classes: int,
    channels: int,
    in_channels: Sequence[int],
    addon_cfg: Mapping[str, Any] | None,
) -> HeadWithAddon:
    """Decode head (+ add-on) on the meta device, in eval mode."""
    from seg_pipelines.models.factory import create_addon
    from seg_pipelines.models.heads import create_decode_head

    with torch.device("meta"):
        head = create_decode_head(head_name, num_classes=num_classes, in_channels=in_channels, channels=channels)
        addon_module = (
            create_addon(addon, in_channels=channels, num_classes=num_classes, **dict(addon_cfg or {}))
            if addon
            else None
        )
        return HeadWithAddon(head, addon_module).eval()


def _counted_parameters(module: HeadWithAddon, exclude_replaced_classifier: bool) -> int:
    """Parameters of ``module``, less the head's classifier when an add-on replaces it and it is excluded."""
    params = count_parameters(module)
    if module.addon is not None and exclude_replaced_classifier:
        params -= count_parameters(module.head.conv_seg)
    return params


def complexity_measurements(
    table: str,
    *,
    num_classes: int = 150,
    image_size: int = 512,
    channels: int = 512,
    addon_cfg: Mapping[str, Mapping[str, Any]] | None = None,
    exclude_replaced_classifier: bool = True,
) -> dict[str, dict[str, float]]:
    """Our ``Params(M)`` / ``FLOPs(G)`` (MACs) for every row of Table 3.5 or 4.6 we can build."""
    from seg_pipelines.models.factory import list_addons

    known_addons = set(list_addons())
    measured = {}
    for row in tqdm(thesis_rows(table), desc=f"{table} complexity", leave=False):
        head, addon = split_key(row["key"])
        if addon is not None and addon not in known_addons:  # MCIBI / MCIBI++: not implemented
            continue
        profile = profile_head_with_addon(
            head,
            addon,
            num_classes=num_classes,
            image_size=image_size,
            channels=channels,
            addon_cfg=(addon_cfg or {}).get(addon, {}) if addon else None,
            exclude_replaced_classifier=exclude_replaced_classifier,
        )
        measured[row["key"]] = {"Params(M)": profile["params"] / 1e6, "FLOPs(G)": profile["macs"] / 1e9}
    return measured


# ----------------------------------------------------------------------------- readings of the text

#: Tables 3.5 / 4.6 count the parameters of designs the text leaves open in places. Per add-on, each
#: reading: label → (add-on arguments, whether the head's own 1×1 classifier, unused once the add-on
#: replaces it, is counted). CAA: the text has 1×1 convolutions only (L535 reduction, L554 affinity,
#: L597 Δ), ``reduction_kernel_size`` 3 is the other reading; ECAC: the memory bank is a buffer
#: (eq. 4.2 moves it) or a parameter (eq. 4.20 trains it, the thesis env). The complexity tables use
#: the configured reading and name it; :func:`parameter_readings` prints every reading beside the thesis.
PARAMETER_READINGS: dict[str, dict[str, tuple[dict[str, Any], bool]]] = {
    "caa": {
        "1×1 convs (the text)": ({"reduction_kernel_size": 1}, False),
        "1×1 convs (the text) + head classifier": ({"reduction_kernel_size": 1}, True),
        "3×3 reduction conv": ({"reduction_kernel_size": 3}, False),
        "3×3 reduction conv + head classifier": ({"reduction_kernel_size": 3}, True),
    },
    "ecac": {
        "memory bank a buffer": ({"memory_learning": "momentum"}, False),
        "memory bank a buffer + head classifier": ({"memory_learning": "momentum"}, True),
        "memory bank a parameter": ({"memory_learning": "loss_and_momentum"}, False),
        "memory bank a parameter + head classifier": ({"memory_learning": "loss_and_momentum"}, True),
    },
}
#: The add-on whose rows each complexity table compares.
TABLE_ADDON = {"table_3_5": "caa", "table_4_6": "ecac"}
READING_COLUMNS = (
    "Params(M) thesis",
    "Params(M) ours",
    "Params(M) diff %",
    "Params(M) ↑ thesis",
    "Params(M) ↑ ours",
    "Params(M) ↑ diff %",
)


def head_parameters(
    head_name: str,
    addon: str | None = None,
    *,
    num_classes: int = 150,
    channels: int = 512,
    in_channels: Sequence[int] = (256, 512, 1024, 2048),
    addon_cfg: Mapping[str, Any] | None = None,
    exclude_replaced_classifier: bool = True,
) -> int:
    """Parameters of decode head ``head_name`` (+ ``addon``), as :func:`profile_head_with_addon` counts them."""
    module = _head_with_addon(head_name, addon, num_classes, channels, in_channels, addon_cfg)
    return _counted_parameters(module, exclude_replaced_classifier)


def parameter_readings(table: str, *, num_classes: int = 150, channels: int = 512) -> pd.DataFrame:
    """Every reading of :data:`PARAMETER_READINGS` for the add-on rows of Table 3.5 or 4.6: our
    parameters (M) and increase over the head beside the thesis's, one row per (table row, reading)."""
    addon = TABLE_ADDON[table]
    by_key = {row["key"]: row for row in thesis_rows(table)}
    label_column = THESIS_TABLES[table]["label_columns"][0]
    records = []
    for key, row in by_key.items():
        head, row_addon = split_key(key)
        if row_addon != addon:
            continue
        base = head_parameters(head, num_classes=num_classes, channels=channels) / 1e6
        thesis, thesis_base = float(row["Params(M)"]), float(by_key[head]["Params(M)"])
        for reading, (addon_cfg, classifier_counted) in PARAMETER_READINGS[addon].items():
            ours = (
                head_parameters(
                    head,
                    addon,
                    num_classes=num_classes,
                    channels=channels,
                    addon_cfg=addon_cfg,
                    exclude_replaced_classifier=not classifier_counted,
                )
                / 1e6
            )
            increase, thesis_increase = ours - base, thesis - thesis_base
            values = (
                thesis,
                ours,
                100.0 * (ours / thesis - 1.0),
                thesis_increase,
                increase,
                100.0 * (increase / thesis_increase - 1.0),
            )
            records.append(
                {
                    label_column: row[label_column],
                    "reading": reading,
                    **dict(zip(READING_COLUMNS, values)),
                    "model": key,
                }
            )
    return pd.DataFrame.from_records(records)


def reading_of(addon: str, addon_cfg: Mapping[str, Any] | None, exclude_replaced_classifier: bool) -> str:
    """The label of the :data:`PARAMETER_READINGS` entry that ``addon_cfg`` (arguments left out take the
    add-on's defaults) and the classifier setting select, or a note that they select none."""
    import inspect

    from seg_pipelines.models.factory import create_addon

    with torch.device("meta"):
        defaults = inspect.signature(type(create_addon(addon, in_channels=8, num_classes=2))).parameters
    configured = dict(addon_cfg or {})
    for label, (reading_cfg, classifier_counted) in PARAMETER_READINGS[addon].items():
        same = all(configured.get(key, defaults[key].default) == value for key, value in reading_cfg.items())
        if same and classifier_counted == (not exclude_replaced_classifier):
            return label
    return f"add-on arguments {configured} (none of PARAMETER_READINGS)"


# ----------------------------------------------------------------------------- timing


@dataclass
class TimingConfig:
    """Where and how wall-clock timings are taken.

    Args:
        device: ``auto`` (cuda when available), ``cpu`` or ``cuda``.
        image_size: square input size on CPU; ``cuda_image_size`` on a GPU (thesis: 512).
        batch_size: training batch size (inference latency is per image, batch 1).
        train_iterations: N timed training iterations (after ``warmup``).
        inference_iterations: timed forward passes (median reported).
        warmup: untimed iterations first.
        amp_dtype: autocast dtype on CUDA (``bfloat16``); CPU runs in float32.
        channels_last: channels-last memory format on CUDA.
        seed: seed of model init and random inputs.
    """

    device: str = "auto"
    image_size: int = 128
    cuda_image_size: int = 512
    batch_size: int = 2
    train_iterations: int = 10
    inference_iterations: int = 10
    warmup: int = 2
    amp_dtype: str = "bfloat16"
    channels_last: bool = True
    seed: int = 0

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("timing.device is 'cuda' but no CUDA device is available")
        return torch.device(self.device)

    @property
    def on_cuda(self) -> bool:
        return self.resolved_device().type == "cuda"

    @property
    def size(self) -> int:
        return self.cuda_image_size if self.on_cuda else self.image_size

    def device_description(self) -> str:
        device = self.resolved_device()
        if device.type == "cuda":
            name = torch.cuda.get_device_name(device)
            return f"cuda ({name}, {self.amp_dtype} autocast, channels_last={self.channels_last})"
        return f"cpu (torch threads: {torch.get_num_threads()}, float32)"

    def table_columns(self) -> dict[str, Any]:
        """The constant columns of a timed table: where and how it was timed."""
        return {
            "device": self.device_description(),
            "image_size": self.size,
            "train_iterations": self.train_iterations,
            "batch_size": self.batch_size,
        }


def _autocast(config: TimingConfig):
    device = config.resolved_device()
    if device.type == "cuda" and config.amp_dtype:
        return torch.autocast("cuda", dtype=getattr(torch, config.amp_dtype))
    return torch.autocast("cpu", enabled=False)


def _prepare(model: nn.Module, tensor: Tensor, config: TimingConfig) -> tuple[nn.Module, Tensor]:
    device = config.resolved_device()
    model = model.to(device)
    tensor = tensor.to(device)
    if device.type == "cuda" and config.channels_last:
        model = model.to(memory_format=torch.channels_last)
        tensor = tensor.contiguous(memory_format=torch.channels_last)
    return model, tensor


def time_training(
    model: nn.Module, loss_of_batch: Callable[[nn.Module], Tensor], config: TimingConfig, description: str = ""
) -> float:
    """Wall-clock seconds of ``config.train_iterations`` SGD steps (forward, loss, backward, step)."""
    device = config.resolved_device()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with _autocast(config):
            loss = loss_of_batch(model)
        loss.backward()
        optimizer.step()

    for _ in range(config.warmup):
        step()
    sync()
    start = time.perf_counter()
    for _ in tqdm(range(config.train_iterations), desc=f"train {description}", leave=False):
        step()
    sync()
    return time.perf_counter() - start


def time_inference(model: nn.Module, forward: Callable[[nn.Module], Any], config: TimingConfig) -> float:
    """Median milliseconds of one inference forward pass (batch of one image)."""
    device = config.resolved_device()

    class _Forward(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self) -> Any:
            with _autocast(config):
                return forward(self.model)

    seconds = measure_latency(
        _Forward(),
        warmup=config.warmup,
        iterations=config.inference_iterations,
        synchronize=torch.cuda.synchronize if device.type == "cuda" else None,
    )
    return 1000.0 * seconds


def _random_batch(config: TimingConfig, batch_size: int, num_classes: int) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(config.seed)
    images = torch.rand(batch_size, 3, config.size, config.size, generator=generator)
    labels = torch.randint(0, num_classes, (batch_size, config.size, config.size), generator=generator)
    return images, labels


def closed_set_timing(
    key: str,
    config: TimingConfig,
    *,
    num_classes: int = 60,
    model_cfg: Mapping[str, Any] | None = None,
    addon_cfg: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Training seconds for N iterations and inference ms/p of segmentor ``key`` ("fcn+caa")."""
    from seg_pipelines.models.factory import create_model

    head, addon = split_key(key)
    torch.manual_seed(config.seed)
    model = create_model(head, num_classes=num_classes, addon=addon, addon_cfg=addon_cfg, **dict(model_cfg or {}))
    images, labels = _random_batch(config, config.batch_size, num_classes)
    model, images = _prepare(model, images, config)
    labels = labels.to(images.device)
    train_seconds = time_training(model, lambda m: m.losses(m(images, labels), labels)["loss"], config, key)
    image = images[:1]
    inference_ms = time_inference(model, lambda m: m(image)["logits"], config)
    return {"train_seconds": train_seconds, "inference_ms": inference_ms}


def ovss_timing(
    name: str, config: TimingConfig, *, num_classes: int = 459, model_cfg: Mapping[str, Any] | None = None
) -> dict[str, float]:
    """Training seconds for N iterations and latency (ms) of OVSS model ``name`` on ``num_classes``
    random text embeddings (the text tower is not run: class embeddings are precomputed)."""
    from seg_pipelines.engine.ovss_training import masked_per_pixel_bce
    from seg_pipelines.models.factory import create_model

    torch.manual_seed(config.seed)
    model = create_model(name, **{**dict(model_cfg or {}), "image_size": config.size})
    text = torch.nn.functional.normalize(torch.randn(num_classes, 1, model.clip.embed_dim), dim=-1)
    images, labels = _random_batch(config, config.batch_size, num_classes)
    model, images = _prepare(model, images, config)
    labels, text = labels.to(images.device), text.to(images.device)

    def loss(m: nn.Module) -> Tensor:
        outputs = m(images, text)
        return masked_per_pixel_bce(outputs["logits"].float(), labels, outputs["class_indices"], 255)

    train_seconds = time_training(model, loss, config, name)
    image = images[:1]
    latency_ms = time_inference(model, lambda m: m(image, text)["logits"], config)
    return {"train_seconds": train_seconds, "inference_ms": latency_ms}


def ovss_complexity(name: str, *, num_classes: int = 459, model_cfg: Mapping[str, Any] | None = None) -> dict[str, int]:
    """``{"params", "macs"}`` of OVSS model ``name`` (one image, ``num_classes`` precomputed class
    embeddings). Built on CPU (open_clip moves models to a device) and then moved to meta, where
    the MACs are counted without arithmetic."""
    from seg_pipelines.models.factory import create_model

    model = create_model(name, **dict(model_cfg or {})).eval()
    params = count_parameters(model)
    size = model.image_size
    model = model.to("meta")
    images = torch.empty(1, 3, size, size, device="meta")
    text = torch.empty(num_classes, 1, model.clip.embed_dim, device="meta")
    return {"params": params, "macs": count_macs(model, images, text)}


def torch_threads() -> int:
    return torch.get_num_threads()


def environment_note(config: TimingConfig) -> str:
    cores = os.cpu_count()
    return f"timed on {config.device_description()}, {cores} CPU cores visible, torch {torch.__version__}"


# ----------------------------------------------------------------------------- table builders


def build_complexity_table(table: str, **options: Any) -> pd.DataFrame:
    """Table 3.5 or 4.6: decode head (+ add-on) parameters and MACs at the thesis size, on meta;
    ``options`` are the keyword settings of :func:`complexity_measurements` (same defaults). The
    ``reading`` column names the reading of the text the add-on rows count (:data:`PARAMETER_READINGS`)."""
    if table not in TABLE_ADDON:
        raise KeyError(f"{table!r} is not a complexity table (table_3_5, table_4_6)")
    addon = TABLE_ADDON[table]
    reading = reading_of(
        addon, (options.get("addon_cfg") or {}).get(addon), options.get("exclude_replaced_classifier", True)
    )
    return comparison_table(table, complexity_measurements(table, **options), reading=reading)


def build_table_3_6(
    timing: TimingConfig,
    *,
    num_classes: int = 60,
    model_cfg: Mapping[str, Any] | None = None,
    addon_cfg: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Table 3.6: training time of N iterations (min) and inference ms per image, ± CAA."""
    measured = {}
    for row in tqdm(thesis_rows("table_3_6"), desc="table_3_6 timing", leave=False):
        _, addon = split_key(row["key"])
        times = closed_set_timing(
            row["key"], timing, num_classes=num_classes, model_cfg=model_cfg, addon_cfg=addon_cfg if addon else None
        )
        measured[row["key"]] = {
            "Training(min)": times["train_seconds"] / 60.0,
            "Inference(ms/p)": times["inference_ms"],
        }
    return comparison_table("table_3_6", measured, **timing.table_columns())


def build_table_5_8(
    timing: TimingConfig,
    *,
    num_classes: int = 459,
    complexity_cfg: Mapping[str, Any] | None = None,
    timing_cfg: Mapping[str, Any] | None = None,
    models: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """Table 5.8: CAT-Seg vs LSMSeg (w/o SAM): parameters and MACs with ``complexity_cfg`` (e.g.
    ViT-B-16 at 384 px, as the thesis), latency and training time with ``timing_cfg`` (tiny CLIP)."""
    models = models or {"catseg": {"top_k": 256}, "lsmseg": {"top_k": 32, "use_sam": False}}
    measured: dict[str, dict[str, float]] = {}
    for key, model_kwargs in tqdm(models.items(), desc="table_5_8", leave=False):
        complexity = ovss_complexity(
            key, num_classes=num_classes, model_cfg={**dict(complexity_cfg or {}), **dict(model_kwargs)}
        )
        times = ovss_timing(
            key, timing, num_classes=num_classes, model_cfg={**dict(timing_cfg or {}), **dict(model_kwargs)}
        )
        measured[key] = {
            "Params (M)": complexity["params"] / 1e6,
            "GFLOPs": complexity["macs"] / 1e9,
            "Latency (ms)": times["inference_ms"],
            "Time (min)": times["train_seconds"] / 60.0,
        }
    return comparison_table("table_5_8", measured, **timing.table_columns())


def metric_name(column: str) -> str:
    """``"Inference(ms/p) ratio ours"`` → ``"inference_ms_p_ratio"``;
    ``"Params(M) diff %"`` → ``"params_m_diff_pct"``."""
    name = column.removesuffix(" ours").replace("diff %", "diff pct").replace("↑", "increase")
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")


def efficiency_metrics(tables: Mapping[str, pd.DataFrame]) -> dict[str, dict[str, dict[str, float]]]:
    """Numbers for MLflow: per table and row, our values, baseline deltas / ratios and diff %."""
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    for name, table in tables.items():
        per_row = {}
        for _, row in table.iterrows():
            values = {}
            for column, value in row.items():
                if not column.endswith((" ours", " diff %")) or not isinstance(value, (float, int, np.floating)):
                    continue
                if np.isfinite(value):
                    slug = metric_name(column)
                    values[slug] = float(value)
            if values:
                per_row[row["model"].replace("+", "_")] = values
        metrics[name] = per_row
    return metrics


TABLE_NOTES = {
    "table_3_5": [
        "ours: decode head + CAA only (no backbone, no auxiliary head), 150 classes, counted on the meta device "
        "on the ResNet-50 pyramid of a 512x512 image (last level 2048x64x64, output stride 8; UperNet: strides "
        "4/8/16/32 as MMSeg's non-dilated UperNet, so its head and CAA run at 128x128).",
        "FLOPs(G) are multiply-accumulates (mmcv convention), ours = FlopCounterMode FLOPs / 2; "
        "'↑' = increase over the same head without the add-on.",
        "mIoU is not measured by this pipeline (see the caa pipeline).",
    ],
    "table_4_6": [
        "ours: decode head + ECAC only (no backbone, no auxiliary head), 150 classes, meta device, ResNet-50 "
        "pyramid of a 512x512 image; ECAC replaces the head's classifier (DeeplabV3plus: at stride 4).",
        "FLOPs(G) are multiply-accumulates; MCIBI / MCIBI++ are not implemented (thesis numbers only).",
        "mIoU is not measured by this pipeline (see the ecac pipeline).",
    ],
    "table_3_6": [
        "ours: whole segmentor (backbone + head (+ CAA) + auxiliary head) on random data; Training(min) is the "
        "time of `train_iterations` SGD steps (not 6k), Inference(ms/p) the median latency of one image.",
        "absolute times are not comparable with the thesis' GPU numbers; compare the ratios add-on / baseline.",
    ],
    "table_5_8": [
        "ours: Params (M) and GFLOPs (multiply-accumulates, one image, 459 precomputed class embeddings, text tower "
        "not run) of the full-size configuration counted on the meta device; Latency and Time (training time of "
        "`train_iterations` steps) measured with the timing configuration (tiny CLIP unless configured otherwise).",
        "ZegFormer, OVSeg and SED are not implemented (thesis numbers only); ratios are relative to CAT-Seg.",
    ],
}


#: What the readings table shows (issue 28; the numbers are the table's own, printed above these notes).
READING_NOTES = {
    "table_3_5": [
        "No reading reaches the thesis's +3.60-3.61 M: the text's 1×1 convolutions give the smallest increase, "
        "the 3×3 reduction conv comes closest; neither is the thesis's count.",
    ],
    "table_4_6": [
        "The thesis's +1.02-1.05 M is not reached by any reading; its absolute counts are nearest with the "
        "memory bank a parameter and the head's classifier counted.",
    ],
}


def report_markdown(name: str, table: pd.DataFrame, extra_notes: Sequence[str] = ()) -> str:
    """Markdown of table ``name`` under the thesis caption, with the measurement setting."""
    notes = list(TABLE_NOTES[name]) + list(extra_notes)
    shown = table
    if "device" in table.columns:
        first = table.iloc[0]
        notes.append(
            f"timed on {first['device']}, image {first['image_size']} px, batch {first['batch_size']}, "
            f"{first['train_iterations']} training iterations"
        )
        shown = table.drop(columns=["device", "image_size", "batch_size", "train_iterations"])
    if "reading" in table.columns:
        notes.append(
            f"add-on rows count the reading '{table.iloc[0]['reading']}' (the readings table below: every one)"
        )
        shown = shown.drop(columns=["reading"])
    return table_markdown(shown, THESIS_TABLES[name]["caption"], notes)


def readings_markdown(name: str, readings: pd.DataFrame) -> str:
    """Markdown of :func:`parameter_readings`: each add-on row's parameters under every reading of the text."""
    addon = TABLE_ADDON[name]
    notes = [
        f"{addon.upper()} rows: parameters (M) of the head + {addon.upper()} and the increase over the head "
        "('↑'), counted as the complexity table counts them, under each reading of the text "
        "(seg_pipelines.experiments.efficiency.PARAMETER_READINGS); 'diff %' = 100 (ours / thesis - 1).",
        *READING_NOTES[name],
    ]
    title = f"Table {name.removeprefix('table_').replace('_', '.')}: parameter counts per reading of the text"
    return table_markdown(readings, title, notes)


def timing_config(timing: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> TimingConfig:
    """The ``timing`` block with a table's ``timing`` overrides; ``num_threads`` sets torch's threads."""
    options = {**dict(timing), **dict(overrides or {})}
    set_torch_threads(options.pop("num_threads", None))
    return TimingConfig(**options)


# --- the efficiency pipeline's nodes -------------------------------------------------------------


def _complexity(table: str, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    options = params["complexity"]
    readings = parameter_readings(
        table, num_classes=options.get("num_classes", 150), channels=options.get("channels", 512)
    )
    return build_complexity_table(table, **options), readings


def complexity_table_3_5(params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 3.5: heads ± CAA, parameters and MACs at the thesis size (meta device); the CAA rows'
    parameters under every reading of the text."""
    return _complexity("table_3_5", params)


def complexity_table_4_6(params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 4.6: heads ± ECAC, parameters and MACs at the thesis size (meta device); the ECAC rows'
    parameters under every reading of the text."""
    return _complexity("table_4_6", params)


def timing_table_3_6(params: dict[str, Any]) -> pd.DataFrame:
    """Table 3.6: training time (N iterations) and inference ms/p, ± CAA."""
    table_params = params["table_3_6"]
    return build_table_3_6(
        timing_config(params["timing"], table_params.get("timing")),
        num_classes=table_params["num_classes"],
        model_cfg=table_params["model"],
        addon_cfg=table_params["addon"],
    )


def ovss_table_5_8(params: dict[str, Any]) -> pd.DataFrame:
    """Table 5.8: CAT-Seg vs LSMSeg (w/o SAM) parameters, latency, training time, MACs."""
    table_params = params["table_5_8"]
    return build_table_5_8(
        timing_config(params["timing"], table_params.get("timing")),
        num_classes=table_params["num_classes"],
        complexity_cfg=table_params["complexity_model"],
        timing_cfg=table_params["timing_model"],
        models=table_params["models"],
    )


def report_tables(
    table_3_5: pd.DataFrame,
    table_3_6: pd.DataFrame,
    table_4_6: pd.DataFrame,
    table_5_8: pd.DataFrame,
    readings_3_5: pd.DataFrame,
    readings_4_6: pd.DataFrame,
) -> tuple[str, str, str, str, dict[str, Any]]:
    """Markdown of each table (with its setting; Tables 3.5 / 4.6 followed by their readings) and the
    MLflow metrics."""
    tables = {"table_3_5": table_3_5, "table_3_6": table_3_6, "table_4_6": table_4_6, "table_5_8": table_5_8}
    readings = {"table_3_5": readings_3_5, "table_4_6": readings_4_6}
    markdowns = [
        report_markdown(name, table) + ("\n" + readings_markdown(name, readings[name]) if name in readings else "")
        for name, table in tables.items()
    ]
    return (*markdowns, efficiency_metrics(tables))

"""LSMSeg ablations (thesis chapter 5, Tables 5.5, 5.6, 5.7, 5.10, 5.11) on top of ``engine.ablations``.

Every row of a table is an :class:`~seg_pipelines.engine.ablations.AblationVariant` whose overrides
change the ``lsmseg``-style settings block (``params:lsmseg_ablations.setup``, same schema as
``params:lsmseg``); :class:`LSMSegAblationRunner` is the ``run_variant(variant, seed)`` callable:
it applies the overrides, trains with the ``lsmseg`` pipeline's own training node and evaluates on
the six benchmark vocabularies with the same evaluation loop (no copy of either), and returns the
six Table 5.1 columns (mIoU in %) plus ``avg.``.

Override keys (per row in ``params:lsmseg_ablations.tables``):

* ``model``: which entry of ``setup.models`` is trained (``baseline`` = CAT-Seg, ``lsmseg``);
* ``prompts``: ``templates`` (hand-crafted) or ``enriched`` (the attribute-selection prompt set when
  its file exists, templates otherwise; the table note says which);
* ``unavailable``: the row cannot be measured here (e.g. ZegFormer, DINOv2): it is reported failed
  with this reason and the thesis's numbers stay beside it;
* anything else: a dotted path into ``setup`` (``models.lsmseg.top_k``, ``clip.finetune``,
  ``train_vocabulary`` …).

Rows whose resolved settings are identical (e.g. Table 5.6 "LSMSeg(w/ SAM-L)" and Table 5.10
"CLIP_qv", which the thesis also reports with the same numbers) share one training per seed within a
process (``cache``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from seg_pipelines.datasets.base import create_reader
from seg_pipelines.engine import ovss_training
from seg_pipelines.engine.ablations import (
    AblationVariant,
    VariantResult,
    ablation_long_table,
    ablation_markdown,
    ablation_metrics,
    run_ablation,
    summarise_ablation,
)
from seg_pipelines.engine.ovss_evaluation import TABLE_5_1_COLUMNS
from seg_pipelines.pipelines.lsmseg import nodes as lsmseg_nodes

logger = logging.getLogger(__name__)

BENCHMARK_COLUMNS: tuple[str, ...] = tuple(column for column, _ in TABLE_5_1_COLUMNS)
AVERAGE = "avg."
SPECIAL_OVERRIDES = ("model", "prompts", "unavailable")
PROMPT_MODES = ("templates", "enriched")


@dataclass(frozen=True)
class TableSpec:
    """Layout of one thesis table: row labels and measured columns exactly as printed, thesis numbers."""

    table: str
    key: str
    title: str
    row_header: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    thesis: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


def _thesis(rows: Mapping[str, Sequence[float]], columns: Sequence[str]) -> dict[str, dict[str, float]]:
    return {row: dict(zip(columns, values, strict=True)) for row, values in rows.items()}


_SIX_AVG = (*BENCHMARK_COLUMNS, AVERAGE)
TABLE_5_11_METHODS = ("ZegFormer [49]", "SimSeg [48]", "CAT-Seg [100]", "LSMSeg (ours)")
TABLE_5_11_DATASETS = ("COCO-Stuff", "PC-59", "A-150")
_THESIS_5_11 = {  # (method, training dataset) -> A-847 … VOCb (thesis Table 5.11)
    ("ZegFormer [49]", "COCO-Stuff"): (5.6, 10.4, 18.0, 45.5, 89.5, 65.5),
    ("SimSeg [48]", "COCO-Stuff"): (7.0, 9.0, 20.5, 47.7, 88.4, 67.9),
    ("CAT-Seg [100]", "COCO-Stuff"): (12.0, 19.0, 31.8, 57.5, 94.6, 77.3),
    ("LSMSeg (ours)", "COCO-Stuff"): (12.8, 19.9, 33.2, 59.4, 95.2, 80.8),
    ("ZegFormer [49]", "PC-59"): (3.8, 8.2, 13.1, 48.7, 86.5, 66.8),
    ("SimSeg [48]", "PC-59"): (3.0, 7.6, 11.9, 54.7, 87.7, 71.7),
    ("CAT-Seg [100]", "PC-59"): (9.6, 16.7, 27.4, 63.7, 93.5, 79.9),
    ("LSMSeg (ours)", "PC-59"): (11.1, 18.3, 29.1, 64.2, 93.4, 80.1),
    ("ZegFormer [49]", "A-150"): (6.8, 7.1, 33.1, 34.7, 77.2, 53.6),
    ("SimSeg [48]", "A-150"): (7.6, 7.1, 40.3, 39.7, 80.9, 61.1),
    ("CAT-Seg [100]", "A-150"): (14.4, 16.2, 47.7, 49.9, 91.1, 73.4),
    ("LSMSeg (ours)", "A-150"): (15.3, 17.4, 49.2, 53.6, 92.8, 74.5),
}


def table_5_11_row(method: str, dataset: str) -> str:
    """Row label of Table 5.11: the thesis prints the method with a "Training dataset" column; rows
    must be unique here, so the label carries the dataset too."""
    return f"{method} ({dataset})"


TABLES: dict[str, TableSpec] = {
    "5.5": TableSpec(
        "5.5", "table_5_5", "Table 5.5: Ablation study on class number k (category filtering)", "K",
        ("16", "32", "48", "64", "96"), _SIX_AVG,
        _thesis({"16": (11.7, 19.0, 30.9, 58.3, 95.0, 79.9, 49.1), "32": (12.8, 19.7, 32.1, 58.0, 94.8, 80.0, 49.6),
                 "48": (12.6, 19.6, 32.0, 58.1, 95.2, 79.9, 49.6), "64": (12.6, 19.9, 32.0, 58.4, 94.8, 79.7, 49.6),
                 "96": (12.6, 19.8, 32.2, 58.4, 94.8, 79.6, 49.6)}, _SIX_AVG),
    ),
    "5.6": TableSpec(
        "5.6", "table_5_6", "Table 5.6: Ablation study on Enriched Prompt and SAM", "Methods",
        ("CATSeg [†]", "LSMSeg(w/o SAM)", "LSMSeg(w/ Dinov2-B)", "LSMSeg(w/ SAM-B)", "LSMSeg(w/ SAM-L)"),
        BENCHMARK_COLUMNS,
        _thesis({"CATSeg [†]": (11.9, 18.5, 31.7, 57.6, 94.6, 77.0), "LSMSeg(w/o SAM)": (12.8, 19.7, 32.1, 58.0, 94.8, 80.0),
                 "LSMSeg(w/ Dinov2-B)": (12.2, 18.8, 31.1, 57.2, 94.9, 78.7),
                 "LSMSeg(w/ SAM-B)": (12.5, 20.3, 32.1, 58.8, 95.2, 80.2),
                 "LSMSeg(w/ SAM-L)": (12.8, 19.9, 33.2, 59.4, 95.2, 80.8)}, BENCHMARK_COLUMNS),
    ),
    "5.7": TableSpec(
        "5.7", "table_5_7", "Table 5.7: Ablation study on different fusion strategies", "Methods",
        ("Baseline", "Concat", "Attn", "Weighted"), _SIX_AVG,
        _thesis({"Baseline": (12.0, 19.0, 31.8, 57.5, 94.6, 77.3, 48.7), "Concat": (12.1, 19.3, 32.0, 57.5, 95.0, 77.0, 48.8),
                 "Attn": (12.0, 19.5, 32.0, 57.6, 95.0, 76.6, 48.8),
                 "Weighted": (12.4, 19.3, 32.2, 57.7, 95.2, 77.0, 49.0)}, _SIX_AVG),
    ),
    "5.10": TableSpec(
        "5.10", "table_5_10", "Table 5.10: Ablation study on fine-tuning the CLIP encoder of LSMSeg", "Methods",
        ("Freeze", "CLIP_qk", "CLIP_kv", "CLIP_qv"), _SIX_AVG,
        _thesis({"Freeze": (8.1, 13.3, 25.9, 46.9, 83.4, 61.6, 39.87), "CLIP_qk": (11.6, 18.2, 30.7, 56.2, 94.7, 78.5, 48.32),
                 "CLIP_kv": (12.7, 19.9, 32.2, 59.0, 95.0, 80.2, 49.83),
                 "CLIP_qv": (12.8, 19.9, 33.2, 59.4, 95.2, 80.8, 50.02)}, _SIX_AVG),
    ),
    "5.11": TableSpec(
        "5.11", "table_5_11", "Table 5.11: Ablation study of training on different datasets", "Methods",
        tuple(table_5_11_row(m, d) for d in TABLE_5_11_DATASETS for m in TABLE_5_11_METHODS), BENCHMARK_COLUMNS,
        {table_5_11_row(m, d): dict(zip(BENCHMARK_COLUMNS, v, strict=True)) for (m, d), v in _THESIS_5_11.items()},
    ),
}


# --------------------------------------------------------------------------- variants


def _table_params(params: Mapping[str, Any], table: str) -> Mapping[str, Any]:
    if table not in TABLES:
        raise KeyError(f"unknown LSMSeg ablation table {table!r}; known: {sorted(TABLES)}")
    key = TABLES[table].key
    tables = params.get("tables") or {}
    if key not in tables:
        raise KeyError(f"params lsmseg_ablations.tables has no {key!r} block (Table {table})")
    return tables[key]


def table_variants(params: Mapping[str, Any], table: str) -> list[AblationVariant]:
    """The variants of ``table`` from ``params["tables"][<key>]``, in the thesis's row order.

    A table block has ``common`` overrides (every row) and ``rows`` (label → overrides); Table 5.11
    instead has ``methods`` (method → overrides) × ``training_vocabularies`` (thesis dataset →
    synthetic vocabulary). Raises ValueError when the configured rows differ from the thesis's.
    """
    spec = TABLES[table]
    block = _table_params(params, table)
    common = dict(block.get("common") or {})
    variants: list[AblationVariant] = []
    if table == "5.11":
        methods, vocabularies = dict(block.get("methods") or {}), dict(block.get("training_vocabularies") or {})
        if list(methods) != list(TABLE_5_11_METHODS) or list(vocabularies) != list(TABLE_5_11_DATASETS):
            raise ValueError(
                f"Table 5.11 needs methods {list(TABLE_5_11_METHODS)} and training_vocabularies for "
                f"{list(TABLE_5_11_DATASETS)}; got {list(methods)} and {list(vocabularies)}"
            )
        for dataset, vocabulary in vocabularies.items():
            for method, overrides in methods.items():
                variants.append(AblationVariant(
                    table, table_5_11_row(method, dataset),
                    {**common, **dict(overrides or {}), "train_vocabulary": vocabulary},
                    {"Training dataset": dataset},
                ))
    else:
        rows = dict(block.get("rows") or {})
        if [str(r) for r in rows] != list(spec.rows):
            raise ValueError(f"Table {table} rows must be {list(spec.rows)} (thesis order); configured {list(rows)}")
        variants = [AblationVariant(table, str(row), {**common, **dict(overrides or {})}) for row, overrides in rows.items()]
    for variant in variants:
        if "unavailable" not in variant.overrides:
            if "model" not in variant.overrides:
                raise ValueError(f"Table {table} row {variant.row!r}: overrides need a 'model' (baseline | lsmseg)")
            if variant.overrides.get("prompts", "templates") not in PROMPT_MODES:
                raise ValueError(f"Table {table} row {variant.row!r}: prompts must be one of {PROMPT_MODES}")
    return variants


def apply_overrides(setup: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``setup`` with every dotted override set (``models.lsmseg.top_k: 16``).

    The parent of each key must exist (a misspelt path is an error, not a silently new setting).
    """
    resolved = copy.deepcopy(dict(setup))
    for path, value in overrides.items():
        if path in SPECIAL_OVERRIDES:
            continue
        parts = str(path).split(".")
        node: Any = resolved
        for depth, part in enumerate(parts[:-1]):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"override {path!r}: no setting {'.'.join(parts[:depth + 1])!r} in lsmseg_ablations.setup")
            node = node[part]
        if not isinstance(node, dict):
            raise KeyError(f"override {path!r}: {'.'.join(parts[:-1])!r} is not a settings block")
        node[parts[-1]] = copy.deepcopy(value)
    return resolved


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class PromptSource:
    """Where the "enriched" prompts come from: the attribute-selection prompt set or templates."""

    path: str | None
    description: str


def enriched_prompt_source(configured: str | None, class_names: Sequence[str], templates: Sequence[str],
                           scratch_dir: str | Path | None = None) -> PromptSource:
    """The attribute-selection prompt set (``configured``) when the file exists, completed with the
    templates for classes it lacks (e.g. VOCb's ``background``; written to ``scratch_dir``, default the
    temporary directory, under a content-hash name); templates when it does not exist. The value
    ``"synthetic-world"`` selects the world's own descriptions (``concepts.world_prompt_set``)."""
    if configured == lsmseg_nodes.WORLD_PROMPTS:
        return PromptSource(configured, "the synthetic world's own descriptions (concepts.world_prompt_set)")
    if not configured or not Path(configured).is_file():
        return PromptSource(None, f"templates {list(templates)} (no prompt set at {configured!r}: run "
                                  "lsmseg_attribute_selection for enriched prompts)")
    prompt_set = ovss_training.load_prompt_set(configured)
    missing = [name for name in dict.fromkeys(class_names) if name not in prompt_set]
    if not missing:
        return PromptSource(str(configured), f"enriched prompt set {configured} ({len(prompt_set)} classes)")
    completed = {**prompt_set, **{name: [t.format(name) for t in templates] for name in missing}}
    text = json.dumps(completed, ensure_ascii=False, indent=1, sort_keys=True)
    path = Path(scratch_dir or tempfile.gettempdir()) / f"lsmseg_ablations_prompts_{hashlib.sha1(text.encode()).hexdigest()[:12]}.json"
    path.write_text(text, encoding="utf-8")
    return PromptSource(str(path), f"enriched prompt set {configured} ({len(prompt_set)} classes; templates for "
                                   f"{missing[:5]}{' …' if len(missing) > 5 else ''})")


# --------------------------------------------------------------------------- running a variant

_RESULT_CACHE: dict[str, dict[str, float]] = {}


def resolve_variant(setup: Mapping[str, Any], variant: AblationVariant, seed: int,
                    enriched_prompt_path: str | None = None) -> tuple[str, dict[str, Any]]:
    """(model key, ``params:lsmseg``-style settings) of ``variant`` at ``seed``: the overrides applied,
    ``training.seed`` = seed, the prompt set of ``enriched`` rows, a per-row checkpoint folder.
    Raises NotImplementedError for an ``unavailable`` row."""
    overrides = dict(variant.overrides)
    if "unavailable" in overrides:
        raise NotImplementedError(str(overrides["unavailable"]))
    resolved = apply_overrides(setup, overrides)
    key = overrides.get("model")
    if key not in resolved["models"]:
        raise KeyError(f"row {variant.row!r}: model {key!r} is not in setup.models {sorted(resolved['models'])}")
    resolved["prompt_set_path"] = enriched_prompt_path if overrides.get("prompts", "templates") == "enriched" else None
    resolved["training"] = {**resolved["training"], "seed": int(seed)}
    if resolved.get("checkpoint_dir"):
        slug = "".join(c if c.isalnum() else "_" for c in variant.row)
        resolved["checkpoint_dir"] = str(Path(resolved["checkpoint_dir"]) / TABLES[variant.table].key / slug / f"seed{seed}")
    return key, resolved


def build_variant_model(setup: Mapping[str, Any], variant: AblationVariant, seed: int) -> torch.nn.Module:
    """The untrained model of ``variant`` exactly as :class:`LSMSegAblationRunner` trains it."""
    key, resolved = resolve_variant(setup, variant, seed)
    return lsmseg_nodes._build(resolved, key, resolved["clip"].get("pretrained"))


class LSMSegAblationRunner:
    """``run_variant(variant, seed) -> {column: mIoU %}`` for :func:`engine.ablations.run_ablation`.

    Builds the variant's model (``lsmseg`` pipeline ``_model_kwargs`` + registry), trains it with the
    configured budget (``lsmseg`` node ``train_ovss``: same loss, optimiser and schedule as Table 5.1)
    and evaluates it on every benchmark (``evaluate_models_on_benchmarks``).
    """

    def __init__(self, index: pd.DataFrame, manifest: Mapping[str, Any], tiny_clip_config: Mapping[str, Any],
                 params: Mapping[str, Any]) -> None:
        if "setup" not in params:
            raise KeyError("params lsmseg_ablations needs a 'setup' block (the params:lsmseg schema)")
        self.index, self.manifest, self.clip_config = index, dict(manifest), dict(tiny_clip_config)
        self.params, self.setup = params, dict(params["setup"])
        self.use_cache = bool(params.get("cache", True))
        reader = create_reader(self.manifest["family"], self.manifest["root"], **self.manifest.get("reader_kwargs", {}))
        names = [name for vocabulary in reader.vocabularies.values() for name in vocabulary.class_names]
        self.prompts = enriched_prompt_source(params.get("enriched_prompt_set_path"), names,
                                              self.setup.get("templates", ["a photo of a {}."]))
        self._index_hash = hashlib.sha1(pd.util.hash_pandas_object(index.astype(str), index=True).values.tobytes()).hexdigest()
        self.cache_hits = 0
        self._plans: dict[str, dict[str, Any]] = {}

    def resolve(self, variant: AblationVariant, seed: int) -> tuple[str, dict[str, Any]]:
        """(model key, lsmseg settings) of ``variant`` at ``seed``."""
        return resolve_variant(self.setup, variant, seed, self.prompts.path)

    def build_model(self, variant: AblationVariant, seed: int) -> torch.nn.Module:
        """The untrained model of ``variant`` (for inspection and tests)."""
        return build_variant_model(self.setup, variant, seed)

    def _plan(self, setup: Mapping[str, Any]) -> dict[str, Any]:
        """The lsmseg run plan (vocabularies, prompts; inputs validated by ``validate_lsmseg_inputs``),
        computed once per distinct set of the settings it reads (seeds and budgets share it)."""
        read = {k: v for k, v in setup.items() if k not in ("training", "augmentation", "evaluation", "head", "num_threads", "checkpoint_dir")}
        key = json.dumps(read, sort_keys=True, default=str)
        if key not in self._plans:
            self._plans[key] = lsmseg_nodes.validate_lsmseg_inputs(self.manifest, self.clip_config, dict(setup))
        return copy.deepcopy(self._plans[key])

    def _cache_key(self, key: str, setup: Mapping[str, Any]) -> str:
        record = {"model": key, "setup": {k: v for k, v in setup.items() if k != "checkpoint_dir"},
                  "manifest": self.manifest, "index": self._index_hash}
        return hashlib.sha1(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()

    def __call__(self, variant: AblationVariant, seed: int) -> dict[str, float]:
        key, setup = self.resolve(variant, seed)
        cache_key = self._cache_key(key, setup)
        if self.use_cache and cache_key in _RESULT_CACHE:
            self.cache_hits += 1
            logger.info("Table %s %r seed %d: same settings as an earlier row, reusing its numbers", variant.table, variant.row, seed)
            return dict(_RESULT_CACHE[cache_key])
        plan = self._plan(setup)
        start = time.perf_counter()
        model, curve = lsmseg_nodes.train_ovss(self.index, self.manifest, plan, setup, key)
        train_seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            miou, _, _ = lsmseg_nodes.evaluate_models_on_benchmarks({key: model}, self.index, self.manifest, plan, setup)
        measured = {column: 100.0 * miou[key][benchmark] for column, benchmark in TABLE_5_1_COLUMNS if benchmark in miou[key]}
        missing = [c for c in BENCHMARK_COLUMNS if c not in measured]
        if missing:
            raise ValueError(f"benchmarks for columns {missing} are not in setup.benchmarks {setup['benchmarks']}")
        measured[AVERAGE] = float(np.mean([measured[c] for c in BENCHMARK_COLUMNS]))
        measured["train_loss"] = float(curve[-1]["loss"]) if curve else math.nan
        measured["train_seconds"] = train_seconds
        measured["eval_seconds"] = time.perf_counter() - start - train_seconds
        _RESULT_CACHE[cache_key] = dict(measured)
        return measured


# --------------------------------------------------------------------------- one table


def _budget_note(params: Mapping[str, Any], seeds: Sequence[int]) -> str:
    setup = params["setup"]
    training, evaluation = setup["training"], setup.get("evaluation", {})
    return (f"Budget: {training['iterations']} iterations × batch {training['batch_size']} "
            f"(crop {setup.get('augmentation', {}).get('crop_size')}), CLIP {setup['clip']['model']} at "
            f"{setup['clip']['image_size']} px, {evaluation.get('limit') or 'all'} validation images per benchmark "
            f"({evaluation.get('mode', 'whole')} inference), seeds {list(seeds)}; mean ± std (sample std) over seeds, mIoU in %.")


def run_table(
    index: pd.DataFrame,
    manifest: Mapping[str, Any],
    tiny_clip_config: Mapping[str, Any],
    params: Mapping[str, Any],
    table: str,
) -> tuple[pd.DataFrame, str, pd.DataFrame, dict[str, float]]:
    """Run every row of thesis Table ``table`` × seed → (summary table with the thesis's rows and columns,
    markdown, one line per run, flat metrics for MLflow)."""
    spec = TABLES[table]
    torch.set_num_threads(int(params["setup"].get("num_threads", 1)))
    seeds = [int(s) for s in (_table_params(params, table).get("seeds") or params.get("seeds") or [0, 1, 2])]
    variants = table_variants(params, table)
    runner = LSMSegAblationRunner(index, manifest, tiny_clip_config, params)
    setup = params["setup"]
    tags = {"method": "lsmseg", "head": "catseg/lsmseg", "backbone": setup["clip"]["model"],
            "dataset": str(manifest.get("family")), "vocabulary": str(setup.get("train_vocabulary")),
            "table": spec.table}
    start = time.perf_counter()
    results: list[VariantResult] = run_ablation(variants, seeds, runner, name=f"lsmseg_ablations/{spec.key}",
                                                tags=tags, progress=bool(params.get("progress", True)))
    seconds = time.perf_counter() - start
    summary = summarise_ablation(results, list(spec.rows), list(spec.columns), decimals=int(params.get("decimals", 2)),
                                 thesis=spec.thesis if params.get("show_thesis", True) else None)
    summary.index.name = spec.row_header
    notes = [_budget_note(params, seeds),
             f"Data: {manifest.get('family')} world at {manifest.get('root')}; benchmark columns are the synthetic "
             "vocabularies " + ", ".join(f"{c} = {b}" for c, b in TABLE_5_1_COLUMNS) + "; 'thesis' columns are the "
             "thesis's numbers (real datasets, ViT-B/16 CLIP) and are not directly comparable.",
             f"Prompts of 'enriched' rows: {runner.prompts.description}.",
             *[str(n) for n in (_table_params(params, table).get("notes") or [])],
             f"{len(results)} runs ({sum(r.status != 'ok' for r in results)} failed, {runner.cache_hits} reused from rows "
             f"with identical settings) in {seconds:.0f} s on CPU ({torch.get_num_threads()} thread(s))."]
    markdown = ablation_markdown(summary, spec.title, notes)
    metrics = {**ablation_metrics(results), f"{spec.key}/seconds": seconds}
    return summary.reset_index(), markdown, ablation_long_table(results), metrics

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
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.datasets.index import data_digest
from seg_pipelines.engine.ablations import (
    AblationVariant,
    ChapterReport,
    ResultCache,
    ablation_long_table,
    ablation_markdown,
    ablation_metrics,
    annotate_verdicts,
    check_explanations,
    check_slots,
    counts_line,
    explanation_counts,
    judge_findings,
    result_record,
    results_from_records,
    run_one,
    summarise_ablation,
    table_findings,
    verdict_counts,
    verdict_metrics,
    verdicts_markdown,
)
from seg_pipelines.engine.ovss_evaluation import TABLE_5_1_COLUMNS
from seg_pipelines.engine.runtime import set_torch_threads
from seg_pipelines.experiments import lsmseg as lsmseg_nodes
from seg_pipelines.models.ovss.lsmseg import LSMSEG_REVISION
from seg_pipelines.thesis_tables import (
    AVERAGE,
    TABLE_5_11_DATASETS,
    TABLE_5_11_METHODS,
    ablation_tables,
    table_5_11_row,
)

logger = logging.getLogger(__name__)

BENCHMARK_COLUMNS: tuple[str, ...] = tuple(column for column, _ in TABLE_5_1_COLUMNS)
SPECIAL_OVERRIDES = ("model", "prompts", "unavailable")
PROMPT_MODES = ("templates", "enriched")


@dataclass(frozen=True)
class TableSpec:
    """Layout of one thesis table (:mod:`seg_pipelines.thesis_tables`): caption, row header, row labels
    and measured columns exactly as printed, thesis numbers."""

    table: str
    key: str
    title: str
    row_header: str
    rows: tuple[str, ...]
    columns: tuple[str, ...]
    thesis: Mapping[str, Mapping[str, float]] = field(default_factory=dict)


TABLES: dict[str, TableSpec] = {
    t.id: TableSpec(t.id, t.key, t.caption, t.row_header, t.rows, t.columns, t.thesis)
    for t in ablation_tables("lsmseg_ablations")
}


def table_comparisons(table: str) -> list[tuple[str, str]]:
    """The (row, baseline row) pairs Table ``table`` is judged on: every row against the first
    (Table 5.5 against k = 16), Table 5.11 LSMSeg against CAT-Seg on each training dataset."""
    rows = TABLES[table].rows
    if table == "5.11":
        return [(table_5_11_row("LSMSeg (ours)", d), table_5_11_row("CAT-Seg [100]", d)) for d in TABLE_5_11_DATASETS]
    return [(row, rows[0]) for row in rows[1:]]


def table_findings_of(table: str):
    """The thesis findings of ``table`` on the mean over the six benchmarks (``avg.``), in the
    direction of the thesis's numbers (their ``avg.``, or the mean of the six columns it prints)."""
    spec = TABLES[table]
    return table_findings(spec.rows, table_comparisons(table), AVERAGE, spec.thesis)


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
                variants.append(
                    AblationVariant(
                        table,
                        table_5_11_row(method, dataset),
                        {**common, **dict(overrides or {}), "train_vocabulary": vocabulary},
                        {"Training dataset": dataset},
                    )
                )
    else:
        rows = dict(block.get("rows") or {})
        if [str(r) for r in rows] != list(spec.rows):
            raise ValueError(f"Table {table} rows must be {list(spec.rows)} (thesis order); configured {list(rows)}")
        variants = [
            AblationVariant(table, str(row), {**common, **dict(overrides or {})}) for row, overrides in rows.items()
        ]
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
                raise KeyError(
                    f"override {path!r}: no setting {'.'.join(parts[: depth + 1])!r} in lsmseg_ablations.setup"
                )
            node = node[part]
        if not isinstance(node, dict):
            raise KeyError(f"override {path!r}: {'.'.join(parts[:-1])!r} is not a settings block")
        node[parts[-1]] = copy.deepcopy(value)
    return resolved


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class PromptSource:
    """Where the "enriched" prompts come from: ``source`` (``lsmseg.prompts``: world | prompt_set |
    templates), the prompt set itself for ``prompt_set``, and how the table note names it."""

    source: str
    prompt_set: dict[str, list[str]] | None
    description: str

    @property
    def fingerprint(self) -> str:
        text = json.dumps([self.source, self.prompt_set], sort_keys=True, ensure_ascii=False)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


def enriched_prompt_source(
    choice: str | None, prompt_set: Mapping[str, Any] | None, class_names: Sequence[str], templates: Sequence[str]
) -> PromptSource:
    """The prompts of "enriched" rows: ``choice`` ``world`` = the synthetic world's own descriptions
    (``concepts.world_prompt_set``); ``prompt_set`` = the catalog's prompt set (attribute selection),
    read by :func:`~seg_pipelines.experiments.lsmseg.resolve_prompt_set` (an error when it does not
    exist yet or lacks a class, as for ``lsmseg``). ``templates`` are the plain rows' prompts."""
    if choice not in ("world", "prompt_set"):
        raise ValueError(f"enriched_prompts must be 'world' or 'prompt_set', got {choice!r}")
    if choice == "world":
        return PromptSource("world", None, "the synthetic world's own descriptions (concepts.world_prompt_set)")
    prompts = lsmseg_nodes.resolve_prompt_set("prompt_set", prompt_set, class_names)
    return PromptSource("prompt_set", prompts, f"enriched prompt set ({len(prompts)} classes)")


# --------------------------------------------------------------------------- running a variant


def resolve_variant(
    setup: Mapping[str, Any], variant: AblationVariant, seed: int, enriched_prompts: str = "templates"
) -> tuple[str, dict[str, Any]]:
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
    resolved["prompts"] = enriched_prompts if overrides.get("prompts", "templates") == "enriched" else "templates"
    resolved["training"] = {**resolved["training"], "seed": int(seed)}
    if resolved.get("checkpoint_dir"):
        slug = "".join(c if c.isalnum() else "_" for c in variant.row)
        resolved["checkpoint_dir"] = str(
            Path(resolved["checkpoint_dir"]) / TABLES[variant.table].key / slug / f"seed{seed}"
        )
    return key, resolved


def build_variant_model(
    setup: Mapping[str, Any],
    variant: AblationVariant,
    seed: int,
    clip_weights: str | None = None,
    sam_weights: Mapping[str, str] | None = None,
) -> torch.nn.Module:
    """The untrained model of ``variant`` exactly as :class:`LSMSegAblationRunner` trains it
    (``clip_weights``: the tiny CLIP's path, used unless ``setup.clip.pretrained`` is set; ``sam_weights``:
    the tiny SAMs' paths by variant, loaded where the variant uses that tiny SAM)."""
    key, resolved = resolve_variant(setup, variant, seed)
    return lsmseg_nodes.build_ovss_model(resolved, key, resolved["clip"].get("pretrained") or clip_weights, sam_weights)


class LSMSegAblationRunner:
    """``run_variant(variant, seed) -> {column: mIoU %}`` for :func:`engine.ablations.run_ablation`.

    Builds the variant's model (``lsmseg`` pipeline ``_model_kwargs`` + registry), trains it with the
    configured budget (``lsmseg`` node ``train_ovss``: same loss, optimiser and schedule as Table 5.1)
    and evaluates it on every benchmark (``evaluate_models_on_benchmarks``).
    """

    def __init__(
        self,
        index: pd.DataFrame,
        manifest: Mapping[str, Any],
        tiny_clip_config: Mapping[str, Any],
        tiny_clip_checkpoint: str,
        prompt_set: Mapping[str, Any] | None,
        params: Mapping[str, Any],
        tiny_sam_config: Mapping[str, Any] | None = None,
        tiny_sam_checkpoint: str | None = None,
        tiny_sam_l_config: Mapping[str, Any] | None = None,
        tiny_sam_l_checkpoint: str | None = None,
    ) -> None:
        if "setup" not in params:
            raise KeyError("params lsmseg_ablations needs a 'setup' block (the params:lsmseg schema)")
        self.index, self.manifest, self.clip_config = index, dict(manifest), dict(tiny_clip_config)
        self.clip_weights = str(tiny_clip_checkpoint)
        # the tiny SAMs by variant (lsmseg's one mechanism: its plan checks them, its builder loads them)
        self.tiny_sams = lsmseg_nodes.tiny_sam_inputs(
            tiny_sam_config, tiny_sam_checkpoint, tiny_sam_l_config, tiny_sam_l_checkpoint
        )
        self.sam_weights = {v: str(path) for v, (_, path) in self.tiny_sams.items() if path is not None}
        self.params, self.setup = params, dict(params["setup"])
        # finished runs by settings hash, shared by rows, tables, reruns and worker processes
        self.cache = ResultCache(params.get("cache_dir"), enabled=bool(params.get("cache", True)))
        reader = create_reader(self.manifest["family"], self.manifest["root"], **self.manifest.get("reader_kwargs", {}))
        names = [name for vocabulary in reader.vocabularies.values() for name in vocabulary.class_names]
        self.prompts = enriched_prompt_source(
            params.get("enriched_prompts", "world"),
            prompt_set,
            names,
            self.setup.get("templates", ["a photo of a {}."]),
        )
        self._clip_sha256 = lsmseg_nodes.checkpoint_sha256(self.clip_weights)
        self._sam_sha256 = {v: lsmseg_nodes.checkpoint_sha256(path) for v, path in self.sam_weights.items()}
        self._index_hash = data_digest(index)  # the data's content (a re-rendered world runs afresh)
        self.cache_hits = 0
        self._plans: dict[str, dict[str, Any]] = {}

    def resolve(self, variant: AblationVariant, seed: int) -> tuple[str, dict[str, Any]]:
        """(model key, lsmseg settings) of ``variant`` at ``seed``."""
        return resolve_variant(self.setup, variant, seed, self.prompts.source)

    def build_model(self, variant: AblationVariant, seed: int) -> torch.nn.Module:
        """The untrained model of ``variant`` (for inspection and tests)."""
        return build_variant_model(self.setup, variant, seed, self.clip_weights, self.sam_weights)

    def _plan(self, setup: Mapping[str, Any]) -> dict[str, Any]:
        """The lsmseg run plan (vocabularies, prompts; inputs validated by ``validate_lsmseg_inputs``),
        computed once per distinct set of the settings it reads (seeds and budgets share it)."""
        read = {
            k: v
            for k, v in setup.items()
            if k not in ("training", "augmentation", "evaluation", "head", "num_threads", "checkpoint_dir")
        }
        key = json.dumps(read, sort_keys=True, default=str)
        if key not in self._plans:
            self._plans[key] = lsmseg_nodes.validate_lsmseg_inputs(
                self.manifest,
                self.clip_config,
                self.clip_weights,
                self.prompts.prompt_set,
                dict(setup),
                self.tiny_sams,
            )
        return copy.deepcopy(self._plans[key])

    def _cache_key(self, key: str, setup: Mapping[str, Any]) -> str:
        record = {
            "model": key,
            "model_revision": LSMSEG_REVISION,  # a model change invalidates the results
            "setup": {k: v for k, v in setup.items() if k != "checkpoint_dir"},
            "manifest": self.manifest,
            "index": self._index_hash,
            "clip": self.clip_weights,
            "clip_sha256": self._clip_sha256,  # a CLIP retrained at the same path invalidates the results
            # so does a retrained tiny SAM (the one this row loads)
            "sam_sha256": self._sam_sha256.get(lsmseg_nodes.tiny_sam_variant(setup["models"][key]) or ""),
            "prompt_set": self.prompts.fingerprint,
        }
        return hashlib.sha1(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()

    def __call__(self, variant: AblationVariant, seed: int) -> dict[str, float]:
        key, setup = self.resolve(variant, seed)
        cache_key = self._cache_key(key, setup)
        cached = self.cache.get(cache_key)
        if cached is not None:
            self.cache_hits += 1
            logger.info(
                "Table %s %r seed %d: settings already run, reusing their numbers", variant.table, variant.row, seed
            )
            return {k: float(v) for k, v in cached.items()}
        plan = self._plan(setup)
        start = time.perf_counter()
        model, curve = lsmseg_nodes.train_ovss(self.index, self.manifest, plan, setup, key)
        train_seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            miou, _, _ = lsmseg_nodes.evaluate_models_on_benchmarks(
                {key: model}, self.index, self.manifest, plan, setup
            )
        measured = {
            column: 100.0 * miou[key][benchmark] for column, benchmark in TABLE_5_1_COLUMNS if benchmark in miou[key]
        }
        missing = [c for c in BENCHMARK_COLUMNS if c not in measured]
        if missing:
            raise ValueError(f"benchmarks for columns {missing} are not in setup.benchmarks {setup['benchmarks']}")
        measured[AVERAGE] = float(np.mean([measured[c] for c in BENCHMARK_COLUMNS]))
        measured["train_loss"] = float(curve[-1]["loss"]) if curve else math.nan
        measured["train_seconds"] = train_seconds
        measured["eval_seconds"] = time.perf_counter() - start - train_seconds
        self.cache.put(cache_key, measured)
        return measured


# --------------------------------------------------------------------------- one table


def _budget_note(params: Mapping[str, Any], seeds: Sequence[int]) -> str:
    setup = params["setup"]
    training, evaluation = setup["training"], setup.get("evaluation", {})
    return (
        f"Budget: {training['iterations']} iterations × batch {training['batch_size']} "
        f"(crop {setup.get('augmentation', {}).get('crop_size')}), CLIP {setup['clip']['model']} at "
        f"{setup['clip']['image_size']} px, {evaluation.get('limit') or 'all'} validation images per benchmark "
        f"({evaluation.get('mode', 'whole')} inference), seeds {list(seeds)}; "
        "mean ± std (sample std) over seeds, mIoU in %."
    )


def table_seeds(params: Mapping[str, Any], table: str) -> list[int]:
    """The seeds of ``table``: its block's ``seeds``, else ``params.seeds`` (a list or a count)."""
    seeds = _table_params(params, table).get("seeds") or params.get("seeds") or [0, 1, 2]
    return list(range(int(seeds))) if isinstance(seeds, int) else [int(s) for s in seeds]


def _tags(params: Mapping[str, Any], manifest: Mapping[str, Any], table: str) -> dict[str, str]:
    setup = params["setup"]
    return {
        "method": "lsmseg",
        "head": "catseg/lsmseg",
        "backbone": setup["clip"]["model"],
        "dataset": str(manifest.get("family")),
        "vocabulary": str(setup.get("train_vocabulary")),
        "table": TABLES[table].table,
    }


class LSMSegVariantNode:
    """Node function ``(index, manifest, tiny CLIP config and weights, prompt set, params, tiny SAM config
    and weights) -> record``
    of row ``row`` and seed slot ``seed_slot`` of thesis Table ``table`` (picklable for ParallelRunner);
    a seed slot the parameters leave empty returns a ``skipped`` record."""

    def __init__(self, table: str, row: int, seed_slot: int) -> None:
        self.table, self.row, self.seed_slot = table, int(row), int(seed_slot)
        self.__name__ = f"run_lsmseg_ablation_{TABLES[table].key}_row{row}_seed{seed_slot}"
        self.__doc__ = f"{TABLES[table].title}: row {row}, seed slot {seed_slot}, trained and evaluated."

    def __call__(
        self,
        index: pd.DataFrame,
        manifest: dict[str, Any],
        tiny_clip_config: dict[str, Any],
        tiny_clip_checkpoint: str,
        prompt_set: dict[str, Any] | None,
        params: dict[str, Any],
        tiny_sam_config: dict[str, Any] | None = None,
        tiny_sam_checkpoint: str | None = None,
        tiny_sam_l_config: dict[str, Any] | None = None,
        tiny_sam_l_checkpoint: str | None = None,
    ) -> dict[str, Any]:
        seeds = table_seeds(params, self.table)
        variants = table_variants(params, self.table)
        if self.row >= len(variants) or self.seed_slot >= len(seeds):
            return result_record(None, self.table, f"row{self.row}/seed{self.seed_slot}")
        set_torch_threads(params["setup"].get("num_threads"), default=1)
        runner = LSMSegAblationRunner(
            index,
            manifest,
            tiny_clip_config,
            tiny_clip_checkpoint,
            prompt_set,
            params,
            tiny_sam_config,
            tiny_sam_checkpoint,
            tiny_sam_l_config,
            tiny_sam_l_checkpoint,
        )
        name = f"lsmseg_ablations/{TABLES[self.table].key}"
        result = run_one(
            variants[self.row], seeds[self.seed_slot], runner, name=name, tags=_tags(params, manifest, self.table)
        )
        return result_record(result)


class LSMSegSummaryNode:
    """Node function ``(manifest, prompt set, params, *records) -> (summary table, markdown, runs,
    metrics)`` of thesis Table ``table``: mean ± std over seeds, each finding's paired effect and verdict."""

    def __init__(self, table: str, seed_slots: int) -> None:
        self.table, self.seed_slots = table, int(seed_slots)
        self.__name__ = f"summarise_lsmseg_ablation_{TABLES[table].key}"
        self.__doc__ = f"{TABLES[table].title}: summary over seeds and the paired verdicts."

    def __call__(
        self, manifest: dict[str, Any], prompt_set: dict[str, Any] | None, params: dict[str, Any], *records: dict
    ) -> tuple[pd.DataFrame, str, pd.DataFrame, dict[str, float]]:
        table, spec = self.table, TABLES[self.table]
        seeds = table_seeds(params, table)
        check_slots(f"lsmseg_ablations Table {table}", len(spec.rows), len(spec.rows), len(seeds), self.seed_slots)
        results = results_from_records(records)
        decimals = int(params.get("decimals", 2))
        summary = summarise_ablation(
            results,
            list(spec.rows),
            list(spec.columns),
            decimals=decimals,
            thesis=spec.thesis if params.get("show_thesis", True) else None,
        )
        rule = params.get("verdict_rule", "t95")
        findings = table_findings_of(table)
        verdicts = judge_findings(results, findings, rule, decimals)
        explanations = check_explanations(
            _table_params(params, table).get("explanations"),
            [finding.label for finding in findings],
            f"lsmseg_ablations.tables.{spec.key}",
        )
        summary = annotate_verdicts(summary, verdicts)
        thesis_cells = [c for c in summary.columns if str(c).startswith("thesis ")]
        summary = summary[[c for c in summary.columns if c not in thesis_cells] + thesis_cells]  # as chapters 3-4
        summary.index.name = spec.row_header
        seconds = float(sum(r.seconds for r in results))
        prompts = enriched_prompt_source(
            params.get("enriched_prompts", "world"),
            prompt_set,
            [],
            params["setup"].get("templates", ["a photo of a {}."]),
        )
        notes = [
            _budget_note(params, seeds),
            f"Data: {manifest.get('family')} world at {manifest.get('root')}; benchmark columns are the synthetic "
            "vocabularies " + ", ".join(f"{c} = {b}" for c, b in TABLE_5_1_COLUMNS) + "; 'thesis' columns are the "
            "thesis's numbers (real datasets, ViT-B/16 CLIP) and are not directly comparable.",
            f"Prompts of 'enriched' rows: {prompts.description}.",
            *[str(n) for n in (_table_params(params, table).get("notes") or [])],
            f"{len(results)} runs ({sum(r.status != 'ok' for r in results)} failed) in {seconds:.0f} s of node time "
            "(runs with settings already run are reused by settings hash and take ~0 s).",
            counts_line(verdict_counts(verdicts), rule),
            "Findings not reproduced, by explanation: "
            + ", ".join(f"{count} {kind}" for kind, count in explanation_counts(verdicts, explanations).items())
            + " (`explanations` in the table's parameters: the embedded world's lack, measured, or the bug fixed).",
        ]
        markdown = (
            ablation_markdown(summary, spec.title, notes)
            + "\n"
            + verdicts_markdown(verdicts, decimals, explanations)
            + "\n"
        )
        metrics = {**ablation_metrics(results), **verdict_metrics(spec.key, verdicts), f"{spec.key}/seconds": seconds}
        return summary.reset_index(), markdown, ablation_long_table(results), metrics


def chapter_report(params: Mapping[str, Any], *items: Any) -> str:
    """The chapter's report: every table (``items``: their markdown, then their metrics, same order) in
    one markdown file, opening with the verdict counts summed over the tables."""
    return ChapterReport("Chapter 5 ablations (LSMSeg)")(params, *items)

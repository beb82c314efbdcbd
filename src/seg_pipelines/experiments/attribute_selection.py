"""Attribute selection (``lsmseg_attribute_selection``): the four steps of thesis Figure 5.3.

(1) candidate attributes from the LLM, (2) enriched descriptions per (class, attribute),
(3) attribute scoring with the aggregation-free CAT-Seg (Table 5.3), (4) greedy combination of
the top-k attributes (Table 5.4) → the prompt set the ``lsmseg`` pipeline consumes; with more
than one LLM configured, Table 5.9 compares their best combinations. The maths lives in
``seg_pipelines.prompts`` and ``seg_pipelines.experiments.attribute_scoring``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch

from seg_pipelines.datasets.factory import create_reader
from seg_pipelines.engine import tracking
from seg_pipelines.engine.runtime import set_torch_threads
from seg_pipelines.experiments import attribute_scoring as scoring
from seg_pipelines.prompts import (
    AVERAGE_COLUMN,
    ResponseCache,
    RetryPolicy,
    create_llm,
    generate_candidate_attributes,
    generate_descriptions,
    generation_settings,
    greedy_combination,
    rank_attributes,
)
from seg_pipelines.prompts.prompt_set import PROMPT_COMPOSITIONS, ComposedPrompt, compose_prompt_set
from seg_pipelines.prompts.selection import BASELINE_ROW, COMBINATION_SEPARATOR, GAIN_COLUMN
from seg_pipelines.statistics import paired_comparison
from seg_pipelines.thesis_tables import AVERAGE, BENCHMARKS, TABLE_5_3

logger = logging.getLogger(__name__)

LLM_COLUMN = "llm"
COMBINATION_COLUMN = "combination"
STD_SUFFIX = " std"
VS_TEMPLATE_COLUMN = "vs. template"
VERDICT_COLUMN = "verdict"
STEP_COLUMN = "vs. previous step"
HELD_OUT_VS_TEMPLATE_COLUMN = "held-out vs. template"
HELD_OUT_VERDICT_COLUMN = "held-out verdict"
#: numeric twins of ``vs. template`` (mean paired difference and its interval), in the CSV, not the markdown
INTERVAL_COLUMNS = {"Δ template": "mean_difference", "Δ low": "low", "Δ high": "high"}
SHORTENED_COLUMN = "prompts shortened"  # classes whose prompt lost a description to the text context
VERDICT_LABELS = {"higher": "beats template", "lower": "below template", "unresolved": "within noise"}


# --------------------------------------------------------------------------- LLM helpers


class CountingLLM:
    """Wraps a backend to count real model calls and their time (cache hits never get here)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.name = backend.name
        self.model = backend.model
        self.concurrency = getattr(backend, "concurrency", 1)
        self.replay_only = getattr(backend, "replay_only", False)
        self.generation_settings = generation_settings(backend)  # part of the cache keys
        self.calls = 0
        self.seconds = 0.0

    def complete(self, messages, **gen):
        start = time.perf_counter()
        try:
            return self.backend.complete(messages, **gen)
        finally:
            self.calls += 1
            self.seconds += time.perf_counter() - start


def _llm_configs(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The primary ``llm`` first, then the other ``llms`` (Table 5.9 rows)."""
    configs = [dict(params["llm"])] + [dict(c) for c in params.get("llms") or []]
    labels = [c.get("label") for c in configs if c.get("label")]
    if len(set(labels)) != len(labels):
        raise ValueError(f"LLM labels must be unique, got {labels}")
    return configs


def _project_credentials() -> dict[str, Any]:
    """``conf/local/credentials.yml`` of the project run from the current directory (if any)."""
    path = Path.cwd() / "conf"
    if not (path / "local").is_dir():
        return {}
    try:
        from kedro.config import OmegaConfigLoader

        return dict(OmegaConfigLoader(conf_source=str(path), base_env="base", default_run_env="local")["credentials"])
    except Exception:  # no credentials file: the key may come from the environment
        return {}


def _make_llm(config: Mapping[str, Any]) -> tuple[str, CountingLLM]:
    options = dict(config)
    label = options.pop("label", None)
    options.pop("examples", None)  # a generation option (see generate_enriched_descriptions), not the backend's
    credentials = _project_credentials() if options.get("backend") == "openai" else None
    backend = CountingLLM(create_llm(options, credentials))
    return str(label or f"{backend.name}/{backend.model}"), backend


def _retry(params: Mapping[str, Any]) -> RetryPolicy:
    return RetryPolicy(**dict(params.get("retry") or {}))


# --------------------------------------------------------------------------- step 1


def generate_candidate_attribute_list(params: dict[str, Any]) -> dict[str, Any]:
    """Figure 5.3 (1): ask the primary LLM which visual attributes matter; parsed, de-duplicated
    and logged next to the configured default (the thesis's nine), which stays final unless
    ``use_llm_attributes``."""
    label, llm = _make_llm(params["llm"])
    cache = ResponseCache(params["cache_path"])
    result = generate_candidate_attributes(
        llm,
        cache,
        params["attributes"],
        use_llm_answer=bool(params.get("use_llm_attributes", False)),
        retry=_retry(params),
    )
    return {
        "llm": label,
        "backend": llm.name,
        "model": llm.model,
        **result,
        "model_calls": llm.calls,
        "cache": cache.stats(),
    }


# --------------------------------------------------------------------------- step 2


def _benchmark_specs(manifest: Mapping[str, Any], params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each benchmark as {name, family, root, reader_kwargs}: a bare name is a vocabulary of the
    configured dataset (``create_reader(family, root, vocabulary=name)``)."""
    specs = []
    for entry in params["benchmarks"]:
        spec = {"name": entry} if isinstance(entry, str) else dict(entry)
        spec.setdefault("family", manifest["family"])
        spec.setdefault("root", manifest["root"])
        if "reader_kwargs" not in spec:
            spec["reader_kwargs"] = {**dict(manifest.get("reader_kwargs") or {}), "vocabulary": spec["name"]}
        specs.append(spec)
    names = [s["name"] for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"benchmark names must be unique, got {names}")
    return specs


def _reader(spec: Mapping[str, Any]):
    return create_reader(spec["family"], spec["root"], **dict(spec.get("reader_kwargs") or {}))


def class_vocabulary(manifest: Mapping[str, Any], params: Mapping[str, Any]) -> list[str]:
    """Classes that need prompts: the dataset's (training) classes, then every benchmark's, in
    first-seen order."""
    names = list(manifest["class_names"])
    for spec in _benchmark_specs(manifest, params):
        names.extend(_reader(spec).class_names)
    return list(OrderedDict.fromkeys(names))


def generate_enriched_descriptions(
    candidate_attributes: dict[str, Any], manifest: dict[str, Any], params: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, float]]:
    """Figure 5.3 (2): ``"Describe what a {class} generally looks like in terms of {attribute}"``
    for every class and final attribute, for every configured LLM; cleaned, cached, retried.

    Returns the descriptions ``{"attributes", "class_names", "llms": {label: {backend, model,
    descriptions: {class: {attribute: text}}}}}`` and generation metrics (cache hit rate, model
    calls, seconds per generation).
    """
    attributes = list(candidate_attributes["final"])
    class_names = class_vocabulary(manifest, params)
    cache = ResponseCache(params["cache_path"])
    result: dict[str, Any] = {"attributes": attributes, "class_names": class_names, "llms": {}}
    metrics: dict[str, float] = {}
    sampling = dict(params.get("llm_samples") or {})
    for config in _llm_configs(params):
        label, llm = _make_llm(config)
        hits, misses = cache.hits, cache.misses
        start = time.perf_counter()
        sets = [
            generate_descriptions(
                llm,
                cache,
                class_names,
                attributes,
                retry=_retry(params),
                max_sentences=int(params.get("max_sentences", 2)),
                max_chars=int(params.get("max_chars", 300)),
                examples=str(config.get("examples", params.get("description_examples", "per_attribute"))),
                gen=gen,
            )
            for gen in sample_settings(sampling)
        ]
        seconds = time.perf_counter() - start
        asked = (cache.hits - hits) + (cache.misses - misses)
        hit_rate = (cache.hits - hits) / max(asked, 1)
        per_generation = llm.seconds / llm.calls if llm.calls else float("nan")
        logger.info(
            "LLM %s: %d questions, cache hit rate %.1f%%, %d model calls (%.2f s each), %.1f s",
            label,
            asked,
            100 * hit_rate,
            llm.calls,
            per_generation,
            seconds,
        )
        result["llms"].update(sampled_entries(label, llm.name, llm.model, sets, sampling))
        key = _metric_key(label)
        metrics.update(
            {
                f"llm.{key}.questions": float(asked),
                f"llm.{key}.cache_hit_rate": float(hit_rate),
                f"llm.{key}.model_calls": float(llm.calls),
                f"llm.{key}.seconds": float(seconds),
            }
        )
        if llm.calls:
            metrics[f"llm.{key}.seconds_per_generation"] = float(per_generation)
    return result, metrics


def sample_settings(sampling: Mapping[str, Any]) -> list[dict[str, Any] | None]:
    """Per-call generation settings of the ``llm_samples`` answers: ``[None]`` (the LLM as configured)
    for one sample, else sample i at ``temperature`` and ``seed + i`` (each its own cache entries)."""
    n = int(sampling.get("n", 1))
    if n == 1:
        return [None]
    temperature, seed = float(sampling.get("temperature", 0.7)), int(sampling.get("seed", 0))
    if temperature <= 0:
        raise ValueError("llm_samples.n > 1 needs temperature > 0: greedy samples are copies of one answer")
    return [{"temperature": temperature, "seed": seed + i} for i in range(n)]


def sampled_entries(
    label: str, backend: str, model: str, sets: Sequence[dict[str, dict[str, str]]], sampling: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """The ``descriptions["llms"]`` entries of one LLM's ``sets`` of answers: one entry (with every
    set under ``samples`` when they form an ensemble), or with ``use: replicates`` one entry per
    sample, ``label#s<seed>``, each scored like an LLM of its own and grouped by ``sample_of``."""
    if len(sets) == 1:
        return {label: {"backend": backend, "model": model, "descriptions": sets[0]}}
    seed = int(sampling.get("seed", 0))
    if sampling.get("use", "ensemble") == "replicates":
        return {
            f"{label}#s{seed + i}": {
                "backend": backend,
                "model": model,
                "descriptions": answers,
                "sample_of": label,
                "seed": seed + i,
            }
            for i, answers in enumerate(sets)
        }
    return {label: {"backend": backend, "model": model, "descriptions": sets[0], "samples": list(sets)}}


def description_sets(entry: Mapping[str, Any]) -> list[Mapping[str, Mapping[str, str]]]:
    """An LLM entry's description sets: its sampled answers when they form an ensemble, else its one set."""
    return list(entry.get("samples") or [entry["descriptions"]])


def _metric_key(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


# --------------------------------------------------------------------------- step 3: scoring


def build_attribute_scorer(
    manifest: dict[str, Any],
    tiny_clip_checkpoint: Mapping[str, torch.Tensor] | str,
    tiny_clip_config: dict[str, Any],
    params: dict[str, Any],
) -> scoring.AttributeScorer:
    """The image side, once: CLIP dense features of the evaluation split of every benchmark
    (images shared by several vocabularies are encoded once), plus, for ``finetune``, the
    training split's features and labels."""
    options = dict(params.get("scoring") or {})
    set_torch_threads(options.get("num_threads"), default=2)
    model = scoring.build_scoring_model(
        tiny_clip_config, tiny_clip_checkpoint, seed=int(options.get("seed", 0)), **dict(options.get("head") or {})
    )
    benchmarks = []
    for spec in _benchmark_specs(manifest, params):
        benchmarks.append(
            scoring.load_benchmark(
                _reader(spec),
                spec["name"],
                spec.get("split", params.get("split", "val")),
                background_class=params.get("background_class"),
                limit=params.get("max_images"),
                eval_size=params.get("eval_size"),
            )
        )
    mode = options.get("mode", "zero_shot")
    train = finetune = None
    if mode == "finetune":
        tuning = dict(options.get("finetune") or {})
        spec = {
            "name": "train",
            "family": manifest["family"],
            "root": manifest["root"],
            "reader_kwargs": dict(tuning.get("train_reader_kwargs") or manifest.get("reader_kwargs") or {}),
        }
        reader = _reader(spec)
        benchmark, images = scoring.load_benchmark(
            reader, "train", tuning.get("train_split", "train"), limit=tuning.get("max_train_images")
        )
        train = (images, benchmark.labels, benchmark.ignore_index, benchmark.class_names)
        finetune = scoring.FinetuneConfig(
            **{k: v for k, v in tuning.items() if k in scoring.FinetuneConfig.__dataclass_fields__}
        )
    seeds, _ = noise_settings(params)
    held_out = held_out_half(params)
    per_half = len(seeds) if mode == "zero_shot" and len(seeds) > 1 else 1  # zero_shot noise: image folds
    return scoring.build_scorer(
        model,
        benchmarks,
        mode=mode,
        batch_size=int(options.get("batch_size", 32)),
        train=train,
        finetune=finetune,
        folds=per_half * (2 if held_out else 1),
        held_out=held_out,
    )


def _prompt_budget(scorer: scoring.AttributeScorer) -> int:
    return scorer.context_length - 2  # CLIP start and end tokens


def _prompts(
    scorer,
    description_sets: Sequence[Mapping[str, Mapping[str, str]]],
    combination: Sequence[str],
    class_names: Sequence[str] | None = None,
    composition: str = "description",
    overflow: str = "report",
) -> dict[str, tuple[ComposedPrompt, ...]]:
    """``{class: (ComposedPrompt, ...)}``, one prompt per description set (several: an LLM-sample
    ensemble, :func:`description_sets`): the combination's descriptions concatenated within the CLIP
    context (thesis 5.2.3), alone or after the template (``composition``, :data:`PROMPT_COMPOSITIONS`);
    the empty combination is the template baseline. A description that does not fit is left out
    (later attributes first) and recorded in the prompt (``overflow: report``, the table's
    :data:`SHORTENED_COLUMN`), or the combination is refused with an error naming the classes
    (``overflow: refuse``)."""
    names = scorer.class_names if class_names is None else class_names
    if composition not in PROMPT_COMPOSITIONS:
        raise ValueError(
            f"lsmseg_attribute_selection.prompt_composition must be one of {sorted(PROMPT_COMPOSITIONS)}, "
            f"got {composition!r}"
        )
    budget = _prompt_budget(scorer)
    per_set = [
        compose_prompt_set(answers, list(combination), names, PROMPT_COMPOSITIONS[composition], max_tokens=budget)
        for answers in description_sets
    ]
    composed = {name: tuple(prompts[name] for prompts in per_set) for name in names}
    shortened = [name for name, prompts in composed.items() if any(p.shortened for p in prompts)]
    if shortened and overflow == "refuse":
        raise ValueError(
            f"prompts of {' + '.join(combination)} do not fit the {budget}-token text context "
            f"for {len(shortened)} classes: {shortened[:10]}{' …' if len(shortened) > 10 else ''} "
            "(lsmseg_attribute_selection.prompt_overflow: report scores them shortened and says so)"
        )
    if shortened:
        logger.info(
            "prompts for %s: %d of %d classes lose a description to the %d-token text context (%s)",
            " + ".join(combination) or "template",
            len(shortened),
            len(composed),
            budget,
            ", ".join(shortened[:5]),
        )
    return composed


def _texts(composed: Mapping[str, Sequence[ComposedPrompt]]) -> dict[str, str | list[str]]:
    """``{class: prompt}``, or ``{class: [prompts]}`` for an ensemble (the scorer and LSMSeg average
    the L2-normalised text embeddings of a class's prompts)."""
    return {
        name: prompts[0].text if len(prompts) == 1 else [p.text for p in prompts] for name, prompts in composed.items()
    }


def _record(prompts: Sequence[ComposedPrompt]) -> dict[str, Any]:
    return prompts[0].record() if len(prompts) == 1 else {"ensemble": [p.record() for p in prompts]}


def shortened_cell(composed: Mapping[str, Sequence[ComposedPrompt]]) -> str:
    """The table cell saying how many classes' prompts lost part of the row's descriptions."""
    shortened = [name for name, prompts in composed.items() if any(p.shortened for p in prompts)]
    if not shortened:
        return f"0/{len(composed)}"
    return f"{len(shortened)}/{len(composed)}: {', '.join(shortened[:3])}{' …' if len(shortened) > 3 else ''}"


def noise_settings(params: Mapping[str, Any]) -> tuple[list[int], str]:
    """(replicate seeds, interval rule) from ``noise: {replicates, rule}`` (Tables 5.3/5.4 cells are
    mean ± std over the replicates; :func:`seg_pipelines.statistics.paired_comparison` judges)."""
    noise = dict(params.get("noise") or {})
    replicates = int(noise.get("replicates", 3))
    if replicates < 1:
        raise ValueError(f"lsmseg_attribute_selection.noise.replicates must be >= 1, got {replicates}")
    base = int((params.get("scoring") or {}).get("seed", 0))
    return list(range(base, base + replicates)), str(noise.get("rule", "2se"))


def held_out_half(params: Mapping[str, Any]) -> bool:
    """``noise.held_out`` (default true): rank and choose on one half of the evaluation images, and
    judge the chosen prompt set against the template on the other half only (the winner's curse:
    the best of nine attributes measured on the images that chose it is biased upwards)."""
    value = dict(params.get("noise") or {}).get("held_out", True)
    if not isinstance(value, bool):
        raise ValueError(f"lsmseg_attribute_selection.noise.held_out must be true or false, got {value!r}")
    return value


def _averages(replicates: Sequence[Mapping[str, float]]) -> list[float]:
    """The ``avg.`` over benchmarks of each replicate."""
    return [sum(r.values()) / len(r) for r in replicates]


def _mean_std(replicates: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per benchmark and for ``avg.``: the mean and (``<name> std``) sample std over replicates."""
    frame = pd.DataFrame(list(replicates))
    frame[AVERAGE_COLUMN] = frame.mean(axis=1)
    out: dict[str, float] = {}
    for column in frame.columns:
        out[column] = float(frame[column].mean())
        out[column + STD_SUFFIX] = float(frame[column].std(ddof=1)) if len(frame) > 1 else 0.0
    return out


def judge(candidate: Sequence[float], baseline: Sequence[float], rule: str) -> tuple[str, str]:
    """(direction, text) of ``candidate - baseline`` paired by replicate, by the project's rule."""
    comparison = paired_comparison(list(candidate), list(baseline), rule=rule)  # type: ignore[arg-type]
    return comparison.direction, comparison.describe(decimals=2)


def annotate_noise(
    table: pd.DataFrame,
    replicates: Mapping[str, Sequence[Mapping[str, float]]],
    template: Sequence[Mapping[str, float]],
    rule: str,
) -> pd.DataFrame:
    """Add each cell's std, and ``vs. template`` / ``verdict`` (paired over replicates) to ``table``
    (rows = names in ``replicates``, benchmark and ``avg.`` columns = replicate means)."""
    out = table.copy()
    template_avg = _averages(template)
    stats = {row: _mean_std(replicates[row]) for row in out.index}
    for column in [c for c in table.columns if c + STD_SUFFIX in stats[out.index[0]]]:
        out[column + STD_SUFFIX] = [stats[row][column + STD_SUFFIX] for row in out.index]
    judged = {row: judge(_averages(replicates[row]), template_avg, rule) for row in out.index if row != BASELINE_ROW}
    out[VS_TEMPLATE_COLUMN] = [judged[row][1] if row in judged else "" for row in out.index]
    out[VERDICT_COLUMN] = [VERDICT_LABELS[judged[row][0]] if row in judged else "" for row in out.index]
    # the same paired comparison as numbers, for the figure (the markdown prints the text column only)
    paired = {
        row: paired_comparison(_averages(replicates[row]), template_avg, rule)  # type: ignore[arg-type]
        for row in out.index
        if row != BASELINE_ROW
    }
    for column, field in INTERVAL_COLUMNS.items():
        out[column] = [getattr(paired[row], field) if row in paired else float("nan") for row in out.index]
    return out


def greedy_steps_beyond_noise(
    combinations: Sequence[str], replicates: Mapping[str, Sequence[Mapping[str, float]]], rule: str
) -> tuple[str, dict[str, str]]:
    """Table 5.4's choice with noise: walking the greedy combinations in order, a longer one
    replaces the current choice only when it beats it beyond noise (paired over replicates,
    ``rule``); otherwise the shorter one stands. Returns (chosen, {combination: step text})."""
    chosen = combinations[0]
    steps = {chosen: ""}
    for name in combinations[1:]:
        direction, text = judge(_averages(replicates[name]), _averages(replicates[chosen]), rule)
        kept = "selected instead" if direction == "higher" else f"{chosen} stays selected"
        steps[name] = f"{text} vs. {chosen}: {kept}"
        if direction == "higher":
            chosen = name
    return chosen, steps


def seen_unseen_averages(scorer) -> dict[str, float]:
    """Mean over replicates and benchmarks of the seen-class and unseen-class mIoU of the last
    evaluation (``finetune`` only; empty otherwise)."""
    splits = getattr(scorer, "last_seen_unseen", None) or []
    out = {}
    for part in ("seen", "unseen"):
        values = [v[part] for split in splits for v in split.values() if v[part] == v[part]]
        if values:
            out[part] = float(sum(values) / len(values))
    return out


def score_attributes(
    scorer: scoring.AttributeScorer, descriptions: dict[str, Any], params: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Figure 5.3 (3), Table 5.3: mIoU of the template baseline and of each attribute's prompts on
    every benchmark, ranked by the average (per LLM; the table is the primary LLM's).

    Each cell is the mean ± std over the noise replicates (``noise.replicates``: training seeds in
    ``finetune`` mode, disjoint image folds in ``zero_shot`` mode); ``verdict`` says whether the
    attribute beats the template beyond noise (paired over replicates, ``noise.rule``)."""
    set_torch_threads((params.get("scoring") or {}).get("num_threads"), default=2)
    decimals = params.get("ranking_decimals")
    seeds, rule = noise_settings(params)
    composition = str(params.get("prompt_composition", "description"))
    overflow = str(params.get("prompt_overflow", "report"))
    per_llm: dict[str, Any] = {}
    tables = {}
    for label, entry in descriptions["llms"].items():
        reps: OrderedDict[str, list[dict[str, float]]] = OrderedDict()
        held: dict[str, list[dict[str, float]]] = {}
        splits: dict[str, dict[str, float]] = {}
        shortened: dict[str, str] = {}
        sets = description_sets(entry)
        composed = _prompts(scorer, sets, [])
        reps[BASELINE_ROW], held[BASELINE_ROW] = scorer.evaluate_split(_texts(composed), seeds)
        shortened[BASELINE_ROW] = shortened_cell(composed)
        splits[BASELINE_ROW] = seen_unseen_averages(scorer)
        for attribute in descriptions["attributes"]:
            composed = _prompts(scorer, sets, [attribute], composition=composition, overflow=overflow)
            reps[attribute], held[attribute] = scorer.evaluate_split(_texts(composed), seeds)
            shortened[attribute] = shortened_cell(composed)
            splits[attribute] = seen_unseen_averages(scorer)
            logger.info("%s / %s: avg. mIoU %.2f", label, attribute, sum(_averages(reps[attribute])) / len(seeds))
        rows = {
            name: {k: v for k, v in _mean_std(r).items() if k != AVERAGE_COLUMN and not k.endswith(STD_SUFFIX)}
            for name, r in reps.items()
        }
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "attribute"
        ranked = rank_attributes(table, decimals=decimals)
        tables[label] = annotate_noise(ranked, reps, reps[BASELINE_ROW], rule)
        tables[label][SHORTENED_COLUMN] = [shortened[row] for row in tables[label].index]
        if any(splits.values()):  # finetune: seen and unseen classes reported apart (thesis 5.2.3)
            for part in ("seen", "unseen"):
                tables[label][f"{part} avg."] = [splits[row].get(part, float("nan")) for row in tables[label].index]
        per_llm[label] = {
            "ranking": list(ranked.index),
            "scores": _frame_to_dict(ranked),
            "replicates": {name: list(r) for name, r in reps.items()},
            "held_out": {name: list(r) for name, r in held.items() if r},
            "shortened": shortened,
        }
    primary = next(iter(tables))
    summary = {
        "llms": per_llm,
        "primary": primary,
        "seeds": seeds,
        "rule": rule,
        "composition": composition,
        "prompt_overflow": overflow,
    }
    summary["replicate_kind"] = "training seeds" if scorer.mode == "finetune" else f"{len(seeds)} disjoint image folds"
    summary["held_out"] = scorer.held_out
    return tables[primary].reset_index(), summary


def _frame_to_dict(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {
        str(row): {str(c): (float(v) if isinstance(v, (int, float)) else str(v)) for c, v in values.items()}
        for row, values in table.iterrows()
    }


# --------------------------------------------------------------------------- step 4: combination


def combine_attributes(
    scorer: scoring.AttributeScorer,
    descriptions: dict[str, Any],
    attribute_scores: dict[str, Any],
    params: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str], dict[str, Any]]:
    """Figure 5.3 (4), Table 5.4: keep the top-k attributes, add them greedily in rank order,
    score each combination and select the best; Table 5.9: each LLM's best combination.

    Returns (Table 5.4 of the primary LLM, Table 5.9, the prompt set ``{class: prompt}`` of the
    primary LLM's best combination, a summary).
    """
    set_torch_threads((params.get("scoring") or {}).get("num_threads"), default=2)
    top_k = int(params.get("top_k", 4))
    decimals = params.get("ranking_decimals")
    seeds, rule = noise_settings(params)
    composition = str(attribute_scores.get("composition", params.get("prompt_composition", "description")))
    overflow = str(params.get("prompt_overflow", "report"))
    combination_tables, best, best_reps, template_reps, verdicts = {}, {}, {}, {}, {}
    comparison_rows = OrderedDict()
    for label, entry in descriptions["llms"].items():
        stored = attribute_scores["llms"][label]
        sets = description_sets(entry)
        ranked = pd.DataFrame.from_dict(stored["scores"], orient="index")
        ranked = ranked.loc[stored["ranking"]]
        reps: dict[str, list[dict[str, float]]] = {}
        held: dict[str, list[dict[str, float]]] = {}
        shortened: dict[str, str] = {}

        def evaluate(
            combination: list[str], _descriptions=sets, _reps=reps, _held=held, _short=shortened
        ) -> dict[str, float]:
            key = COMBINATION_SEPARATOR.join(combination)
            composed = _prompts(scorer, _descriptions, combination, composition=composition, overflow=overflow)
            _reps[key], _held[key] = scorer.evaluate_split(_texts(composed), seeds)
            _short[key] = shortened_cell(composed)
            means = _mean_std(_reps[key])
            return {b: means[b] for b in _reps[key][0]}

        table, _ = greedy_combination(ranked, top_k, evaluate, decimals=decimals)
        first = table.index[0]
        stored_held = stored.get("held_out") or {}
        reps[first], held[first] = stored["replicates"][first], stored_held.get(first, [])
        template = stored["replicates"][BASELINE_ROW]
        chosen, steps = greedy_steps_beyond_noise(list(table.index), reps, rule)
        table = annotate_noise(table, reps, template, rule)
        table[STEP_COLUMN] = [steps[name] for name in table.index]
        shortened.setdefault(first, (stored.get("shortened") or {}).get(first, ""))  # scored by score_attributes
        table[SHORTENED_COLUMN] = [shortened.get(name, "") for name in table.index]
        combination_tables[label] = table
        best[label] = chosen.split(COMBINATION_SEPARATOR)
        # The choice's verdicts come from the held-out half when there is one (the selection half
        # chose it, so its difference there is biased upwards), else from the selection replicates.
        judged_held_out = bool(held.get(chosen) and stored_held.get(BASELINE_ROW))
        if judged_held_out:
            best_reps[label], template_reps[label] = held[chosen], stored_held[BASELINE_ROW]
        else:
            best_reps[label], template_reps[label] = reps[chosen], template
        verdicts[label] = judge(_averages(best_reps[label]), _averages(template_reps[label]), rule)[0]
        row = table.loc[chosen]
        benchmarks = [c for c in reps[chosen][0]]
        comparison_rows[label] = {
            **{b: float(row[b]) for b in benchmarks},
            **{b + STD_SUFFIX: float(row[b + STD_SUFFIX]) for b in benchmarks},
            AVERAGE_COLUMN: float(row[AVERAGE_COLUMN]),
            AVERAGE_COLUMN + STD_SUFFIX: float(row[AVERAGE_COLUMN + STD_SUFFIX]),
            COMBINATION_COLUMN: chosen,
            VS_TEMPLATE_COLUMN: row[VS_TEMPLATE_COLUMN],
            VERDICT_COLUMN: row[VERDICT_COLUMN],
        }
        if judged_held_out:
            direction, text = judge(_averages(best_reps[label]), _averages(template_reps[label]), rule)
            comparison_rows[label][HELD_OUT_VS_TEMPLATE_COLUMN] = text
            comparison_rows[label][HELD_OUT_VERDICT_COLUMN] = VERDICT_LABELS[direction]
        agreement = _world_agreement(entry["descriptions"])
        if agreement:
            rates = [v["hit_rate"] for v in agreement.values()]
            comparison_rows[label]["world agreement"] = float(100 * sum(rates) / len(rates))
        logger.info(
            "%s: selected combination %s (avg. mIoU %.2f, %s)", label, chosen, row[AVERAGE_COLUMN], row[VERDICT_COLUMN]
        )
    primary = attribute_scores["primary"]
    for label in comparison_rows:  # the thesis: a stronger LLM gives the higher mIoU (Table 5.9)
        comparison_rows[label]["vs. " + primary] = (
            "" if label == primary else judge(_averages(best_reps[label]), _averages(best_reps[primary]), rule)[1]
        )
    comparison = pd.DataFrame.from_dict(comparison_rows, orient="index")
    comparison.index.name = LLM_COLUMN
    baseline = attribute_scores["llms"][primary]["scores"][BASELINE_ROW][AVERAGE_COLUMN]
    best_key = COMBINATION_SEPARATOR.join(best[primary])
    best_average = float(combination_tables[primary].loc[best_key, AVERAGE_COLUMN])
    beats, beats_text = judge(_averages(best_reps[primary]), _averages(template_reps[primary]), rule)
    # The prompt set is the selected combination only when it beats the template beyond noise
    # (paired rule); otherwise (a weak LLM or CLIP, or a difference noise explains) the template.
    prompt_combination = list(best[primary])
    if bool(params.get("fallback_to_template", True)) and beats != "higher":
        logger.warning(
            "the selected combination %s does not beat the template beyond noise (%s); "
            "the prompt set uses the template prompts",
            best[primary],
            beats_text,
        )
        prompt_combination = []
    composed_set = _prompts(
        scorer,
        description_sets(descriptions["llms"][primary]),
        prompt_combination,
        descriptions["class_names"],
        composition=composition,
        overflow=overflow,
    )
    prompt_set = _texts(composed_set)
    summary = {
        "primary_llm": primary,
        "backend": descriptions["llms"][primary]["backend"],
        "model": descriptions["llms"][primary]["model"],
        "best_combination": best[primary],
        "best_combinations": best,
        "top_k": top_k,
        "scoring_mode": scorer.mode,
        "prompt_composition": composition,
        "noise": {
            "replicates": len(seeds),
            "kind": attribute_scores.get("replicate_kind", ""),
            "rule": rule,
            "held_out": bool(attribute_scores.get("held_out", False)),
            "best_vs_template": beats_text,  # on the held-out half when there is one
            "best_beats_template": beats == "higher",
            "selection_best_vs_template": str(combination_tables[primary].loc[best_key, VS_TEMPLATE_COLUMN]),
        },
        "prompt_token_budget": _prompt_budget(scorer),
        # per class: the attributes whose descriptions the prompt set holds, those left out, its tokens
        "prompt_set_composition": {name: _record(prompts) for name, prompts in composed_set.items()},
        "template_average": baseline,
        "best_average": best_average,
        "prompt_set_combination": prompt_combination,  # [] = template prompts
        "combination_tables": {label: _frame_to_dict(t) for label, t in combination_tables.items()},
        "scoring_times": scorer.times.as_dict(),
        "images_encoded": scorer.images_encoded,
        "llm_sample_agreement": sample_agreement(descriptions, best, verdicts),
    }
    return combination_tables[primary].reset_index(), comparison.reset_index(), prompt_set, summary


def sample_agreement(
    descriptions: Mapping[str, Any], best: Mapping[str, Sequence[str]], verdicts: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """Per LLM asked with ``llm_samples.use: replicates``: each sample's headline verdict (the selected
    combination, and whether it beats the template beyond noise) and how often the samples agree on it:
    the LLM's sampling as a noise source of the verdict, beside the image folds."""
    groups: dict[str, list[str]] = {}
    for label, entry in descriptions["llms"].items():
        if entry.get("sample_of"):
            groups.setdefault(str(entry["sample_of"]), []).append(label)
    out: dict[str, dict[str, Any]] = {}
    for base, labels in groups.items():
        combinations = [COMBINATION_SEPARATOR.join(best[label]) for label in labels]
        beats = [verdicts[label] == "higher" for label in labels]
        headlines = [f"{c}, {'beats' if b else 'does not beat'} the template" for c, b in zip(combinations, beats)]
        modal, count = Counter(headlines).most_common(1)[0]
        out[base] = {
            "samples": len(labels),
            "per_sample": {
                label: {"combination": c, "beats_template": b} for label, c, b in zip(labels, combinations, beats)
            },
            "modal_headline": modal,
            "headline_agreement": count / len(labels),
            "combination_agreement": Counter(combinations).most_common(1)[0][1] / len(labels),
            "beats_template_share": sum(beats) / len(labels),
        }
    return out


# --------------------------------------------------------------------------- reports


def identical_columns(table: pd.DataFrame) -> list[list[str]]:
    """Groups of benchmark columns whose values are equal in every row (e.g. two vocabularies scored on the
    same images and labels with the same class names)."""
    skip = {AVERAGE_COLUMN, GAIN_COLUMN, *INTERVAL_COLUMNS, "seen avg.", "unseen avg."}
    columns = [
        c
        for c in table.columns
        if c not in skip and not str(c).endswith(STD_SUFFIX) and pd.api.types.is_numeric_dtype(table[c])
    ]
    groups: list[list[str]] = []
    for column in columns:
        for group in groups:
            if table[group[0]].round(6).equals(table[column].round(6)):
                group.append(column)
                break
        else:
            groups.append([column])
    return [group for group in groups if len(group) > 1]


def _markdown(table: pd.DataFrame, title: str, decimals: int = 1) -> str:
    """``## title`` and the table, float columns with ``decimals`` places (engine.tables.markdown_table)."""
    from seg_pipelines.engine.tables import markdown_table

    # ``vs. baseline`` is ``vs. template`` without its interval: the markdown prints the latter only
    frame = table.drop(columns=[c for c in (*INTERVAL_COLUMNS, GAIN_COLUMN) if c in table.columns])
    for column in list(frame.columns):
        if column.endswith(STD_SUFFIX) and column[: -len(STD_SUFFIX)] in frame.columns:
            mean = column[: -len(STD_SUFFIX)]
            frame[mean] = [f"{m:.{decimals}f} ± {s:.{decimals}f}" for m, s in zip(frame[mean], frame[column])]
            frame = frame.drop(columns=column)
    for column in frame.columns:
        if pd.api.types.is_float_dtype(frame[column]):
            frame[column] = frame[column].map(lambda v: "–" if pd.isna(v) else f"{v:.{decimals}f}")
    # an empty text cell read back from the CSV catalog entry is NaN: print it empty, not "nan"
    return markdown_table(frame, cell=lambda v: "" if pd.isna(v) else str(v), title=f"## {title}") + "\n"


def plot_attribute_scores(attribute_table: pd.DataFrame):
    """Table 5.3 as what it decides: each attribute's avg. mIoU minus the template's, with the interval of
    that paired difference (the table's ``vs. template``; green above the template beyond noise, red below,
    grey within noise); beside it the averages themselves, on an axis from 0."""
    table = attribute_table.set_index("attribute")
    baseline = float(table.at[BASELINE_ROW, AVERAGE_COLUMN])
    attributes = table.drop(index=BASELINE_ROW)
    figure, (delta_axis, level_axis) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    positions = range(len(attributes))
    if all(column in attributes.columns for column in INTERVAL_COLUMNS):
        mean = attributes["Δ template"].astype(float)
        low, high = attributes["Δ low"].astype(float), attributes["Δ high"].astype(float)
        colours = ["tab:green" if lo > 0 else "tab:red" if hi < 0 else "tab:gray" for lo, hi in zip(low, high)]
        errors = [(mean - low).fillna(0).clip(lower=0).tolist(), (high - mean).fillna(0).clip(lower=0).tolist()]
        delta_axis.bar(positions, mean, color=colours, yerr=errors, capsize=3, ecolor="black")
        delta_axis.set(ylabel="avg. mIoU − template (points)")
    else:  # a table without replicates (one seed): the difference alone
        delta_axis.bar(positions, attributes[AVERAGE_COLUMN] - baseline, color="tab:gray")
        delta_axis.set(ylabel="avg. mIoU − template (points, no interval)")
    delta_axis.axhline(0.0, color="black", linewidth=0.8)
    delta_axis.set_xticks(list(positions), attributes.index, rotation=30, ha="right")
    delta_axis.set_title("vs. the template, paired interval (green/red: beyond noise)")
    level_axis.bar(positions, attributes[AVERAGE_COLUMN], color="tab:blue")
    level_axis.axhline(baseline, color="tab:red", linestyle="--", label=f"template ({baseline:.1f})")
    level_axis.set_xticks(list(positions), attributes.index, rotation=30, ha="right")
    level_axis.set_ylim(0.0, 1.15 * max(attributes[AVERAGE_COLUMN].max(), baseline) + 0.5)
    level_axis.set(ylabel="avg. mIoU (%)", title="Attribute scores (Table 5.3 layout)")
    level_axis.legend(loc="upper right")
    figure.tight_layout()
    return figure


def plot_combination_curve(combination_table: pd.DataFrame, attribute_table: pd.DataFrame):
    """Average mIoU as attributes are added greedily (Table 5.4), with the template baseline."""
    table = combination_table.set_index(COMBINATION_COLUMN)
    baseline = float(attribute_table.set_index("attribute").at[BASELINE_ROW, AVERAGE_COLUMN])
    figure, axis = plt.subplots(figsize=(8.6, 3.4))
    steps = range(1, len(table) + 1)
    axis.plot(steps, table[AVERAGE_COLUMN], marker="o", color="tab:blue", label="greedy combination")
    axis.axhline(baseline, color="tab:red", linestyle="--", label=f"template baseline ({baseline:.1f})")
    best = int(table[AVERAGE_COLUMN].to_numpy().argmax())
    axis.plot(
        [best + 1], [table[AVERAGE_COLUMN].iloc[best]], marker="*", markersize=14, color="tab:orange", label="selected"
    )
    labels = ["+ " + name.split(COMBINATION_SEPARATOR)[-1] if i else name for i, name in enumerate(table.index)]
    axis.set_xticks(list(steps), labels, rotation=20, ha="right")
    axis.set(ylabel="avg. mIoU (%)", title="Greedy attribute combination (Table 5.4 layout)")
    # beside the axes, not over them: no placement inside can be sure to miss every point
    axis.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8)
    figure.tight_layout()
    return figure


def description_samples(
    descriptions: dict[str, Any],
    prompt_set: dict[str, str],
    params: dict[str, Any],
    agreement: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
) -> str:
    """Markdown: every attribute's description and the final prompt for a few classes, per LLM;
    for the synthetic world also how the concept is actually rendered (for comparison only).
    ``agreement``: per LLM label, :func:`_world_agreement` when the caller has it already."""
    wanted = params.get("sample_classes") or descriptions["class_names"][: int(params.get("num_sample_classes", 6))]
    truth = {}
    try:
        from seg_pipelines.datasets.synthetic.concepts import CONCEPT_BY_NAME

        truth = {name: CONCEPT_BY_NAME[name].describe() for name in wanted if name in CONCEPT_BY_NAME}
    except ImportError:  # pragma: no cover
        pass
    lines = ["# Sample LLM descriptions", ""]
    for label, entry in descriptions["llms"].items():
        lines += [f"## {label} ({entry['backend']} / {entry['model']})", ""]
        matches = agreement[label] if agreement is not None else _world_agreement(entry["descriptions"])
        if matches:
            lines += [
                "Descriptions that name the attribute word the synthetic world renders (all classes): "
                + ", ".join(
                    f"{key} {100 * value['hit_rate']:.0f}% of {int(value['count'])}" for key, value in matches.items()
                ),
                "",
            ]
        for name in wanted:
            if name not in entry["descriptions"]:
                continue
            lines.append(f"### {name}")
            for attribute, text in entry["descriptions"][name].items():
                lines.append(f"- **{attribute}**: {text}")
            if name in prompt_set and label == next(iter(descriptions["llms"])):
                lines.append(f"- **final prompt**: {prompt_set[name]}")
            if name in truth:
                lines.append(f"- *rendered as (synthetic world, not given to the LLM)*: {truth[name]}")
            lines.append("")
    return "\n".join(lines)


def _world_agreement(per_class: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, float]]:
    """LLM description vs the synthetic world's rendered attributes (empty for other datasets)."""
    from seg_pipelines.datasets.synthetic.concepts import description_agreement

    return description_agreement({name: dict(values) for name, values in per_class.items()})


def thesis_attribute_averages(decimals: int = 2) -> dict[str, float]:
    """The thesis's Table 5.3 rows averaged over its six benchmark columns to ``decimals`` places (it prints
    one decimal), best first; the template baseline left out."""
    columns = [TABLE_5_3.columns.index(name) for name in BENCHMARKS]
    averages = {
        row: round(sum(values[i] for i in columns) / len(columns), decimals)
        for row, values in TABLE_5_3.numbers.items()
        if row != "Baseline"
    }
    return dict(sorted(averages.items(), key=lambda item: -item[1]))


def thesis_ranking_note() -> str:
    """Why our ranking need not put size first: the thesis's own Table 5.3 does not single it out."""
    top = list(thesis_attribute_averages().items())[:3]
    listed = ", ".join(f"{row.lower()} {value:.2f}" for row, value in top)
    printed = ", ".join(f"{TABLE_5_3.thesis[row][AVERAGE]:.1f}" for row, _ in top)
    return (
        '\nThe thesis\'s own Table 5.3 does not single out size as "the highest individual performer" (§5.2.3, '
        f"thesis text L1415): its six columns averaged to two decimals give {listed} (printed avg.: {printed}). "
        "Compare our ranking with the thesis's as a near tie among these attributes, not as size first.\n"
    )


def report_attribute_selection(
    attribute_table: pd.DataFrame,
    combination_table: pd.DataFrame,
    comparison_table: pd.DataFrame,
    summary: dict[str, Any],
    generation_metrics: dict[str, float],
    candidate_attributes: dict[str, Any],
    descriptions: dict[str, Any],
    prompt_set: dict[str, str],
    params: dict[str, Any],
) -> tuple[str, str, str, Any, Any, str, dict[str, float]]:
    """Markdown tables, the two charts, description samples and the metrics logged to MLflow
    (the LLM backend/model are also logged as MLflow parameters when a run is active)."""
    table_5_3 = _markdown(attribute_table, "Table 5.3 layout: single attributes (mIoU %, open-vocabulary protocol)")
    table_5_4 = _markdown(combination_table, "Table 5.4 layout: greedy attribute combinations (mIoU %)")
    table_5_9 = _markdown(comparison_table, "Table 5.9 layout: LLMs, best combination each (mIoU %)")
    candidates = ", ".join(candidate_attributes.get("suggested") or []) or "(no usable answer)"
    scored = list(descriptions["attributes"])
    used = bool(candidate_attributes.get("suggested")) and scored == list(candidate_attributes.get("suggested"))
    table_5_3 += (
        f"\nStep 1 (Figure 5.3), which visual attributes matter for segmentation: LLM `{summary['primary_llm']}` "
        f"answered {candidates} ("
        + (
            "its list is scored"
            if used
            else "not used: the thesis's attributes are scored; `use_llm_attributes: true` scores the LLM's list"
        )
        + f"). Scored attributes: {', '.join(scored)}. Mode: {summary['scoring_mode']}. "
        f"Prompt composition: {summary.get('prompt_composition', 'description')}.\n"
    )
    same = identical_columns(attribute_table)
    if same:
        note = (
            "\n"
            + "; ".join(" and ".join(f"`{c}`" for c in group) for group in same)
            + " are equal in every row: the same images, labels and class names on this dataset (the synthetic "
            "world's A-847 and PC-459 stand-ins both name every concept), so they count once in effect.\n"
        )
        table_5_3 += note
        table_5_4 += note
    noise = summary.get("noise") or {}
    noise_note = (
        f"\nCells: mean ± std over {noise.get('replicates', 1)} replicates ({noise.get('kind', '')}); "
        f"`vs. template`: mean paired difference of avg. and its interval (rule {noise.get('rule', '')}, "
        "seg_pipelines.statistics.paired_comparison); `verdict`: beyond noise or not.\n"
    )
    if noise.get("held_out"):
        noise_note += (
            "Held out: the evaluation images are split into two disjoint halves; these cells, the "
            "ranking and the greedy choice use the selection half only, and the chosen combination is "
            "compared with the template on the other half (`held-out vs. template`), so its verdict is "
            "not measured on the images that chose it (winner's curse). The prompt set follows that verdict.\n"
        )
    table_5_3 += noise_note + thesis_ranking_note()
    table_5_4 += noise_note + (
        "Rows follow the thesis's greedy order (each adds the next-ranked attribute to the row above); "
        "`vs. previous step` says whether that longer combination replaces the current selection beyond noise.\n"
    )
    table_5_9 += noise_note + (
        "`world agreement`: % of descriptions naming the attribute word the synthetic world renders "
        "(mean over attributes).\n"
    )
    table_5_4 += (
        f"\nSelected: **{COMBINATION_SEPARATOR.join(summary['best_combination'])}** "
        f"({noise.get('best_vs_template', '')} vs. template"
        + (
            f" on the held-out half; {noise.get('selection_best_vs_template', '')} on the selection half"
            if noise.get("held_out")
            else ""
        )
        + ").\n"
    )
    if not summary.get("prompt_set_combination", summary["best_combination"]):
        table_5_4 += (
            f"\nNo combination beats the template baseline ({summary['template_average']:.1f} avg. mIoU) "
            "beyond noise: the prompt set uses the template prompts (`fallback_to_template`).\n"
        )
    for base, agreement in (summary.get("llm_sample_agreement") or {}).items():
        samples = "; ".join(
            f"{label}: {value['combination']} ({'beats' if value['beats_template'] else 'does not beat'} the template)"
            for label, value in agreement["per_sample"].items()
        )
        table_5_9 += (
            f"\nLLM samples of `{base}` (llm_samples, use: replicates, {agreement['samples']} seeds): {samples}. "
            f"The headline verdict agrees in {100 * agreement['headline_agreement']:.0f}% of the samples "
            f"(modal: {agreement['modal_headline']}; "
            f"same combination {100 * agreement['combination_agreement']:.0f}%).\n"
        )
    metrics = {
        "attribute_selection.template_avg_miou": float(summary["template_average"]),
        "attribute_selection.best_avg_miou": float(summary["best_average"]),
        "attribute_selection.gain_vs_template": float(summary["best_average"] - summary["template_average"]),
        "attribute_selection.best_combination_size": float(len(summary["best_combination"])),
        **{f"attribute_selection.scoring.{k}": v for k, v in summary["scoring_times"].items()},
        **{f"attribute_selection.{k}": v for k, v in generation_metrics.items()},
    }
    for base, agreement in (summary.get("llm_sample_agreement") or {}).items():
        for key in ("headline_agreement", "combination_agreement", "beats_template_share"):
            metrics[f"attribute_selection.llm_samples.{_metric_key(base)}.{key}"] = float(agreement[key])
    agreement = {label: _world_agreement(entry["descriptions"]) for label, entry in descriptions["llms"].items()}
    for label, matches in agreement.items():
        for key, value in matches.items():
            metrics[f"attribute_selection.world_agreement.{_metric_key(label)}.{key}"] = float(value["hit_rate"])
    for _, row in attribute_table.iterrows():
        metrics[f"attribute_selection.table_5_3.{_metric_key(str(row['attribute']))}.avg"] = float(row[AVERAGE_COLUMN])
    _log_llm_params(descriptions, summary)
    figure_scores = plot_attribute_scores(attribute_table)
    figure_combination = plot_combination_curve(combination_table, attribute_table)
    samples = description_samples(descriptions, prompt_set, params, agreement)
    return table_5_3, table_5_4, table_5_9, figure_scores, figure_combination, samples, metrics


def _log_llm_params(descriptions: dict[str, Any], summary: dict[str, Any]) -> None:
    """The LLMs asked and the chosen combination as parameters of the active MLflow run (if any)."""
    values = {
        "attribute_selection.primary_llm": summary["primary_llm"],
        "attribute_selection.best_combination": COMBINATION_SEPARATOR.join(summary["best_combination"]),
    }
    for label, entry in descriptions["llms"].items():
        values[f"attribute_selection.llm.{_metric_key(label)}.backend"] = entry["backend"]
        values[f"attribute_selection.llm.{_metric_key(label)}.model"] = entry["model"]
    tracking.log_params(values)

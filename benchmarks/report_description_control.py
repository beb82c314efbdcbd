"""Attribute-scoring control: is it the LLM or the scorer? (thesis 5.2.3, Table 5.3)

Scores, with the same zero-shot scorer as ``lsmseg_attribute_selection`` (tiny CLIP, cosine cost
map, every benchmark vocabulary), three prompt sources per attribute:

- ``template``: "a photo of a {class}." (the Table 5.3 baseline row);
- ``llm``: the LLM's cached descriptions (``data/02_intermediate/attribute_descriptions.json``);
- ``world``: the synthetic world's own attribute word in the same sentence form ("a lime is
  green."), i.e. what a knowledgeable LLM would say about this world (GPT-4's role in the thesis);
- ``world all``: the world's full description (size, shape, colour, texture in one sentence).

plus the share of the LLM's descriptions that name the attribute word the world renders. If the
``world`` rows beat the template and the ``llm`` rows do not, the LLM is the limit, not the scorer.

``--combinations`` adds, for the LLM's and the world's descriptions alike, the best single attribute
and its greedy extensions by the next best ones (the pipeline's composition and token budget), each
step compared with the step before, paired over the pipeline's image folds (its noise rule): if the
world's two attributes beat its one beyond noise and the LLM's do not, the LLM is what keeps Table
5.4 from rising; if neither does, the CLIP or the world is.
Needs ``kedro run`` (the default pipeline) first. Prints JSON and a markdown table.

    OMP_NUM_THREADS=2 python benchmarks/report_description_control.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _project import add_project_arguments, emit_report, load_manifest, load_parameters
from seg_pipelines.datasets.synthetic.concepts import CONCEPT_BY_NAME, description_agreement, world_prompt_set
from seg_pipelines.experiments import attribute_selection as nodes
from seg_pipelines.prompts.cleaning import indefinite_article
from seg_pipelines.prompts.prompt_set import BASELINE_TEMPLATE, build_prompt_set
from seg_pipelines.statistics import paired_comparison

WORLD_KEYS = {"color": "colour", "shape": "shape", "size": "size", "texture": "texture", "material": "material"}


def world_sentence(class_name: str, attribute: str) -> str:
    """``"a lime is green."``: the world's attribute word in the LLM answers' sentence form."""
    concept = CONCEPT_BY_NAME.get(class_name)
    word = concept.attribute_words().get(WORLD_KEYS[attribute]) if concept else None
    article = indefinite_article(class_name)
    if not word:
        return BASELINE_TEMPLATE.format(class_name=class_name, article=article)
    return f"{article} {class_name} is {word}."


def run(args: argparse.Namespace) -> dict:
    project = Path(args.project).resolve()
    params = json.loads(json.dumps(load_parameters(project, args.env)["lsmseg_attribute_selection"]))
    params["scoring"]["mode"] = "zero_shot"
    manifest = load_manifest(project)
    clip_config = json.loads((project / "data/06_models/tiny_clip_config.json").read_text())
    scorer = nodes.build_attribute_scorer(manifest, str(project / "data/06_models/tiny_clip.pt"), clip_config, params)
    generated = json.loads((project / "data/02_intermediate/attribute_descriptions.json").read_text())
    label = args.llm or next(iter(generated["llms"]))
    descriptions = generated["llms"][label]["descriptions"]
    names = scorer.class_names

    def average(scores: dict[str, float]) -> float:
        return float(sum(scores.values()) / len(scores))

    start = time.perf_counter()

    def llm_prompts(combination: list[str]) -> dict[str, str]:
        """As Table 5.3 builds them: same builder, same CLIP token budget; ``[]`` is the template."""
        return build_prompt_set(descriptions, combination, names, max_tokens=scorer.context_length - 2)

    rows: dict[str, dict[str, float]] = {"template": scorer.evaluate(llm_prompts([]))}
    for attribute in args.attributes:
        rows[f"llm {attribute}"] = scorer.evaluate(llm_prompts([attribute]))
        rows[f"world {attribute}"] = scorer.evaluate({n: world_sentence(n, attribute) for n in names})
    rows["world all"] = scorer.evaluate(world_prompt_set(names))
    combinations = {}
    if args.combinations:
        world = {n: {a: world_sentence(n, a) for a in args.attributes} for n in names}
        for source, answers in (("llm", descriptions), ("world", world)):
            combinations[source] = greedy_control(scorer, params, answers, args.attributes, args.combinations)
    agreement = description_agreement(
        {n: {a: t for a, t in d.items() if a in args.attributes} for n, d in descriptions.items()}
    )
    template = average(rows["template"])
    return {
        "llm": label,
        "model": generated["llms"][label].get("model"),
        "rows": {k: {"avg": average(v), "vs_template": average(v) - template, **v} for k, v in rows.items()},
        "llm_world_agreement": {k: v["hit_rate"] for k, v in agreement.items()},
        "combinations": combinations,
        "scoring_seconds": time.perf_counter() - start,
    }


def greedy_control(scorer, params: dict, answers: dict, attributes: list[str], depth: int) -> list[dict]:
    """The best single attribute of ``answers`` and its greedy extensions (up to ``depth`` attributes),
    composed and budgeted as the pipeline does, each scored on the selection half's image folds and
    compared with the step before (paired over folds, the pipeline's noise rule)."""
    seeds, rule = nodes.noise_settings(params)
    composition = str(params.get("prompt_composition", "description"))

    def folds(combination: list[str]) -> list[float]:
        composed = nodes._prompts(scorer, [answers], combination, composition=composition)
        selection, _ = scorer.evaluate_split(nodes._texts(composed), seeds)
        return [sum(fold.values()) / len(fold) for fold in selection]

    singles = {a: folds([a]) for a in attributes}
    ranked = sorted(attributes, key=lambda a: -sum(singles[a]) / len(singles[a]))
    steps = [{"combination": ranked[0], "avg": sum(singles[ranked[0]]) / len(seeds), "vs_previous": ""}]
    previous = singles[ranked[0]]
    for size in range(2, min(depth, len(ranked)) + 1):
        current = folds(ranked[:size])
        comparison = paired_comparison(current, previous, rule)
        steps.append(
            {
                "combination": " + ".join(ranked[:size]),
                "avg": sum(current) / len(current),
                "vs_previous": comparison.describe(),
                "direction": comparison.direction,
            }
        )
        previous = current
    return steps


def markdown(report: dict) -> str:
    benchmarks = [k for k in next(iter(report["rows"].values())) if k not in ("avg", "vs_template")]
    lines = [
        f"Zero-shot attribute scoring control, LLM `{report['llm']}` (mIoU %)",
        "",
        "| prompts | " + " | ".join(benchmarks) + " | avg. | vs. template |",
        "|---|" + "---|" * (len(benchmarks) + 2),
    ]
    for name, row in report["rows"].items():
        lines.append(
            f"| {name} | "
            + " | ".join(f"{row[b]:.1f}" for b in benchmarks)
            + f" | {row['avg']:.2f} | {row['vs_template']:+.2f} |"
        )
    lines.append("")
    lines.append(
        "LLM descriptions naming the world's attribute word: "
        + ", ".join(f"{k} {v:.0%}" for k, v in report["llm_world_agreement"].items())
    )
    for source, steps in report.get("combinations", {}).items():
        lines += ["", f"Greedy combinations of the {source}'s descriptions (selection folds):", ""]
        lines += ["| combination | avg. | vs. the step before |", "|---|---|---|"]
        lines += [f"| {step['combination']} | {step['avg']:.2f} | {step['vs_previous']} |" for step in steps]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_project_arguments(parser)
    parser.add_argument("--llm", default=None, help="label of the LLM in attribute_descriptions.json (default: first)")
    parser.add_argument(
        "--attributes", nargs="+", default=["color", "shape", "size", "texture", "material"], choices=sorted(WORLD_KEYS)
    )
    parser.add_argument(
        "--combinations", type=int, default=0, help="greedy combinations up to this many attributes (0: none)"
    )
    args = parser.parse_args()
    report = run(args)
    emit_report(report, markdown(report), args.output)


if __name__ == "__main__":
    main()

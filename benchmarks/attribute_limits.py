"""Which of LLM, scorer and CLIP limits attribute selection (issue 13): Table 5.3 rows, in one
process sharing the image features, for

* every LLM whose descriptions the pipeline saved (``data/02_intermediate/attribute_descriptions.json``),
* an **oracle LLM**: the synthetic world's own rendered attribute words as one-sentence descriptions
  ("A lime is green.", "A lime is round.", ...; ``all`` = the world's full description
  "A lime is small, round and green."). Classes without such a word (stuff has no shape/size,
  ``background``) keep the template sentence, so they are identical to the template row.

If the oracle does not beat the template beyond noise through the same scorer, the scorer + CLIP
cannot use attribute words, whatever the LLM writes. Both prompt compositions are scored.
Cells: mean ± std over the replicates, verdict by ``seg_pipelines.statistics.paired_comparison``
(the pipeline's own :func:`attribute_selection.score_attributes`).

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/attribute_limits.py --mode zero_shot
    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/attribute_limits.py --mode finetune \
        --steps 30 --batch-size 8 --max-train 128 --max-images 96 --replicates 3
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import yaml

from seg_pipelines.datasets.synthetic.concepts import CONCEPT_BY_NAME
from seg_pipelines.experiments import attribute_selection as selection

ORACLE_KEYS = {"color": "colour", "shape": "shape", "size": "size", "texture": "texture", "material": "material"}


def oracle_descriptions(class_names) -> dict[str, dict[str, str]]:
    """{class: {attribute: "A <class> is <world word>."}}; the template where the world has no word."""
    out = {}
    for name in class_names:
        concept = CONCEPT_BY_NAME.get(name)
        words = concept.attribute_words() if concept is not None else {}
        template = f"a photo of a {name}."
        row = {}
        for attribute, key in ORACLE_KEYS.items():
            word = words.get(key)
            article = "An" if name[0] in "aeiou" else "A"
            row[attribute] = f"{article} {name} is {word}." if word else template
        row["all"] = (concept.describe()[0].upper() + concept.describe()[1:] + ".") if concept is not None else template
        out[name] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["zero_shot", "finetune"], default="zero_shot")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-train", type=int, default=256)
    parser.add_argument("--max-images", type=int, default=None, help="evaluation images per benchmark")
    parser.add_argument("--replicates", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--llms", nargs="*", default=None, help="LLM labels to score (default: all saved)")
    parser.add_argument("--attributes", nargs="*", default=None, help="LLM attributes to score (default: all)")
    parser.add_argument("--head", default="{}", help="head sizes as JSON ({} = the default head)")
    parser.add_argument("--compositions", nargs="*", default=["description", "template_description"])
    parser.add_argument("--out", default=None, help="write the JSON here too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = yaml.safe_load(Path("conf/base/parameters_lsmseg_attribute_selection.yml").read_text())
    params = params["lsmseg_attribute_selection"]
    params["scoring"].update(mode=args.mode, num_threads=args.threads)
    params["scoring"]["finetune"].update(steps=args.steps, batch_size=args.batch_size, max_train_images=args.max_train)
    params["scoring"]["head"] = json.loads(args.head)
    params["max_images"] = args.max_images
    params["noise"] = {"replicates": args.replicates, "rule": "2se"}
    manifest = json.loads(Path("data/01_raw/dataset_manifest.json").read_text())
    config = json.loads(Path("data/06_models/tiny_clip_config.json").read_text())
    start = time.perf_counter()
    scorer = selection.build_attribute_scorer(manifest, "data/06_models/tiny_clip.pt", config, params)
    build_seconds = time.perf_counter() - start
    saved = json.loads(Path("data/02_intermediate/attribute_descriptions.json").read_text())
    entries = {"oracle (world words)": {"descriptions": oracle_descriptions(scorer.class_names)}}
    entries.update({k: v for k, v in saved["llms"].items() if args.llms is None or k in args.llms})
    result = {
        "mode": args.mode,
        "finetune": {"steps": args.steps, "batch_size": args.batch_size, "max_train_images": args.max_train}
        if args.mode == "finetune"
        else None,
        "max_images": args.max_images,
        "head": json.loads(args.head),
        "replicates": args.replicates,
        "threads": args.threads,
        "build_seconds": round(build_seconds, 1),
        "tables": {},
    }
    for composition in args.compositions:
        for label, entry in entries.items():
            attributes = list(ORACLE_KEYS) + ["all"] if label.startswith("oracle") else saved["attributes"]
            if args.attributes is not None and not label.startswith("oracle"):
                attributes = [a for a in attributes if a in args.attributes]
            start = time.perf_counter()
            table, _ = selection.score_attributes(
                scorer,
                {"llms": {label: entry}, "attributes": attributes},
                {**params, "prompt_composition": composition},
            )
            seconds = time.perf_counter() - start
            keep = ["attribute", "avg.", "avg. std", "vs. template", "verdict"]
            keep += [c for c in ("seen avg.", "unseen avg.") if c in table.columns]
            rows = table[keep].round(2).to_dict(orient="records")
            result["tables"][f"{label} | {composition}"] = {"seconds": round(seconds, 1), "rows": rows}
            print(f"\n## {label} | {composition} ({seconds:.0f} s)")
            print(table[keep].round(2).to_string(index=False), flush=True)
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()

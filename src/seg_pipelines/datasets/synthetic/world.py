"""Write the synthetic world to disk in the ADE20K SceneParsing (``ADEChallengeData2016``) layout.

::

    <root>/ADEChallengeData2016/
        images/{training,validation}/ADE_{train,val}_%08d.jpg        JPEG quality 95
        annotations/{training,validation}/ADE_{train,val}_%08d.png   uint8: 0 unlabelled, k = concept k-1
        objectInfo150.txt    Idx Ratio Train Val Name (one row per concept; Ratio = train pixel ratio)
        captions.jsonl       one caption per image (unseen concepts never named)
        vocabularies.json    benchmark vocabularies (names + concept -> class lookup + ignore value)
        world.json           seed, sizes, concept table, frequencies, head/mid/tail groups (written last)

Every image is rendered from its own generator seeded by ``(seed, split, index)``, so the world is
deterministic and any image can be re-rendered alone.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from seg_pipelines.datasets.synthetic.concepts import (
    CONCEPTS,
    CONTEXT_RULES,
    NUM_CONCEPTS,
    UNSEEN_IDS,
    UNSEEN_NAMES,
    build_vocabularies,
)
from seg_pipelines.datasets.synthetic.render import render_scene

#: Bump when rendering changes, so :func:`ensure_synthetic_world` re-renders stale worlds.
WORLD_VERSION = 1
DATA_FOLDER = "ADEChallengeData2016"
SPLITS = {"train": ("training", "train", 0), "val": ("validation", "val", 1)}  # folder, file tag, rng code
JPEG_QUALITY = 95  # with 4:4:4 chroma (no subsampling): sharp colour edges at 64–128 px
#: Every ``UNSEEN_VAL_STRIDE``-th validation image is forced to contain an unseen concept (cycled).
UNSEEN_VAL_STRIDE = 2


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of image ``index`` of ``split``: independent of every other image."""
    return np.random.default_rng([int(seed), SPLITS[split][2], int(index)])


def required_concept(split: str, index: int) -> int | None:
    """Unseen concept forced into validation image ``index`` (so every unseen class is evaluated)."""
    if split != "val" or index % UNSEEN_VAL_STRIDE:
        return None
    return UNSEEN_IDS[(index // UNSEEN_VAL_STRIDE) % len(UNSEEN_IDS)]


def render_sample(seed: int, split: str, index: int, image_size: int) -> tuple[np.ndarray, np.ndarray, str, list[int]]:
    """Render image ``index`` of ``split`` exactly as :func:`generate_synthetic_world` writes it."""
    return render_scene(scene_rng(seed, split, index), image_size, required=required_concept(split, index))


def sample_name(split: str, index: int) -> str:
    """``ADE_train_00000001`` style file stem (1-based, like ADE20K)."""
    return f"ADE_{SPLITS[split][1]}_{index + 1:08d}"


def frequency_groups(pixel_ratio: np.ndarray) -> dict[str, list[int]]:
    """Head / mid / tail concept ids: thirds of the concepts sorted by pixel ratio (thesis Table 4.8)."""
    order = [int(i) for i in np.argsort(-pixel_ratio, kind="stable")]
    third = int(np.ceil(len(order) / 3))
    return {"head": order[:third], "mid": order[third : 2 * third], "tail": order[2 * third :]}


def generate_synthetic_world(
    root: str | Path,
    *,
    seed: int = 0,
    image_size: int = 96,
    n_train: int = 2000,
    n_val: int = 500,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Render and write the whole world under ``root``; return a summary (paths, counts, seconds)."""
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32 px, got {image_size}")
    if n_train < 1 or n_val < 1:
        raise ValueError(f"n_train and n_val must be positive, got {n_train} and {n_val}")
    start = time.perf_counter()
    data_root = Path(root) / DATA_FOLDER
    world_file = data_root / "world.json"
    if world_file.exists():
        world_file.unlink()  # world.json marks a complete world: remove it until this one is done
    pixel_counts = {split: np.zeros(NUM_CONCEPTS, np.int64) for split in SPLITS}
    image_counts = {split: np.zeros(NUM_CONCEPTS, np.int64) for split in SPLITS}
    captions_path = data_root / "captions.jsonl"
    data_root.mkdir(parents=True, exist_ok=True)
    with captions_path.open("w", encoding="utf-8") as captions:
        for split, count in (("train", n_train), ("val", n_val)):
            folder = SPLITS[split][0]
            image_dir = data_root / "images" / folder
            label_dir = data_root / "annotations" / folder
            image_dir.mkdir(parents=True, exist_ok=True)
            label_dir.mkdir(parents=True, exist_ok=True)
            for stale in [*image_dir.glob("ADE_*.jpg"), *label_dir.glob("ADE_*.png")]:
                stale.unlink()  # a previous, larger world must not leave samples behind
            indices = range(count)
            if show_progress:
                from tqdm.auto import tqdm

                indices = tqdm(indices, desc=f"synthetic world ({split})", unit="img")
            for index in indices:
                image, label, caption, present = render_sample(seed, split, index, image_size)
                stem = sample_name(split, index)
                Image.fromarray(image).save(image_dir / f"{stem}.jpg", quality=JPEG_QUALITY, subsampling=0)
                Image.fromarray((label + 1).astype(np.uint8)).save(label_dir / f"{stem}.png")  # 0 = unlabelled
                counts = np.bincount(label.ravel(), minlength=NUM_CONCEPTS)
                pixel_counts[split] += counts
                image_counts[split] += counts > 0
                record = {
                    "split": split,
                    "image": f"images/{folder}/{stem}.jpg",
                    "caption": caption,
                    "concepts": present,
                }
                captions.write(json.dumps(record) + "\n")

    train_ratio = pixel_counts["train"] / max(1, pixel_counts["train"].sum())
    object_info = data_root / "objectInfo150.txt"
    rows = ["Idx\tRatio\tTrain\tVal\tName"]
    for concept in CONCEPTS:
        rows.append(
            f"{concept.id + 1}\t{train_ratio[concept.id]:.6f}\t{image_counts['train'][concept.id]}\t"
            f"{image_counts['val'][concept.id]}\t{concept.name}"
        )
    object_info.write_text("\n".join(rows) + "\n", encoding="utf-8")

    vocabularies_path = data_root / "vocabularies.json"
    vocabularies = build_vocabularies()
    vocabularies_path.write_text(json.dumps({name: v.to_dict() for name, v in vocabularies.items()}, indent=1))

    groups = frequency_groups(train_ratio)
    group_of = {concept_id: group for group, ids in groups.items() for concept_id in ids}
    concepts = []
    for concept in CONCEPTS:
        record = concept.to_dict()
        record.update(
            description=concept.describe(),
            pixel_ratio=float(train_ratio[concept.id]),
            train_images=int(image_counts["train"][concept.id]),
            val_images=int(image_counts["val"][concept.id]),
            val_pixels=int(pixel_counts["val"][concept.id]),
            group=group_of[concept.id],
        )
        concepts.append(record)
    world = {
        "version": WORLD_VERSION,
        "seed": int(seed),
        "image_size": int(image_size),
        "n_train": int(n_train),
        "n_val": int(n_val),
        "num_concepts": NUM_CONCEPTS,
        "label_encoding": "uint8 PNG: 0 = unlabelled, k = concept id k-1 (reduce_zero_label)",
        "unseen": list(UNSEEN_NAMES),
        "groups": {group: [CONCEPTS[i].name for i in ids] for group, ids in groups.items()},
        "context_rules": {name: list(hosts) for name, hosts in CONTEXT_RULES.items()},
        "concepts": concepts,
    }
    world_file.write_text(json.dumps(world, indent=1))
    return {
        "root": str(Path(root)),
        "data_root": str(data_root),
        "object_info": str(object_info),
        "captions": str(captions_path),
        "vocabularies": str(vocabularies_path),
        "world": str(world_file),
        "n_train": int(n_train),
        "n_val": int(n_val),
        "num_concepts": NUM_CONCEPTS,
        "image_size": int(image_size),
        "seed": int(seed),
        "seconds": round(time.perf_counter() - start, 3),
    }


def ensure_synthetic_world(root: str | Path, **settings: Any) -> dict[str, Any]:
    """Generate the world under ``root`` unless a complete one with the same settings is there.

    ``settings`` are :func:`generate_synthetic_world`'s keyword arguments; the summary of an existing
    world has ``"reused": True``.
    """
    settings = dict(settings)
    show_progress = bool(settings.pop("show_progress", False))
    wanted = {"seed": 0, "image_size": 96, "n_train": 2000, "n_val": 500}
    unknown = set(settings) - set(wanted)
    if unknown:
        raise TypeError(f"unknown synthetic world settings {sorted(unknown)}; known: {sorted(wanted)}")
    wanted.update({key: int(value) for key, value in settings.items()})
    data_root = Path(root) / DATA_FOLDER
    world_file = data_root / "world.json"
    if world_file.is_file():
        try:
            world = json.loads(world_file.read_text())
        except json.JSONDecodeError:
            world = {}
        if world.get("version") == WORLD_VERSION and all(world.get(k) == v for k, v in wanted.items()):
            return {
                "root": str(Path(root)),
                "data_root": str(data_root),
                "world": str(world_file),
                "object_info": str(data_root / "objectInfo150.txt"),
                "captions": str(data_root / "captions.jsonl"),
                "vocabularies": str(data_root / "vocabularies.json"),
                "num_concepts": world["num_concepts"],
                **wanted,
                "reused": True,
            }
    summary = generate_synthetic_world(root, show_progress=show_progress, **wanted)
    summary["reused"] = False
    return summary

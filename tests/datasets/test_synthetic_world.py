"""The synthetic world: determinism, long tail, context, unseen concepts, vocabularies, on-disk round trip."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from seg_pipelines.datasets.synthetic import (
    CONCEPTS,
    build_vocabularies,
    generate_synthetic_world,
    render_scene,
)
from seg_pipelines.datasets.synthetic.concepts import (
    CONCEPT_BY_NAME,
    NUM_CONCEPTS,
    STUFF_IDS,
    THING_IDS,
    UNSEEN_IDS,
    UNSEEN_NAMES,
    VOC_THINGS,
)
from seg_pipelines.datasets.synthetic.world import ensure_synthetic_world, render_sample

SMALL = dict(seed=3, image_size=64, n_train=24, n_val=20)  # n_val = 2 x 10 unseen: each forced once


@pytest.fixture(scope="module")
def world_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic_world")
    generate_synthetic_world(root, **SMALL)
    return root


@pytest.fixture(scope="module")
def rendered_scenes() -> list[tuple]:
    """400 in-memory scenes at 48 px (with their stuff layouts) for the statistical checks."""
    return [render_scene(np.random.default_rng([7, index]), 48, return_stuff=True) for index in range(400)]


def _unseen_pattern() -> re.Pattern:
    return re.compile(r"\b(" + "|".join(re.escape(name) for name in UNSEEN_NAMES) + r")\b", re.IGNORECASE)


# -- the concept table ------------------------------------------------------------------------


def test_concept_table_size_and_unseen_set():
    assert 40 <= NUM_CONCEPTS <= 60
    assert 8 <= len(UNSEEN_IDS) <= 12
    assert [c.id for c in CONCEPTS] == list(range(NUM_CONCEPTS))
    assert set(STUFF_IDS) | set(THING_IDS) == set(range(NUM_CONCEPTS))
    assert CONCEPT_BY_NAME["lime"].describe() == "a lime is small, round, green and smooth"
    assert CONCEPT_BY_NAME["boat"].hosts == ("water",)
    assert set(CONCEPT_BY_NAME["cloud"].hosts) == {"sky"}


def test_render_scene_outputs():
    image, label, caption, present = render_scene(np.random.default_rng(0), 80)
    assert image.shape == (80, 80, 3) and image.dtype == np.uint8
    assert label.shape == (80, 80) and label.dtype == np.int64
    assert present == sorted(np.unique(label).tolist())
    assert 0 <= label.min() and label.max() < NUM_CONCEPTS  # every pixel is labelled
    assert isinstance(caption, str) and caption.endswith(".") and len(caption.split()) >= 3


# -- determinism ------------------------------------------------------------------------------


def _file_bytes(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_same_seed_gives_identical_bytes(tmp_path, world_root):
    generate_synthetic_world(tmp_path / "again", **SMALL)
    first, second = _file_bytes(world_root), _file_bytes(tmp_path / "again")
    assert len(first) == 2 * (SMALL["n_train"] + SMALL["n_val"]) + 4  # jpg+png per image, 4 metadata files
    assert first == second


def test_different_seed_differs():
    a_image, a_label, _, _ = render_sample(0, "train", 5, 64)
    b_image, b_label, _, _ = render_sample(1, "train", 5, 64)
    assert not np.array_equal(a_label, b_label) or not np.array_equal(a_image, b_image)
    a_again, _, _, _ = render_sample(0, "train", 5, 64)
    assert np.array_equal(a_image, a_again)


# -- long tail --------------------------------------------------------------------------------


def test_thing_occurrences_are_zipf_like(rendered_scenes):
    occurrences = np.zeros(NUM_CONCEPTS)
    for _, _label, _, present, _ in rendered_scenes:
        occurrences[present] += 1
    things = np.asarray(THING_IDS)  # already in Zipf-rank order
    counts = occurrences[things]
    ranked = np.sort(counts)[::-1]
    ranks = np.arange(1, len(ranked) + 1)
    slope = np.polyfit(np.log(ranks[ranked > 0]), np.log(ranked[ranked > 0]), 1)[0]
    assert -3.0 < slope < -0.8  # Zipf-like: log-count falls roughly linearly in log-rank
    assert ranked[:5].sum() > 10 * ranked[-5:].sum()  # head >> tail
    # The designed rank order survives the context constraints (rank correlation clearly positive).
    design_rank = np.arange(len(things))
    rank_of_count = np.argsort(np.argsort(-counts))
    correlation = np.corrcoef(design_rank, rank_of_count)[0, 1]
    assert correlation > 0.5


def test_pixel_ratio_head_dwarfs_tail(rendered_scenes):
    pixels = np.zeros(NUM_CONCEPTS)
    for _, label, _, _, _ in rendered_scenes:
        pixels += np.bincount(label.ravel(), minlength=NUM_CONCEPTS)
    ratio = np.sort(pixels / pixels.sum())[::-1]
    third = NUM_CONCEPTS // 3
    assert ratio[:third].mean() > 50 * ratio[-third:].mean()
    assert ratio[0] > 0.1  # the head class (sky) covers over a tenth of all pixels


# -- context ----------------------------------------------------------------------------------


def test_things_sit_on_their_host_stuff(rendered_scenes):
    checked = 0
    for _, label, _, present, stuff in rendered_scenes:
        for concept_id in present:
            concept = CONCEPTS[concept_id]
            if concept.kind != "thing":
                continue
            hosts = [CONCEPT_BY_NAME[name].id for name in concept.hosts]
            assert np.isin(stuff[label == concept_id], hosts).all(), concept.name
            checked += 1
    assert checked > 500


def test_boats_only_with_water_and_touching_it(rendered_scenes):
    boat, water = CONCEPT_BY_NAME["boat"].id, CONCEPT_BY_NAME["water"].id
    images_with_boat = 0
    for _, label, _, present, _ in rendered_scenes:
        if boat not in present:
            continue
        images_with_boat += 1
        assert water in present
        mask = label == boat
        grown = mask.copy()
        grown[1:] |= mask[:-1]
        grown[:-1] |= mask[1:]
        grown[:, 1:] |= mask[:, :-1]
        grown[:, :-1] |= mask[:, 1:]
        assert (label[grown & ~mask] == water).any()
    assert images_with_boat >= 10


# -- unseen concepts --------------------------------------------------------------------------


def test_unseen_names_never_in_captions(rendered_scenes, world_root):
    pattern = _unseen_pattern()
    captions = [caption for _, _, caption, _, _ in rendered_scenes]
    records = [
        json.loads(line) for line in (world_root / "ADEChallengeData2016" / "captions.jsonl").read_text().splitlines()
    ]
    assert len(records) == SMALL["n_train"] + SMALL["n_val"]
    captions += [record["caption"] for record in records]
    assert not [caption for caption in captions if pattern.search(caption)]
    # ... while unseen concepts are in the pictures (described by attributes only).
    assert sum(any(i in UNSEEN_IDS for i in present) for _, _, _, present, _ in rendered_scenes) > 20
    # Seen class names do appear, and attribute words appear more often than names.
    joined = " ".join(captions)
    assert len(re.findall(r"\bcloud\b", joined)) > 10
    assert len(re.findall(r"\b(round|striped|white|green|red|small|large)\b", joined)) > len(
        re.findall(r"\bcloud\b", joined)
    )


def test_every_unseen_concept_is_in_validation_images(world_root):
    from seg_pipelines.datasets.factory import create_reader

    reader = create_reader("synthetic", world_root)
    present = set()
    for sample in reader.list_samples("val"):
        present |= set(np.unique(reader.load_label(sample)).tolist())
    assert set(UNSEEN_IDS) <= present
    world = reader.world
    assert all(world["concepts"][i]["val_images"] >= 1 for i in UNSEEN_IDS)


# -- vocabularies -----------------------------------------------------------------------------


def test_vocabularies_are_consistent():
    vocabularies = build_vocabularies()
    assert set(vocabularies) == {"syn150", "syn847", "synpc59", "synpc459", "synvoc20", "synvoc21b", "seen"}
    for name, vocabulary in vocabularies.items():
        lookup = vocabulary.lookup
        assert lookup.shape == (NUM_CONCEPTS,)
        valid = lookup != vocabulary.ignore_index
        assert ((lookup[valid] >= 0) & (lookup[valid] < vocabulary.num_classes)).all(), name
        assert set(lookup[valid].tolist()) == set(range(vocabulary.num_classes)), name  # every class used
        assert len(set(vocabulary.class_names)) == vocabulary.num_classes, name
    assert vocabularies["syn847"].num_classes == NUM_CONCEPTS and vocabularies["syn847"].ignore_index == 65535
    assert vocabularies["synpc459"].ignore_index == vocabularies["synpc459"].num_classes == NUM_CONCEPTS
    assert vocabularies["syn150"].num_classes == NUM_CONCEPTS - 5  # five merges into parents
    syn150 = vocabularies["syn150"]
    assert syn150.lookup[CONCEPT_BY_NAME["brick wall"].id] == syn150.lookup[CONCEPT_BY_NAME["wall"].id]
    assert vocabularies["synpc59"].num_classes == 36
    voc20, voc21 = vocabularies["synvoc20"], vocabularies["synvoc21b"]
    assert voc20.class_names == VOC_THINGS and voc21.class_names == VOC_THINGS + ("background",)
    assert (voc20.lookup[list(STUFF_IDS)] == 255).all()
    assert (voc21.lookup[list(STUFF_IDS)] == 20).all()
    seen = vocabularies["seen"]
    assert (seen.lookup[list(UNSEEN_IDS)] == 255).all()
    assert seen.num_classes == NUM_CONCEPTS - len(UNSEEN_IDS)
    mapped = voc21.map_labels(np.array([[CONCEPT_BY_NAME["boat"].id, CONCEPT_BY_NAME["sky"].id, 255]]))
    assert mapped.tolist() == [[VOC_THINGS.index("boat"), 20, 255]]


# -- on disk ----------------------------------------------------------------------------------


def test_layout_and_object_info(world_root):
    data = world_root / "ADEChallengeData2016"
    assert (data / "images" / "training" / "ADE_train_00000001.jpg").is_file()
    assert (data / "annotations" / "validation" / f"ADE_val_{SMALL['n_val']:08d}.png").is_file()
    lines = (data / "objectInfo150.txt").read_text().splitlines()
    assert lines[0] == "Idx\tRatio\tTrain\tVal\tName"
    rows = [line.split("\t") for line in lines[1:]]
    assert [int(row[0]) for row in rows] == list(range(1, NUM_CONCEPTS + 1))
    assert [row[4] for row in rows] == [c.name for c in CONCEPTS]
    assert sum(float(row[1]) for row in rows) == pytest.approx(1.0, abs=1e-4)
    assert all(int(row[2]) <= SMALL["n_train"] and int(row[3]) <= SMALL["n_val"] for row in rows)
    world = json.loads((data / "world.json").read_text())
    assert {k: world[k] for k in SMALL} == SMALL
    assert sorted(sum(world["groups"].values(), [])) == sorted(c.name for c in CONCEPTS)


def test_round_trip_through_reader(world_root):
    from seg_pipelines.datasets.base import READERS
    from seg_pipelines.datasets.factory import create_reader

    reader = create_reader("synthetic", world_root)
    assert isinstance(reader, READERS["ade20k_150"])
    assert reader.class_names == [c.name for c in CONCEPTS] and reader.ignore_index == 255
    samples = reader.list_samples("val")
    assert len(samples) == SMALL["n_val"] and len(reader.list_samples("train")) == SMALL["n_train"]
    for index, sample in enumerate(samples):
        image, label = reader.load_pair(sample)
        expected_image, expected_label, caption, _ = render_sample(SMALL["seed"], "val", index, SMALL["image_size"])
        assert np.array_equal(label, expected_label)  # PNG is lossless, reduce_zero_label undoes the +1
        assert np.abs(image.astype(int) - expected_image).mean() < 4.0  # JPEG q95
        assert reader.captions("val")[index]["caption"] == caption
    fine = create_reader("synthetic", world_root, vocabulary="syn847")
    assert fine.ignore_index == 65535 and fine.num_classes == NUM_CONCEPTS
    voc = create_reader("synthetic", world_root, vocabulary="synvoc21b")
    label = voc.load_label(samples[0])
    assert voc.num_classes == 21 and set(np.unique(label).tolist()) <= set(range(21))
    assert reader.vocabulary("seen").num_classes == NUM_CONCEPTS - len(UNSEEN_IDS)
    # every vocabulary maps each concept pixel through its lookup, whatever its ignore value: PC-459's
    # ignore value (the number of classes) is also the raw value of the last concept
    last = NUM_CONCEPTS - 1
    raw = np.array([[0, last + 1], [1, 255]])  # void, the last concept, concept 0, raw 255
    for name in ("syn847", "synpc459", "syn150"):
        vocabulary = create_reader("synthetic", world_root, vocabulary=name)
        lookup = vocabulary.vocabulary(name).lookup
        ignore = vocabulary.ignore_index
        assert vocabulary.decode_label(raw).tolist() == [[ignore, lookup[last]], [lookup[0], ignore]], name
    pc = create_reader("synthetic", world_root, vocabulary="synpc459")
    for sample in samples:
        np.testing.assert_array_equal(
            pc.load_label(sample) == pc.ignore_index, fine.load_label(sample) == fine.ignore_index
        )


def test_ensure_reuses_matching_world(world_root):
    world_file = world_root / "ADEChallengeData2016" / "world.json"
    before = world_file.stat().st_mtime_ns
    summary = ensure_synthetic_world(world_root, **SMALL)
    assert summary["reused"] is True and world_file.stat().st_mtime_ns == before


def test_world_overview_figure(world_root):
    from matplotlib.colors import to_rgb

    from seg_pipelines.datasets.synthetic import plot_world_overview
    from seg_pipelines.datasets.synthetic.figures import concept_palette
    from seg_pipelines.datasets.synthetic.reader import SyntheticReader

    figure = plot_world_overview(world_root, n_images=4)
    histogram = figure.axes[-1]
    assert len(figure.axes) == 4 + 1  # images, histogram (the class legend is the figure's)
    assert histogram.get_yscale() == "log"
    assert len(histogram.patches) == NUM_CONCEPTS
    # the legend: every class the four labels contain, in the colours their label panels show
    reader = SyntheticReader(world_root)
    labels = [reader.load_pair(sample)[1] for sample in reader.list_samples("val")[:4]]
    present = sorted({int(c) for label in labels for c in np.unique(label[label != reader.ignore_index])})
    (legend,) = figure.legends
    entries = {t.get_text(): to_rgb(h.get_facecolor()) for t, h in zip(legend.get_texts(), legend.legend_handles)}
    assert list(entries) == [reader.concept_names[c] for c in present]
    palette = concept_palette(len(reader.concept_names))
    drawn = figure.axes[0].get_images()[0].get_array()  # image | label of the first sample
    width = labels[0].shape[1]
    first = int(labels[0][0, 0])
    assert tuple(drawn[0, width]) == pytest.approx(tuple(palette[first]))
    assert entries[reader.concept_names[first]] == pytest.approx(tuple(palette[first]))
    import matplotlib.pyplot as plt

    plt.close(figure)

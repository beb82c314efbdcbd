"""The data_preparation steps on every real dataset layout: manifest → index → class statistics →
overview figure (the figure once failed on every real layout with imgviz 2's ``label_colormap``)."""

from __future__ import annotations

from pathlib import Path

import imgviz
import numpy as np
import pytest
from matplotlib.figure import Figure

from seg_pipelines import settings
from seg_pipelines.datasets.base import READERS, DatasetError
from seg_pipelines.datasets.index import build_index
from seg_pipelines.datasets.loaders import SegmentationDataset
from seg_pipelines.datasets.overview import label_colormap, label_overlay
from seg_pipelines.experiments.data_preparation import (
    build_prepared_index,
    check_prepared_data,
    compute_statistics,
    plot_overview,
    prepare_raw_dataset,
)
from seg_pipelines.pipelines.prepared_data import PreparedDataCheckHook
from tests.datasets.test_readers import SPEC_IDS, SPECS


def test_label_colormap_is_the_voc_palette_for_any_class_count():
    assert np.array_equal(label_colormap(256), imgviz.label_colormap())  # the palette imgviz ships
    colours = label_colormap(900)
    assert colours.shape == (900, 3) and colours.dtype == np.uint8
    assert len({tuple(c) for c in colours}) == 900  # A-847 / PC-459 ids stay apart


def test_overlay_of_a_847_class_label_keeps_ignored_pixels():
    image = np.full((4, 5, 3), 100, np.uint8)
    label = np.array([[0, 846, 65535, 3, 500]] * 4, dtype=np.int64)
    overlay = label_overlay(image, label, ignore_index=65535)
    assert overlay.shape == image.shape and (overlay[:, 2] == 100).all()
    assert not np.array_equal(overlay[0, 0], overlay[0, 1])


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_preparation_steps_run_on_every_real_layout(spec, tmp_path: Path):
    root = spec.write(tmp_path)
    dataset = {
        "family": spec.family,
        "root": str(root),
        "splits": list(spec.split_sizes),
        "reader_kwargs": spec.reader_kwargs,
    }
    manifest = prepare_raw_dataset(dataset, synthetic_world={})
    assert manifest["num_classes"] == spec.num_classes and manifest["ignore_index"] == spec.ignore_index
    index, report = build_prepared_index(manifest, on_bad_sample="raise")
    assert len(index) == sum(spec.split_sizes.values()) and report["skipped_count"] == 0
    split = "train" if "train" in spec.split_sizes else next(iter(spec.split_sizes))
    statistics, metrics = compute_statistics(index, manifest, {"split": split, "rho": 0.5, "group_size": 3})
    assert len(statistics) == spec.num_classes and metrics["dataset.num_classes"] == spec.num_classes
    figure = plot_overview(manifest, index, statistics, n_images=2)
    assert isinstance(figure, Figure) and len(figure.axes) == 1 + min(2, len(index[index["split"] == "val"]) or 2)


@pytest.mark.parametrize("spec", SPECS, ids=SPEC_IDS)
def test_training_dataset_reads_every_real_layout_through_the_index(spec, tmp_path: Path):
    """The index stores paths as text; the readers get Paths back (COCO-Stuff 10k's ``.mat`` labels
    once failed with ``'str' object has no attribute 'suffix'``)."""
    root = spec.write(tmp_path)
    index, _ = build_index(READERS[spec.family](root, **spec.reader_kwargs), list(spec.split_sizes))
    split = next(iter(spec.split_sizes))
    item = SegmentationDataset(index, split, spec.family, str(root), spec.reader_kwargs)[0]
    assert set(np.unique(np.asarray(item["label"]))) <= set(spec.decoded_values)


def _prepare(spec, tmp_path: Path):
    root = spec.write(tmp_path / spec.family)
    dataset = {"family": spec.family, "root": str(root), "splits": list(spec.split_sizes)}
    manifest = prepare_raw_dataset({**dataset, "reader_kwargs": spec.reader_kwargs}, synthetic_world={})
    index, _ = build_prepared_index(manifest, on_bad_sample="raise")
    split = "train" if "train" in spec.split_sizes else next(iter(spec.split_sizes))
    statistics, _ = compute_statistics(index, manifest, {"split": split, "rho": 0.5, "group_size": 3})
    return manifest, index, statistics


def test_a_previous_datasets_prepared_data_is_refused_beside_a_new_manifest(tmp_path: Path):
    # a data_preparation run that failed after writing the new manifest leaves the old index/statistics
    old, new = SPECS[0], next(s for s in SPECS if s.num_classes != SPECS[0].num_classes)
    _, old_index, old_statistics = _prepare(old, tmp_path)
    new_manifest, new_index, new_statistics = _prepare(new, tmp_path)
    check_prepared_data(new_manifest, new_index, new_statistics)  # one dataset: passes
    rerun = r"rerun `kedro run --pipelines=data_preparation`"
    with pytest.raises(DatasetError, match=rf"outside the manifest's root .*{rerun}"):
        check_prepared_data(new_manifest, index=old_index)
    with pytest.raises(DatasetError, match=rf"class_statistics has {old.num_classes} classes"):
        check_prepared_data(new_manifest, index=new_index, class_statistics=old_statistics)


def test_the_hook_checks_nodes_that_read_the_manifest_with_prepared_data(tmp_path: Path):
    old, new = SPECS[0], next(s for s in SPECS if s.num_classes != SPECS[0].num_classes)
    _, old_index, _ = _prepare(old, tmp_path)
    new_manifest, new_index, _ = _prepare(new, tmp_path)
    hook = PreparedDataCheckHook()
    consistent = {"dataset_manifest": new_manifest, "prepared_index": new_index}
    hook.before_node_run(node=None, catalog=None, inputs=consistent)
    hook.before_node_run(node=None, catalog=None, inputs={"prepared_index": old_index})  # no manifest: nothing to check
    with pytest.raises(DatasetError, match="does not belong to the dataset in dataset_manifest"):
        hook.before_node_run(
            node=None, catalog=None, inputs={"dataset_manifest": new_manifest, "prepared_index": old_index}
        )
    assert any(isinstance(h, PreparedDataCheckHook) for h in settings.HOOKS)

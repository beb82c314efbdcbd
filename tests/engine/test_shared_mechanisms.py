"""One mechanism per concern: head display names, the UperNet stride rule, eq. 4.14 class weights,
the markdown table renderer and the thesis's numbers each have one home that every user reads."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from seg_pipelines import thesis_tables
from seg_pipelines.datasets.statistics import (
    class_weights_from_frequencies as dataset_class_weights,
)
from seg_pipelines.engine import report
from seg_pipelines.engine.tables import markdown_table
from seg_pipelines.experiments import (
    caa_ablations,
    closed_set,
    ecac_ablations,
    efficiency,
    lsmseg_ablations,
)
from seg_pipelines.losses.ecac import class_weights_from_frequencies
from seg_pipelines.models.factory import list_models
from seg_pipelines.models.heads import (
    DECODE_HEADS,
    HEAD_DISPLAY_NAMES,
    THESIS_HEAD_SPELLING,
    default_feature_strides,
    default_output_stride,
    head_display_name,
)
from seg_pipelines.models.segmentor import CLOSED_SET_MODELS, build_segmentor

HARDWARE = {"cpu": "C", "gpu": "G", "torch_threads": "1", "software": "S"}


# --- head display names ---------------------------------------------------------------------------


def test_display_names_cover_every_registered_head_and_thesis_spelling_is_an_override():
    assert set(HEAD_DISPLAY_NAMES) == set(CLOSED_SET_MODELS) == set(DECODE_HEADS)
    assert set(CLOSED_SET_MODELS) <= set(list_models())
    assert set(THESIS_HEAD_SPELLING) <= set(HEAD_DISPLAY_NAMES)
    assert head_display_name("deeplabv3") == "DeepLabV3" and head_display_name("deeplabv3", thesis=True) == "Deeplabv3"
    assert (
        head_display_name("deeplabv3plus", thesis=True) == "DeeplabV3plus"
        and head_display_name("fcn", thesis=True) == "FCN"
    )
    assert head_display_name("not_a_head") == "not_a_head"
    # every user reads the one mapping
    assert closed_set.method_display_name({"name": "deeplabv3plus", "addon": "ecac"}) == "DeepLabV3plus+ECAC"
    assert ecac_ablations.head_label("deeplabv3plus") == "DeeplabV3plus"
    rows = caa_ablations.build_table("3.7", {"model": {"head": "fcn"}}, {"family": "synthetic"}).rows
    assert rows[8:10] == ["Deeplabv3", "Deeplabv3+CAA"] and set(rows) == set(thesis_tables.TABLE_3_7.rows)
    methods = [row["Method"] for row in efficiency.THESIS_TABLES["table_3_6"]["rows"]]
    assert methods[2] == "Deeplabv3 [17]" and methods[4] == "FCN [4] +CAA" and not any("{" in m for m in methods)
    assert efficiency.THESIS_TABLES["table_4_6"]["rows"][8]["Method"] == "DeeplabV3plus"


# --- output stride ----------------------------------------------------------------------------------


def test_upernet_stride_rule_is_one_function_used_by_segmentor_profiling_and_efficiency(monkeypatch):
    assert default_output_stride("upernet") == 32 and default_feature_strides("upernet") == (4, 8, 16, 32)
    assert default_output_stride("fcn") == 8 and default_feature_strides("pspnet") == (4, 8, 8, 8)
    for name in CLOSED_SET_MODELS:
        model = build_segmentor(name, num_classes=3, backbone="resnet_tiny", auxiliary_head=False)
        assert tuple(model.backbone.strides) == default_feature_strides(name)
    seen = []
    from seg_pipelines.models import heads

    def spy(name):
        seen.append(name)
        return (4, 8, 8, 8)

    monkeypatch.setattr(heads, "default_feature_strides", spy)
    from seg_pipelines.engine.profiling import profile_decode_head

    profile_decode_head("upernet", image_size=64)
    efficiency.profile_head_with_addon("upernet", None, image_size=64)
    assert seen == ["upernet", "upernet"]


# --- eq. 4.14 ---------------------------------------------------------------------------------------


def test_class_weights_have_one_implementation():
    frequencies = [0.4, 0.25, 0.15, 0.12, 0.08, 0.0]
    for rho in (0.0, 0.5, 1.0):
        weights = class_weights_from_frequencies(frequencies, rho)
        assert weights.dtype == torch.float32
        expected = torch.as_tensor(dataset_class_weights(np.array(frequencies), rho), dtype=torch.float32)
        assert torch.equal(weights, expected)


# --- the markdown renderer --------------------------------------------------------------------------


def test_markdown_table_renders_frames_rows_index_title_notes_and_escapes():
    frame = pd.DataFrame({"Method": ["FCN", "FCN+CAA"], "mIoU": [36.1, float("nan")], "n": [3, 4]})
    assert markdown_table(frame, decimals=2) == (
        "| Method | mIoU | n |\n|---|---|---|\n| FCN | 36.10 | 3 |\n| FCN+CAA | – | 4 |"
    )
    indexed = frame.set_index("Method")
    text = markdown_table(indexed, index=True, title="## Table 3.2", notes=["3 seeds"], cell=str)
    assert (
        text == "## Table 3.2\n\n| Method | mIoU | n |\n|---|---|---|\n"
        "| FCN | 36.1 | 3 |\n| FCN+CAA | nan | 4 |\n\n- 3 seeds"
    )
    assert (
        markdown_table([("a|b", 0.123456), ("c\nd",)], ["x", "y"])
        == "| x | y |\n|---|---|\n| a\\|b | 0.1235 |\n| c d |  |"
    )
    with pytest.raises(ValueError):
        markdown_table([], [])
    # the table writers are thin callers of it
    assert report.markdown_table(["Method", "mIoU"], [["FCN", 36.1]], 2) == markdown_table(
        [["FCN", 36.1]], ["Method", "mIoU"], decimals=2
    )
    assert (
        efficiency.table_markdown(frame, "T", ["n1"])
        == "### T\n\n"
        + markdown_table(
            frame,
            cell=lambda v: (
                "–" if isinstance(v, float) and math.isnan(v) else (f"{v:.2f}" if isinstance(v, float) else str(v))
            ),
        )
        + "\n\n- n1\n"
    )


# --- the thesis's numbers -----------------------------------------------------------------------------


def test_ablation_and_efficiency_tables_read_the_thesis_tables_module(monkeypatch):
    table = caa_ablations.build_table("3.2", {"model": {"head": "fcn"}}, {"family": "synthetic"})
    assert {row: values["mIoU(%)"] for row, values in table.thesis.items()} == thesis_tables.TABLE_3_2.reference()
    assert table.thesis["CC"] == {"mIoU(%)": 40.39}
    table = ecac_ablations.build_table("4.2", {"model": {"head": "fcn"}, "addon": {}}, {"family": "synthetic"})
    assert {row: values["mIoU(%)"] for row, values in table.thesis.items()} == thesis_tables.TABLE_4_2.reference()
    assert [lsmseg_ablations.TABLES["5.5"].thesis[k]["avg."] for k in ("16", "32")] == [49.1, 49.6]
    # a number changed in the module is the number the table prints
    monkeypatch.setitem(thesis_tables.TABLE_3_7.numbers, "FCN", (1.0, 2.0, 3.0))
    table = caa_ablations.build_table("3.7", {"model": {"head": "fcn"}}, {"family": "synthetic"})
    assert table.thesis["FCN"] == {"ADE20K": 1.0, "COCO-Stuff": 2.0, "Pascal-Context": 3.0}
    for printed in thesis_tables.tables_of("efficiency"):
        ours = efficiency.THESIS_TABLES[printed.key]
        assert ours["value_columns"] == list(printed.value_columns) and ours["caption"] == printed.caption
        for row, thesis_row in zip(ours["rows"], printed.rows, strict=True):
            assert all(
                row[c] == thesis_row[c] or (math.isnan(row[c]) and math.isnan(thesis_row[c]))
                for c in printed.value_columns
            )
    assert efficiency.THESIS_TABLES["table_3_5"]["rows"][0] == {
        "key": "pspnet",
        "Method": "PSPNet [19]",
        "Params(M)": 23.14,
        "FLOPs(G)": 77.71,
        "mIoU (%)": 42.48,
    }


def test_report_reads_thesis_numbers_from_the_module_not_the_section_list(tmp_path, monkeypatch):
    from tests.engine.test_report import shipped_report_config

    config = shipped_report_config()
    sections = [s for chapter in config["chapters"] for s in chapter["sections"]]
    for section in sections:  # no number of the thesis in the YAML: names and references only
        thesis = section.get("thesis") or {}
        names = thesis.get("table") or []  # a REPORT_TABLES name or a list of names
        assert all(isinstance(name, str) for name in (names if isinstance(names, list) else [names]))
        for direction in thesis.get("directions") or []:
            assert not isinstance(direction["thesis"], (int, float)), direction["label"]
    # a chapter with no output at all shrinks to one line per section: give chapter 3 and the
    # efficiency chapter one file each, so their sections (and thesis numbers) are rendered
    reporting = tmp_path / "data/08_reporting"
    for path in ("caa_results_table.md", "efficiency/table_3_6.md", "caa_ablations/table_3_3.md"):
        (reporting / path).parent.mkdir(parents=True, exist_ok=True)
        (reporting / path).write_text("| a |\n|---|\n| 1 |\n")
    markdown, _ = report.build_report(config, {}, tmp_path, HARDWARE)
    # `{tables: <pipeline>}` items: one per thesis table of the pipeline, titled from the module
    assert "#### Table 3.6: training and inference time ± CAA\n\n| a |" in markdown
    assert "#### Table 3.3: intra / inter / both\n\n| a |" in markdown
    assert "- Table 3.2: baseline / CC / SA / CC+SA (`**/*table_3_2[._]*md`)" in markdown
    assert "| FCN+CAA | ResNet50 | 43.12 (+7.02) | 35.23 (+4.37) | 50.82 (+5.06) |" in markdown
    assert "| CC − Baseline (Table 3.2) | +4.29 | not produced yet | – |" in markdown
    assert "| FCN+CAA training-time overhead (ratio − 1, Table 3.6) | +0.23 | not produced yet | – |" in markdown
    monkeypatch.setitem(thesis_tables.TABLE_3_2.numbers, "CC", (37.10,))  # references() reads the table
    markdown, _ = report.build_report(config, {}, tmp_path, HARDWARE)
    assert "| CC − Baseline (Table 3.2) | +1.00 | not produced yet | – |" in markdown
    with pytest.raises(report.ReportConfigError, match="no such thesis number"):
        report.resolve_reference("thesis:table_3_2.XX", {}, tmp_path, {})

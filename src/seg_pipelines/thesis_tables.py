"""Every thesis table the project reproduces, in one place: id, pipeline, rows, columns and the
thesis's numbers.

Plain data (no project imports; torch-free, so pipeline registration reads it). Numbers are as
printed (mIoU in percent unless the table says otherwise); row labels are the thesis's own and, for
the ablation tables, the rows the experiments build under the default parameters (head names in the
thesis's spelling, :data:`seg_pipelines.models.heads.THESIS_HEAD_SPELLING`;
``tests/pipelines/test_ablation_fanout.py`` checks both against the experiments).

Read by the ablation pipelines (one node per row and seed slot: :func:`tables_of`), the ablation
table specs (:mod:`seg_pipelines.experiments.caa_ablations`,
:mod:`~seg_pipelines.experiments.ecac_ablations`, :mod:`~seg_pipelines.experiments.lsmseg_ablations`),
the efficiency tables (:mod:`seg_pipelines.experiments.efficiency`) and the report
(:mod:`seg_pipelines.engine.report`: ``thesis:<table>.<row>.<column>`` references resolve in
:func:`references`, a section's ``{tables: <pipeline>}`` item lists :func:`tables_of`, a thesis
``table: <name>`` is one of :data:`REPORT_TABLES`).

A new ablation table is one :class:`ThesisTable` here, its variants in the experiment's
``build_table`` and its parameters; the pipeline, the catalog (``{table}`` patterns) and the report
follow from this entry.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MIOU = "mIoU(%)"  # the one measured column of the closed-set ablation tables (3.2-3.4, 4.2-4.5)
AVERAGE = "avg."
# Columns of Tables 5.1 / 5.5-5.7 / 5.10 / 5.11 (CLIP ViT-B/16), "avg." where the table prints it.
BENCHMARKS = ("A-847", "PC-459", "A-150", "PC-59", "VOC", "VOCb")
HEAD_BENCHMARKS = ("ADE20K", "COCO-Stuff", "Pascal-Context")  # Tables 3.7 and 4.7
TABLE_5_11_METHODS = ("ZegFormer [49]", "SimSeg [48]", "CAT-Seg [100]", "LSMSeg (ours)")
TABLE_5_11_DATASETS = ("COCO-Stuff", "PC-59", "A-150")


def table_key(table: str) -> str:
    """``"3.2"`` → ``"table_3_2"``: a table's file, dataset, namespace and metric key."""
    return "table_" + table.replace(".", "_")


def table_5_11_row(method: str, dataset: str) -> str:
    """Row label of Table 5.11: the thesis prints the method with a "Training dataset" column; rows
    must be unique here, so the label carries the dataset too."""
    return f"{method} ({dataset})"


@dataclass(frozen=True)
class ThesisTable:
    """A table of rows × number columns: ``numbers`` maps each row label (in the thesis's order) to
    its values in ``columns`` order; ``title`` is the report's heading after ``Table <id>:``;
    ``caption`` and ``row_header`` as printed, where our table prints them (chapter 5 ablations)."""

    id: str
    pipeline: str
    title: str
    columns: tuple[str, ...]
    numbers: Mapping[str, Sequence[float]]
    caption: str = ""
    row_header: str = ""

    @property
    def key(self) -> str:
        return table_key(self.id)

    @property
    def rows(self) -> tuple[str, ...]:
        return tuple(self.numbers)

    @property
    def thesis(self) -> dict[str, dict[str, float]]:
        """``{row: {column: value}}``: the numbers the ablation tables print beside ours."""
        return {row: dict(zip(self.columns, values, strict=True)) for row, values in self.numbers.items()}

    def reference(self) -> dict[str, Any]:
        """What ``thesis:<key>.<row>[.<column>]`` looks up: a one-column table by row only."""
        if len(self.columns) == 1:
            return {row: values[0] for row, values in self.numbers.items()}
        return self.thesis


@dataclass(frozen=True)
class EfficiencyTable:
    """An efficiency table (Tables 3.5, 3.6, 4.6, 5.8) as printed: each row has the thesis's label and
    value columns plus ``"key"``, our model configuration (``"<head>[+<add-on>]"``); a ``"{head}"`` in a
    label is the head's display name in the thesis's spelling (``models.heads.head_display_name``)."""

    id: str
    pipeline: str
    title: str
    caption: str
    label_columns: tuple[str, ...]
    value_columns: tuple[str, ...]
    rows: tuple[Mapping[str, Any], ...]

    @property
    def key(self) -> str:
        return table_key(self.id)

    def reference(self) -> dict[str, Mapping[str, Any]]:
        """Rows by their ``key``."""
        return {row["key"]: row for row in self.rows}


def _one_column(values: Mapping[str, float]) -> dict[str, tuple[float]]:
    return {row: (value,) for row, value in values.items()}


def _rows(label_columns: Sequence[str], value_columns: Sequence[str], *rows: Sequence[Any]) -> tuple[dict, ...]:
    """Efficiency rows from ``(key, *labels, *values)`` tuples."""
    columns = ("key", *label_columns, *value_columns)
    return tuple(dict(zip(columns, row, strict=True)) for row in rows)


_L43 = "L_{rceS} + L_{rceT} + L_M"

# ----------------------------------------------------------------------------- chapter 3 (CAA)
# Tables 3.2-3.4: ADE20K val, FCN / ResNet-50, 160k iterations, single scale.
TABLE_3_2 = ThesisTable(
    "3.2",
    "caa_ablations",
    "baseline / CC / SA / CC+SA",
    (MIOU,),
    _one_column({"Baseline": 36.10, "CC": 40.39, "SA": 42.43, "CC+SA": 43.12}),
)
TABLE_3_3 = ThesisTable(
    "3.3",
    "caa_ablations",
    "intra / inter / both",
    (MIOU,),
    _one_column({"Baseline": 36.10, "Intra-class": 42.76, "Inter-class": 42.39, "Intra+Inter": 43.12}),
)
TABLE_3_4 = ThesisTable(
    "3.4",
    "caa_ablations",
    "auxiliary / affinity losses",
    (MIOU,),
    _one_column({"CAA": 40.45, "CAA+Aux": 41.44, "CAA+Aff": 42.36, "CAA+Aux+Aff": 43.12}),
)
TABLE_3_7 = ThesisTable(  # CAA on mainstream heads, ResNet-50
    "3.7",
    "caa_ablations",
    "CAA on six heads",
    HEAD_BENCHMARKS,
    {
        "FCN": (36.10, 30.86, 45.76),
        "FCN+CAA": (43.12, 35.23, 50.82),
        "CCNet": (42.08, 35.43, 47.93),
        "CCNet+CAA": (43.98, 36.27, 49.79),
        "UperNet": (42.05, 35.80, 48.90),
        "UperNet+CAA": (43.81, 37.08, 51.57),
        "PSPNet": (42.48, 36.33, 50.21),
        "PSPNet+CAA": (44.12, 37.59, 52.05),
        "Deeplabv3": (42.66, 35.73, 50.73),
        "Deeplabv3+CAA": (44.23, 37.39, 52.37),
        "ISNet": (43.77, 38.06, 51.74),
        "ISNet+CAA": (43.98, 38.35, 52.08),
    },
)

# Efficiency tables (Tables 3.5, 3.6, 4.6, 5.8) as printed (chapter 3 §"Computational Complexity and
# Training time", chapter 4 §"Computational Complexity", chapter 5 §"Model efficiency"). "FLOPs(G)" /
# "GFLOPs" there are multiply-accumulates (mmcv convention, see engine.profiling).
_COMPLEXITY = ("Params(M)", "FLOPs(G)", "mIoU (%)")
TABLE_3_5 = EfficiencyTable(
    "3.5",
    "efficiency",
    "heads ± CAA",
    "Table 3.5: Comparison of computational complexity and accuracy on ADE20K.",
    ("Method",),
    _COMPLEXITY,
    _rows(
        ("Method",),
        _COMPLEXITY,
        ("pspnet", "{head} [19]", 23.14, 77.71, 42.48),
        ("ccnet", "{head} [13]", 24.00, 99.65, 42.08),
        ("deeplabv3", "{head} [17]", 42.28, 168.91, 42.66),
        ("upernet", "{head} [69]", 40.58, 179.75, 42.05),
        ("pspnet+caa", "{head} [19] + CAA", 26.75, 90.76, 44.12),
        ("ccnet+caa", "{head} [13] + CAA", 27.60, 112.69, 43.98),
        ("deeplabv3+caa", "{head} [17] + CAA", 45.88, 181.96, 44.23),
        ("upernet+caa", "{head} [69] + CAA", 44.18, 192.48, 43.81),
    ),
)
_TIMING = ("Training(min)", "Inference(ms/p)", "mIoU")
TABLE_3_6 = EfficiencyTable(
    "3.6",
    "efficiency",
    "training and inference time ± CAA",
    "Table 3.6: Comparison of training time and inference time on Pascal-Context. "
    "ms/p represents the time of inferencing a picture.",
    ("Method",),
    _TIMING,
    _rows(
        ("Method",),
        _TIMING,
        ("fcn", "{head} [4]", 61, 59.6, 45.76),
        ("pspnet", "{head} [19]", 69, 57.6, 50.21),
        ("deeplabv3", "{head} [17]", 91, 67.0, 50.73),
        ("upernet", "{head} [69]", 44, 66.3, 48.90),
        ("fcn+caa", "{head} [4] +CAA", 75, 68.6, 50.82),
        ("pspnet+caa", "{head} [19] + CAA", 91, 72.6, 52.05),
        ("deeplabv3+caa", "{head} [17] + CAA", 114, 79.3, 52.37),
        ("upernet+caa", "{head} [69] + CAA", 71, 78.2, 51.57),
    ),
)

# ----------------------------------------------------------------------------- chapter 4 (ECAC)
# Tables 4.2-4.5: Pascal-Context val, FCN / DeepLabV3+ ResNet-50, single scale.
TABLE_4_2 = ThesisTable(  # loss combinations, in the thesis's row order
    "4.2",
    "ecac_ablations",
    "loss combinations",
    (MIOU,),
    _one_column(
        {
            "Baseline": 45.76,
            "Baseline + L_{rce}": 46.56,
            "ECAC + L_{rce}": 49.10,
            "ECAC + L_{rce} + L_{mem}": 50.21,
            "ECAC + L_{rce} + L_{mem} + L_{KL}": 50.43,
            "ECAC + L_{rce} + L_{mem} + L_{KL} + L_{mse}": 50.68,
        }
    ),
)
TABLE_4_3 = ThesisTable(  # KL weight α, then intra-variance weight β (α = 1): ecac_ablations.table_4_3_rows
    "4.3",
    "ecac_ablations",
    "α and β",
    (MIOU,),
    _one_column(
        {
            _L43: 50.21,
            f"{_L43} + 0.1 · L_{{KL}}": 50.22,
            f"{_L43} + 1 · L_{{KL}}": 50.43,
            f"{_L43} + 10 · L_{{KL}}": 50.30,
            f"{_L43} + L_{{KL}}": 50.43,
            f"{_L43} + L_{{KL}} + 50 · L_{{iv}}": 50.68,
            f"{_L43} + L_{{KL}} + 100 · L_{{iv}}": 50.58,
            f"{_L43} + L_{{KL}} + 200 · L_{{iv}}": 50.45,
        }
    ),
)
TABLE_4_4 = ThesisTable(
    "4.4",
    "ecac_ablations",
    "memory update strategy",
    (MIOU,),
    _one_column({"Baseline": 45.76, "Baseline + ECAC(cosine)": 50.10, "Baseline + ECAC(ours)": 50.68}),
)
TABLE_4_5 = ThesisTable(
    "4.5",
    "ecac_ablations",
    "calibration",
    (MIOU,),
    _one_column({"DeeplabV3plus": 50.73, "DeeplabV3plus + ECAC": 53.06, "DeeplabV3plus + ECAC + Calibration": 53.56}),
)
_ECAC_COMPLEXITY = ("Params(M)", "FLOPs(G)", "mIoU (%)")
TABLE_4_6 = EfficiencyTable(
    "4.6",
    "efficiency",
    "heads ± ECAC",
    "Table 4.6: Comparison of inference computational complexity and accuracy on ADE20K val.",
    ("Method", "Backbone"),
    _ECAC_COMPLEXITY,
    _rows(
        ("Method", "Backbone"),
        _ECAC_COMPLEXITY,
        ("fcn", "{head}", "ResNet-50", 11.87, 47.72, 36.10),
        ("fcn+mcibi", "+ MCIBI", "ResNet-50", 16.41, 67.22, 42.84),
        ("fcn+mcibi++", "+ MCIBI++ [38]", "ResNet-50", 15.45, 64.44, 43.39),
        ("fcn+ecac", "+ ECAC", "ResNet-50", 12.90, 49.17, 43.12),
        ("pspnet", "{head}", "ResNet-50", 23.14, 77.71, 42.48),
        ("pspnet+mcibi", "+ MCIBI", "ResNet-50", 36.33, 131.75, 43.77),
        ("pspnet+mcibi++", "+ MCIBI++ [38]", "ResNet-50", 33.99, 122.16, 43.89),
        ("pspnet+ecac", "+ ECAC", "ResNet-50", 24.19, 78.84, 45.47),
        ("deeplabv3plus", "{head}", "ResNet-50", 17.74, 65.97, 43.95),
        ("deeplabv3plus+mcibi", "+ MCIBI", "ResNet-50", 29.68, 117.34, 44.34),
        ("deeplabv3plus+mcibi++", "+ MCIBI++ [38]", "ResNet-50", 28.59, 110.42, 44.85),
        ("deeplabv3plus+ecac", "+ ECAC", "ResNet-50", 18.76, 67.22, 46.32),
    ),
)
TABLE_4_7 = ThesisTable(  # ECAC on mainstream heads, ResNet-50
    "4.7",
    "ecac_ablations",
    "ECAC on four heads",
    HEAD_BENCHMARKS,
    {
        "FCN": (36.10, 34.10, 45.76),
        "FCN + ECAC": (43.12, 36.68, 50.68),
        "UperNet": (42.05, 35.80, 48.90),
        "UperNet + ECAC": (45.29, 37.61, 53.13),
        "PSPNet": (42.48, 36.33, 50.21),
        "PSPNet + ECAC": (45.47, 38.32, 53.47),
        "DeeplabV3plus": (43.95, 36.92, 50.73),
        "DeeplabV3plus + ECAC": (46.32, 40.19, 53.56),
    },
)
TABLE_4_8 = ThesisTable(  # group mIoU of the major / moderate / minor classes (ADE20K)
    "4.8",
    "ecac_ablations",
    "head / mid / tail classes",
    ("head mIoU(%)", "mid mIoU(%)", "tail mIoU(%)"),  # one per closed_set.GROUPS
    {"DeeplabV3plus": (78.18, 46.06, 26.75), "DeeplabV3plus + ECAC": (79.02, 51.59, 31.91)},
)

# ----------------------------------------------------------------------------- chapter 5 (LSMSeg)
_SIX_AVG = (*BENCHMARKS, AVERAGE)
TABLE_5_1 = ThesisTable(
    "5.1",
    "lsmseg",
    "mIoU (%) on six benchmarks",
    BENCHMARKS,
    {"CAT-Seg": (12.0, 19.0, 31.8, 57.5, 94.6, 77.3), "LSMSeg": (12.8, 19.9, 33.2, 59.4, 95.2, 80.8)},
)
TABLE_5_2 = ThesisTable(  # seen / unseen mIoU on VOCb
    "5.2",
    "lsmseg",
    "per-class IoU (%), seen and unseen",
    ("VOCb seen", "VOCb unseen"),
    {"CAT-Seg": (83.9, 78.8), "LSMSeg": (84.5, 79.9)},
)
TABLE_5_3 = ThesisTable(  # one attribute's descriptions per row; lsmseg_attribute_selection prints its layout
    "5.3",
    "lsmseg_attribute_selection",
    "single attributes",
    _SIX_AVG,
    {
        "Baseline": (11.0, 17.9, 28.4, 54.6, 94.6, 74.3, 46.8),
        "Color": (11.2, 17.8, 28.3, 55.3, 94.5, 76.5, 47.3),
        "Shape": (11.2, 18.4, 28.2, 54.7, 94.9, 77.1, 47.4),
        "Size": (11.6, 18.2, 28.3, 55.8, 94.3, 76.2, 47.4),
        "Texture": (11.3, 18.2, 28.4, 55.5, 94.8, 76.2, 47.4),
        "Material": (11.0, 18.2, 27.7, 55.9, 93.6, 75.4, 47.0),
        "Positation or Location": (11.4, 18.0, 28.0, 55.0, 93.1, 75.7, 46.9),  # row labels as printed
        "Pattern": (10.9, 16.9, 28.2, 55.2, 94.8, 76.2, 47.0),
        "Action or Satae": (11.2, 18.1, 13.9, 42.2, 94.9, 76.4, 42.8),
        "Contextual Relationship": (7.1, 17.4, 16.5, 29.8, 94.6, 73.9, 39.9),
    },
    "Table 5.3: Analysis of different prompts",
    "Methods",
)
TABLE_5_4 = ThesisTable(  # greedy combinations (§5.3.4, printed after Table 5.3); row labels as printed
    "5.4",
    "lsmseg_attribute_selection",
    "greedy attribute combinations",
    _SIX_AVG,
    {
        "Size": (11.6, 18.2, 28.3, 55.8, 94.3, 76.2, 47.4),
        "Size + Shape": (11.3, 18.2, 28.2, 55.3, 95.1, 76.8, 47.5),
        "Size + Shape +Texture": (11.4, 18.5, 28.7, 54.4, 95.0, 77.5, 47.6),
        "Size + Shape +Texture + Color": (11.6, 18.4, 28.9, 55.6, 94.9, 77.1, 47.8),
        "Size + Shape +Texture + Color + Material": (11.6, 18.3, 28.7, 55.4, 94.9, 76.3, 47.5),
    },
    "Table 5.4: Ablation Study on Attribute Combinations",
    "Methods",
)
TABLE_5_5 = ThesisTable(
    "5.5",
    "lsmseg_ablations",
    "top-k",
    _SIX_AVG,
    {
        "16": (11.7, 19.0, 30.9, 58.3, 95.0, 79.9, 49.1),
        "32": (12.8, 19.7, 32.1, 58.0, 94.8, 80.0, 49.6),
        "48": (12.6, 19.6, 32.0, 58.1, 95.2, 79.9, 49.6),
        "64": (12.6, 19.9, 32.0, 58.4, 94.8, 79.7, 49.6),
        "96": (12.6, 19.8, 32.2, 58.4, 94.8, 79.6, 49.6),
    },
    "Table 5.5: Ablation study on class number k (category filtering)",
    "K",
)
TABLE_5_6 = ThesisTable(  # no avg.
    "5.6",
    "lsmseg_ablations",
    "enriched prompts, SAM variants",
    BENCHMARKS,
    {
        "CATSeg [†]": (11.9, 18.5, 31.7, 57.6, 94.6, 77.0),
        "LSMSeg(w/o SAM)": (12.8, 19.7, 32.1, 58.0, 94.8, 80.0),
        "LSMSeg(w/ Dinov2-B)": (12.2, 18.8, 31.1, 57.2, 94.9, 78.7),
        "LSMSeg(w/ SAM-B)": (12.5, 20.3, 32.1, 58.8, 95.2, 80.2),
        "LSMSeg(w/ SAM-L)": (12.8, 19.9, 33.2, 59.4, 95.2, 80.8),
    },
    "Table 5.6: Ablation study on Enriched Prompt and SAM",
    "Methods",
)
TABLE_5_7 = ThesisTable(
    "5.7",
    "lsmseg_ablations",
    "fusion",
    _SIX_AVG,
    {
        "Baseline": (12.0, 19.0, 31.8, 57.5, 94.6, 77.3, 48.7),
        "Concat": (12.1, 19.3, 32.0, 57.5, 95.0, 77.0, 48.8),
        "Attn": (12.0, 19.5, 32.0, 57.6, 95.0, 76.6, 48.8),
        "Weighted": (12.4, 19.3, 32.2, 57.7, 95.2, 77.0, 49.0),
    },
    "Table 5.7: Ablation study on different fusion strategies",
    "Methods",
)
TABLE_5_8 = EfficiencyTable(
    "5.8",
    "efficiency",
    "CAT-Seg vs LSMSeg",
    "Table 5.8: Efficiency comparison. All results are measured with Nvidia-L40 GPU. Time stands for training time.",
    ("Methods",),
    ("Params (M)", "Latency (ms)", "Time (min)", "GFLOPs"),
    _rows(
        ("Methods",),
        ("Params (M)", "Latency (ms)", "Time (min)", "GFLOPs"),
        ("zegformer", "ZegFormer", 531.2, 2700, 1148.3, 19425.6),
        ("ovseg", "OVSeg", 532.6, 2000, math.nan, 19345.6),
        ("catseg", "CAT-Seg", 156.4, 535.2, 693.7, 3459.7),
        ("sed", "SED", 180.8, 358.9, 1702, 1068.9),
        ("lsmseg", "LSMSeg(w/o SAM)", 156.4, 362.8, 446, 2122.0),
    ),
)
TABLE_5_10 = ThesisTable(
    "5.10",
    "lsmseg_ablations",
    "CLIP fine-tuning",
    _SIX_AVG,
    {
        "Freeze": (8.1, 13.3, 25.9, 46.9, 83.4, 61.6, 39.87),
        "CLIP_qk": (11.6, 18.2, 30.7, 56.2, 94.7, 78.5, 48.32),
        "CLIP_kv": (12.7, 19.9, 32.2, 59.0, 95.0, 80.2, 49.83),
        "CLIP_qv": (12.8, 19.9, 33.2, 59.4, 95.2, 80.8, 50.02),
    },
    "Table 5.10: Ablation study on fine-tuning the CLIP encoder of LSMSeg",
    "Methods",
)
_TABLE_5_11 = {  # (method, training dataset) -> A-847 … VOCb
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
TABLE_5_11 = ThesisTable(
    "5.11",
    "lsmseg_ablations",
    "training vocabulary",
    BENCHMARKS,
    {table_5_11_row(m, d): _TABLE_5_11[m, d] for d in TABLE_5_11_DATASETS for m in TABLE_5_11_METHODS},
    "Table 5.11: Ablation study of training on different datasets",
    "Methods",
)

#: Every table by its id, in the thesis's order.
TABLES: dict[str, ThesisTable | EfficiencyTable] = {
    table.id: table
    for table in (
        TABLE_3_2,
        TABLE_3_3,
        TABLE_3_4,
        TABLE_3_5,
        TABLE_3_6,
        TABLE_3_7,
        TABLE_4_2,
        TABLE_4_3,
        TABLE_4_4,
        TABLE_4_5,
        TABLE_4_6,
        TABLE_4_7,
        TABLE_4_8,
        TABLE_5_1,
        TABLE_5_2,
        TABLE_5_3,
        TABLE_5_4,
        TABLE_5_5,
        TABLE_5_6,
        TABLE_5_7,
        TABLE_5_8,
        TABLE_5_10,
        TABLE_5_11,
    )
}


def tables_of(pipeline: str) -> list[ThesisTable | EfficiencyTable]:
    """The tables ``pipeline`` produces, in the thesis's order (an unknown name is an error)."""
    found = [table for table in TABLES.values() if table.pipeline == pipeline]
    if not found:
        raise KeyError(
            f"no thesis table is produced by {pipeline!r}; known: {sorted({t.pipeline for t in TABLES.values()})}"
        )
    return found


def ablation_tables(pipeline: str) -> list[ThesisTable]:
    """The ablation tables of ``pipeline`` (one node per row and seed slot each)."""
    return [table for table in tables_of(pipeline) if isinstance(table, ThesisTable)]


def references() -> dict[str, Any]:
    """What a report reference ``thesis:<key>.<row>.<column>`` looks up (``engine.report.lookup``):
    every table by its key, rows by their printed label (efficiency tables: by ``key``), columns by name."""
    return {table.key: table.reference() for table in TABLES.values()}


# ----------------------------------------------------------------------------- the report's thesis tables


def _with_gain(values: Sequence[float], base: Sequence[float]) -> list[str]:
    """``"43.12 (+7.02)"``: each value with its gain over ``base``, as the thesis prints add-on rows."""
    return [f"{value:.2f} ({value - reference:+.2f})" for value, reference in zip(values, base)]


_3_7, _4_7, _4_8 = TABLE_3_7.numbers, TABLE_4_7.numbers, TABLE_4_8.numbers
_5_3_BASELINE_AVERAGE = TABLE_5_3.thesis["Baseline"][AVERAGE]


def _attribute_rows(table: ThesisTable) -> list[list[Any]]:
    """Rows of Table 5.3 / 5.4 as printed, each with its avg. minus Table 5.3's Baseline (hand-crafted
    templates), the number our tables print as ``vs. template``."""
    return [
        [row, *values, "" if row == "Baseline" else f"{values[-1] - _5_3_BASELINE_AVERAGE:+.1f}"]
        for row, values in table.numbers.items()
    ]


# The thesis tables the report prints beside ours (a section's ``thesis: {table: <name>}``).
REPORT_TABLES: dict[str, dict[str, Any]] = {
    "table_3_7_fcn": {
        "title": "Thesis Table 3.7 (mIoU %, single scale)",
        "columns": ["Method", "Backbone", *HEAD_BENCHMARKS],
        "rows": [
            ["FCN", "ResNet50", *_3_7["FCN"]],
            ["FCN+CAA", "ResNet50", *_with_gain(_3_7["FCN+CAA"], _3_7["FCN"])],
        ],
    },
    "table_4_7_4_8": {
        "title": "Thesis Tables 4.7 (FCN, mIoU %) and 4.8 (DeepLabV3+, group mIoU %), ADE20K",
        "columns": ["Method", *HEAD_BENCHMARKS, "major (head)", "moderate (mid)", "minor (tail)"],
        "rows": [
            ["FCN", *_4_7["FCN"], "", "", ""],
            ["FCN + ECAC", *_with_gain(_4_7["FCN + ECAC"], _4_7["FCN"]), "", "", ""],
            ["DeeplabV3plus", *_4_7["DeeplabV3plus"], *_4_8["DeeplabV3plus"]],
            [
                "DeeplabV3plus + ECAC",
                *_with_gain(_4_7["DeeplabV3plus + ECAC"], _4_7["DeeplabV3plus"]),
                *_4_8["DeeplabV3plus + ECAC"],
            ],
        ],
    },
    "table_5_3": {
        "title": (
            "Thesis Table 5.3 (§5.3.4, 'Analysis of different prompts'; CLIP ViT-B/16, CAT-Seg without spatial and "
            "class aggregation, trained on COCO-Stuff; mIoU %; 'avg. − Baseline' is ours, from the printed avg.)"
        ),
        "decimals": 1,
        "columns": ["Methods", *TABLE_5_3.columns, "avg. − Baseline"],
        "rows": _attribute_rows(TABLE_5_3),
    },
    "table_5_4": {
        "title": (
            "Thesis Table 5.4 (§5.3.4, 'Ablation Study on Attribute Combinations'; same setting; 'avg. − Baseline' "
            "against Table 5.3's Baseline, 46.8)"
        ),
        "decimals": 1,
        "columns": ["Methods", *TABLE_5_4.columns, "avg. − Baseline"],
        "rows": _attribute_rows(TABLE_5_4),
    },
    "table_5_1_5_2": {
        "title": "Thesis Table 5.1 (CLIP ViT-B/16, mIoU %) and Table 5.2 (VOCb seen / unseen mIoU)",
        "decimals": 1,
        "columns": ["Method", *TABLE_5_1.columns, *TABLE_5_2.columns],
        "rows": [[method, *TABLE_5_1.numbers[method], *TABLE_5_2.numbers[method]] for method in ("CAT-Seg", "LSMSeg")],
    },
}


# --- how the ablation pipelines fan a table out: one node per (row, seed slot) ---------------------

SEED_SLOTS = 5  # seed nodes per variant the pipelines are built with (params may use fewer seeds)
SEED_SLOTS_ENV = "SEG_PIPELINES_SEED_SLOTS"


def seed_slots() -> int:
    """Seed nodes per variant for the ablation pipelines: ``$SEG_PIPELINES_SEED_SLOTS`` when set, else
    :data:`SEED_SLOTS`. Kedro builds pipelines before it reads parameters, so a run with more seeds
    sets both: ``SEG_PIPELINES_SEED_SLOTS=8 kedro run --pipelines=caa_ablations
    --params=caa_ablations.seeds=8`` (seeds 0-4 are reused from an earlier 5-seed run by settings hash)."""
    raw = os.environ.get(SEED_SLOTS_ENV, "").strip()
    if not raw:
        return SEED_SLOTS
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{SEED_SLOTS_ENV} must be a positive whole number of seed nodes, got {raw!r}")
    return int(raw)


def node_slug(text: str) -> str:
    """A Kedro-safe name fragment (letters, digits, underscores) for a row label."""
    slug = "".join(c if c.isalnum() else "_" for c in text)
    while "__" in slug:
        slug = slug.replace("__", "_")
    return slug.strip("_") or "row"


def slot_names(rows: Sequence[str]) -> list[str]:
    """Unique node-name fragments of a table's rows (``node_slug``; ``_<i>`` appended on a clash)."""
    names: list[str] = []
    for i, row in enumerate(rows):
        slug = node_slug(row)
        names.append(slug if slug not in names else f"{slug}_{i}")
    return names

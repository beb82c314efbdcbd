"""The thesis's published numbers, in one place: every table the project compares itself with.

Plain data (no project imports), each entry citing its thesis table. Numbers are as printed (mIoU
in percent unless the table says otherwise); row labels are the thesis's own, so they match the
row labels the experiments build (head names in the thesis's spelling,
:data:`seg_pipelines.models.heads.THESIS_HEAD_SPELLING`).

Read by the ablation tables (:mod:`seg_pipelines.experiments.caa_ablations`,
:mod:`~seg_pipelines.experiments.ecac_ablations`, :mod:`~seg_pipelines.experiments.lsmseg_ablations`),
the efficiency tables (:mod:`seg_pipelines.experiments.efficiency`) and the report
(:mod:`seg_pipelines.engine.report`: ``thesis:<table>.<row>.<column>`` references resolve in
:data:`REFERENCES`, a thesis ``table: <name>`` is one of :data:`REPORT_TABLES`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

# ----------------------------------------------------------------------------- chapter 3 (CAA)
# Tables 3.2-3.4: ADE20K val, FCN / ResNet-50, 160k iterations, single scale.
TABLE_3_2 = {"Baseline": 36.10, "CC": 40.39, "SA": 42.43, "CC+SA": 43.12}  # Table 3.2: class centre / semantic affinity
TABLE_3_3 = {"Baseline": 36.10, "Intra-class": 42.76, "Inter-class": 42.39, "Intra+Inter": 43.12}  # Table 3.3
TABLE_3_4 = {"CAA": 40.45, "CAA+Aux": 41.44, "CAA+Aff": 42.36, "CAA+Aux+Aff": 43.12}  # Table 3.4: loss terms
# Table 3.7: CAA on mainstream heads, ResNet-50; columns TABLE_3_7_BENCHMARKS.
TABLE_3_7_BENCHMARKS = ("ADE20K", "COCO-Stuff", "Pascal-Context")
TABLE_3_7 = {
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
}

# Efficiency tables (Tables 3.5, 3.6, 4.6, 5.8) as printed (chapter 3 §"Computational Complexity and
# Training time", chapter 4 §"Computational Complexity", chapter 5 §"Model efficiency"). "FLOPs(G)" /
# "GFLOPs" there are multiply-accumulates (mmcv convention, see engine.profiling). Each row has the
# thesis's own columns plus "key": our model configuration ("<head>[+<add-on>]"). A "{head}" in a
# label is the head's display name in the thesis's spelling (models.heads.head_display_name).
TABLE_3_5 = {
    "caption": "Table 3.5: Comparison of computational complexity and accuracy on ADE20K.",
    "label_columns": ["Method"],
    "value_columns": ["Params(M)", "FLOPs(G)", "mIoU (%)"],
    "rows": [
        {"key": "pspnet", "Method": "{head} [19]", "Params(M)": 23.14, "FLOPs(G)": 77.71, "mIoU (%)": 42.48},
        {"key": "ccnet", "Method": "{head} [13]", "Params(M)": 24.00, "FLOPs(G)": 99.65, "mIoU (%)": 42.08},
        {"key": "deeplabv3", "Method": "{head} [17]", "Params(M)": 42.28, "FLOPs(G)": 168.91, "mIoU (%)": 42.66},
        {"key": "upernet", "Method": "{head} [69]", "Params(M)": 40.58, "FLOPs(G)": 179.75, "mIoU (%)": 42.05},
        {"key": "pspnet+caa", "Method": "{head} [19] + CAA", "Params(M)": 26.75, "FLOPs(G)": 90.76, "mIoU (%)": 44.12},
        {"key": "ccnet+caa", "Method": "{head} [13] + CAA", "Params(M)": 27.60, "FLOPs(G)": 112.69, "mIoU (%)": 43.98},
        {
            "key": "deeplabv3+caa",
            "Method": "{head} [17] + CAA",
            "Params(M)": 45.88,
            "FLOPs(G)": 181.96,
            "mIoU (%)": 44.23,
        },
        {
            "key": "upernet+caa",
            "Method": "{head} [69] + CAA",
            "Params(M)": 44.18,
            "FLOPs(G)": 192.48,
            "mIoU (%)": 43.81,
        },
    ],
}
TABLE_3_6 = {
    "caption": "Table 3.6: Comparison of training time and inference time on Pascal-Context. "
    "ms/p represents the time of inferencing a picture.",
    "label_columns": ["Method"],
    "value_columns": ["Training(min)", "Inference(ms/p)", "mIoU"],
    "rows": [
        {"key": "fcn", "Method": "{head} [4]", "Training(min)": 61, "Inference(ms/p)": 59.6, "mIoU": 45.76},
        {"key": "pspnet", "Method": "{head} [19]", "Training(min)": 69, "Inference(ms/p)": 57.6, "mIoU": 50.21},
        {"key": "deeplabv3", "Method": "{head} [17]", "Training(min)": 91, "Inference(ms/p)": 67.0, "mIoU": 50.73},
        {"key": "upernet", "Method": "{head} [69]", "Training(min)": 44, "Inference(ms/p)": 66.3, "mIoU": 48.90},
        {"key": "fcn+caa", "Method": "{head} [4] +CAA", "Training(min)": 75, "Inference(ms/p)": 68.6, "mIoU": 50.82},
        {
            "key": "pspnet+caa",
            "Method": "{head} [19] + CAA",
            "Training(min)": 91,
            "Inference(ms/p)": 72.6,
            "mIoU": 52.05,
        },
        {
            "key": "deeplabv3+caa",
            "Method": "{head} [17] + CAA",
            "Training(min)": 114,
            "Inference(ms/p)": 79.3,
            "mIoU": 52.37,
        },
        {
            "key": "upernet+caa",
            "Method": "{head} [69] + CAA",
            "Training(min)": 71,
            "Inference(ms/p)": 78.2,
            "mIoU": 51.57,
        },
    ],
}

# ----------------------------------------------------------------------------- chapter 4 (ECAC)
# Tables 4.2-4.5: Pascal-Context val, FCN / DeepLabV3+ ResNet-50, single scale.
# Table 4.2: loss combinations, in the thesis's row order.
TABLE_4_2 = {
    "Baseline": 45.76,
    "Baseline + L_{rce}": 46.56,
    "ECAC + L_{rce}": 49.10,
    "ECAC + L_{rce} + L_{mem}": 50.21,
    "ECAC + L_{rce} + L_{mem} + L_{KL}": 50.43,
    "ECAC + L_{rce} + L_{mem} + L_{KL} + L_{mse}": 50.68,
}
# Table 4.3: KL weight α and intra-variance weight β, in the thesis's row order: no KL; α = 0.1, 1,
# 10 (β = 0); L_KL; β = 50, 100, 200 (α = 1) -- the rows of ecac_ablations.table_4_3_rows.
TABLE_4_3 = [50.21, 50.22, 50.43, 50.30, 50.43, 50.68, 50.58, 50.45]
TABLE_4_4 = {
    "Baseline": 45.76,
    "Baseline + ECAC(cosine)": 50.10,
    "Baseline + ECAC(ours)": 50.68,
}  # Table 4.4: memory update
TABLE_4_5 = {
    "DeeplabV3plus": 50.73,
    "DeeplabV3plus + ECAC": 53.06,
    "DeeplabV3plus + ECAC + Calibration": 53.56,
}  # Table 4.5
TABLE_4_6 = {
    "caption": "Table 4.6: Comparison of inference computational complexity and accuracy on ADE20K val.",
    "label_columns": ["Method", "Backbone"],
    "value_columns": ["Params(M)", "FLOPs(G)", "mIoU (%)"],
    "rows": [
        {
            "key": "fcn",
            "Method": "{head}",
            "Backbone": "ResNet-50",
            "Params(M)": 11.87,
            "FLOPs(G)": 47.72,
            "mIoU (%)": 36.10,
        },
        {
            "key": "fcn+mcibi",
            "Method": "+ MCIBI",
            "Backbone": "ResNet-50",
            "Params(M)": 16.41,
            "FLOPs(G)": 67.22,
            "mIoU (%)": 42.84,
        },
        {
            "key": "fcn+mcibi++",
            "Method": "+ MCIBI++ [38]",
            "Backbone": "ResNet-50",
            "Params(M)": 15.45,
            "FLOPs(G)": 64.44,
            "mIoU (%)": 43.39,
        },
        {
            "key": "fcn+ecac",
            "Method": "+ ECAC",
            "Backbone": "ResNet-50",
            "Params(M)": 12.90,
            "FLOPs(G)": 49.17,
            "mIoU (%)": 43.12,
        },
        {
            "key": "pspnet",
            "Method": "{head}",
            "Backbone": "ResNet-50",
            "Params(M)": 23.14,
            "FLOPs(G)": 77.71,
            "mIoU (%)": 42.48,
        },
        {
            "key": "pspnet+mcibi",
            "Method": "+ MCIBI",
            "Backbone": "ResNet-50",
            "Params(M)": 36.33,
            "FLOPs(G)": 131.75,
            "mIoU (%)": 43.77,
        },
        {
            "key": "pspnet+mcibi++",
            "Method": "+ MCIBI++ [38]",
            "Backbone": "ResNet-50",
            "Params(M)": 33.99,
            "FLOPs(G)": 122.16,
            "mIoU (%)": 43.89,
        },
        {
            "key": "pspnet+ecac",
            "Method": "+ ECAC",
            "Backbone": "ResNet-50",
            "Params(M)": 24.19,
            "FLOPs(G)": 78.84,
            "mIoU (%)": 45.47,
        },
        {
            "key": "deeplabv3plus",
            "Method": "{head}",
            "Backbone": "ResNet-50",
            "Params(M)": 17.74,
            "FLOPs(G)": 65.97,
            "mIoU (%)": 43.95,
        },
        {
            "key": "deeplabv3plus+mcibi",
            "Method": "+ MCIBI",
            "Backbone": "ResNet-50",
            "Params(M)": 29.68,
            "FLOPs(G)": 117.34,
            "mIoU (%)": 44.34,
        },
        {
            "key": "deeplabv3plus+mcibi++",
            "Method": "+ MCIBI++ [38]",
            "Backbone": "ResNet-50",
            "Params(M)": 28.59,
            "FLOPs(G)": 110.42,
            "mIoU (%)": 44.85,
        },
        {
            "key": "deeplabv3plus+ecac",
            "Method": "+ ECAC",
            "Backbone": "ResNet-50",
            "Params(M)": 18.76,
            "FLOPs(G)": 67.22,
            "mIoU (%)": 46.32,
        },
    ],
}
# Table 4.7: ECAC on mainstream heads, ResNet-50; columns TABLE_4_7_BENCHMARKS.
TABLE_4_7_BENCHMARKS = ("ADE20K", "COCO-Stuff", "Pascal-Context")
TABLE_4_7 = {
    "FCN": (36.10, 34.10, 45.76),
    "FCN + ECAC": (43.12, 36.68, 50.68),
    "UperNet": (42.05, 35.80, 48.90),
    "UperNet + ECAC": (45.29, 37.61, 53.13),
    "PSPNet": (42.48, 36.33, 50.21),
    "PSPNet + ECAC": (45.47, 38.32, 53.47),
    "DeeplabV3plus": (43.95, 36.92, 50.73),
    "DeeplabV3plus + ECAC": (46.32, 40.19, 53.56),
}
# Table 4.8: group mIoU of the major / moderate / minor classes (ADE20K), (DeeplabV3plus, + ECAC).
TABLE_4_8_GROUP_MIOU = {"head": (78.18, 79.02), "mid": (46.06, 51.59), "tail": (26.75, 31.91)}

# ----------------------------------------------------------------------------- chapter 5 (LSMSeg)
# Columns of Tables 5.1 / 5.5-5.7 / 5.10 / 5.11 (CLIP ViT-B/16): A-847, PC-459, A-150, PC-59, VOC,
# VOCb, and "avg." where the table prints it.
TABLE_5_1_COLUMNS = ("A-847", "PC-459", "A-150", "PC-59", "VOC", "VOCb")
TABLE_5_1 = {
    "CAT-Seg": (12.0, 19.0, 31.8, 57.5, 94.6, 77.3),
    "LSMSeg": (12.8, 19.9, 33.2, 59.4, 95.2, 80.8),
}  # Table 5.1
TABLE_5_2_COLUMNS = ("VOCb seen", "VOCb unseen")
TABLE_5_2 = {"CAT-Seg": (83.9, 78.8), "LSMSeg": (84.5, 79.9)}  # Table 5.2: seen / unseen mIoU on VOCb
TABLE_5_5 = {  # Table 5.5: class number k of the category filtering (+ avg.)
    "16": (11.7, 19.0, 30.9, 58.3, 95.0, 79.9, 49.1),
    "32": (12.8, 19.7, 32.1, 58.0, 94.8, 80.0, 49.6),
    "48": (12.6, 19.6, 32.0, 58.1, 95.2, 79.9, 49.6),
    "64": (12.6, 19.9, 32.0, 58.4, 94.8, 79.7, 49.6),
    "96": (12.6, 19.8, 32.2, 58.4, 94.8, 79.6, 49.6),
}
TABLE_5_6 = {  # Table 5.6: enriched prompt and SAM (no avg.)
    "CATSeg [†]": (11.9, 18.5, 31.7, 57.6, 94.6, 77.0),
    "LSMSeg(w/o SAM)": (12.8, 19.7, 32.1, 58.0, 94.8, 80.0),
    "LSMSeg(w/ Dinov2-B)": (12.2, 18.8, 31.1, 57.2, 94.9, 78.7),
    "LSMSeg(w/ SAM-B)": (12.5, 20.3, 32.1, 58.8, 95.2, 80.2),
    "LSMSeg(w/ SAM-L)": (12.8, 19.9, 33.2, 59.4, 95.2, 80.8),
}
TABLE_5_7 = {  # Table 5.7: fusion strategies (+ avg.)
    "Baseline": (12.0, 19.0, 31.8, 57.5, 94.6, 77.3, 48.7),
    "Concat": (12.1, 19.3, 32.0, 57.5, 95.0, 77.0, 48.8),
    "Attn": (12.0, 19.5, 32.0, 57.6, 95.0, 76.6, 48.8),
    "Weighted": (12.4, 19.3, 32.2, 57.7, 95.2, 77.0, 49.0),
}
TABLE_5_8 = {
    "caption": "Table 5.8: Efficiency comparison. All results are measured with Nvidia-L40 GPU. "
    "Time stands for training time.",
    "label_columns": ["Methods"],
    "value_columns": ["Params (M)", "Latency (ms)", "Time (min)", "GFLOPs"],
    "rows": [
        {
            "key": "zegformer",
            "Methods": "ZegFormer",
            "Params (M)": 531.2,
            "Latency (ms)": 2700,
            "Time (min)": 1148.3,
            "GFLOPs": 19425.6,
        },
        {
            "key": "ovseg",
            "Methods": "OVSeg",
            "Params (M)": 532.6,
            "Latency (ms)": 2000,
            "Time (min)": math.nan,
            "GFLOPs": 19345.6,
        },
        {
            "key": "catseg",
            "Methods": "CAT-Seg",
            "Params (M)": 156.4,
            "Latency (ms)": 535.2,
            "Time (min)": 693.7,
            "GFLOPs": 3459.7,
        },
        {
            "key": "sed",
            "Methods": "SED",
            "Params (M)": 180.8,
            "Latency (ms)": 358.9,
            "Time (min)": 1702,
            "GFLOPs": 1068.9,
        },
        {
            "key": "lsmseg",
            "Methods": "LSMSeg(w/o SAM)",
            "Params (M)": 156.4,
            "Latency (ms)": 362.8,
            "Time (min)": 446,
            "GFLOPs": 2122.0,
        },
    ],
}
TABLE_5_10 = {  # Table 5.10: fine-tuning the CLIP encoder (+ avg.)
    "Freeze": (8.1, 13.3, 25.9, 46.9, 83.4, 61.6, 39.87),
    "CLIP_qk": (11.6, 18.2, 30.7, 56.2, 94.7, 78.5, 48.32),
    "CLIP_kv": (12.7, 19.9, 32.2, 59.0, 95.0, 80.2, 49.83),
    "CLIP_qv": (12.8, 19.9, 33.2, 59.4, 95.2, 80.8, 50.02),
}
TABLE_5_11 = {  # Table 5.11: (method, training dataset) -> A-847 … VOCb
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

EFFICIENCY_TABLES: dict[str, dict[str, Any]] = {
    "table_3_5": TABLE_3_5,
    "table_3_6": TABLE_3_6,
    "table_4_6": TABLE_4_6,
    "table_5_8": TABLE_5_8,
}


# ----------------------------------------------------------------------------- the report's view


def _named(rows: Mapping[str, Sequence[float]], columns: Sequence[str]) -> dict[str, dict[str, float]]:
    """``{row: {column: value}}`` of a table stored as ``{row: (values in column order)}``."""
    return {row: dict(zip(columns, values)) for row, values in rows.items()}


def _by_key(table: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """An efficiency table's rows by their ``key``."""
    return {row["key"]: row for row in table["rows"]}


_SIX_AVG = (*TABLE_5_1_COLUMNS, "avg.")

# What a report reference ``thesis:<table>.<row>.<column>`` looks up (engine.report.lookup): every
# table by its file / metric key, rows by their printed label, columns by name.
REFERENCES: dict[str, Any] = {
    "table_3_2": TABLE_3_2,
    "table_3_3": TABLE_3_3,
    "table_3_4": TABLE_3_4,
    "table_3_5": _by_key(TABLE_3_5),
    "table_3_6": _by_key(TABLE_3_6),
    "table_3_7": _named(TABLE_3_7, TABLE_3_7_BENCHMARKS),
    "table_4_2": TABLE_4_2,
    "table_4_3": TABLE_4_3,
    "table_4_4": TABLE_4_4,
    "table_4_5": TABLE_4_5,
    "table_4_6": _by_key(TABLE_4_6),
    "table_4_7": _named(TABLE_4_7, TABLE_4_7_BENCHMARKS),
    "table_4_8": {group: {"baseline": base, "ecac": ecac} for group, (base, ecac) in TABLE_4_8_GROUP_MIOU.items()},
    "table_5_1": _named(TABLE_5_1, TABLE_5_1_COLUMNS),
    "table_5_2": _named(TABLE_5_2, TABLE_5_2_COLUMNS),
    "table_5_5": _named(TABLE_5_5, _SIX_AVG),
    "table_5_6": _named(TABLE_5_6, TABLE_5_1_COLUMNS),
    "table_5_7": _named(TABLE_5_7, _SIX_AVG),
    "table_5_8": _by_key(TABLE_5_8),
    "table_5_10": _named(TABLE_5_10, _SIX_AVG),
}


def _with_gain(values: Sequence[float], base: Sequence[float]) -> list[str]:
    """``"43.12 (+7.02)"``: each value with its gain over ``base``, as the thesis prints add-on rows."""
    return [f"{value:.2f} ({value - reference:+.2f})" for value, reference in zip(values, base)]


# The thesis tables the report prints beside ours (a section's ``thesis: {table: <name>}``).
REPORT_TABLES: dict[str, dict[str, Any]] = {
    "table_3_7_fcn": {
        "title": "Thesis Table 3.7 (mIoU %, single scale)",
        "columns": ["Method", "Backbone", *TABLE_3_7_BENCHMARKS],
        "rows": [
            ["FCN", "ResNet50", *TABLE_3_7["FCN"]],
            ["FCN+CAA", "ResNet50", *_with_gain(TABLE_3_7["FCN+CAA"], TABLE_3_7["FCN"])],
        ],
    },
    "table_4_7_4_8": {
        "title": "Thesis Tables 4.7 (FCN, mIoU %) and 4.8 (DeepLabV3+, group mIoU %), ADE20K",
        "columns": ["Method", *TABLE_4_7_BENCHMARKS, "major (head)", "moderate (mid)", "minor (tail)"],
        "rows": [
            ["FCN", *TABLE_4_7["FCN"], "", "", ""],
            ["FCN + ECAC", *_with_gain(TABLE_4_7["FCN + ECAC"], TABLE_4_7["FCN"]), "", "", ""],
            [
                "DeeplabV3plus",
                *TABLE_4_7["DeeplabV3plus"],
                *(TABLE_4_8_GROUP_MIOU[g][0] for g in ("head", "mid", "tail")),
            ],
            [
                "DeeplabV3plus + ECAC",
                *_with_gain(TABLE_4_7["DeeplabV3plus + ECAC"], TABLE_4_7["DeeplabV3plus"]),
                *(TABLE_4_8_GROUP_MIOU[g][1] for g in ("head", "mid", "tail")),
            ],
        ],
    },
    "table_5_1_5_2": {
        "title": "Thesis Table 5.1 (CLIP ViT-B/16, mIoU %) and Table 5.2 (VOCb seen / unseen mIoU)",
        "decimals": 1,
        "columns": ["Method", *TABLE_5_1_COLUMNS, *TABLE_5_2_COLUMNS],
        "rows": [[method, *TABLE_5_1[method], *TABLE_5_2[method]] for method in ("CAT-Seg", "LSMSeg")],
    },
}

"""Row labels of every ablation table, for building the fan-out pipelines without importing the
experiment modules (and torch) at registration: Kedro needs one node per (row, seed slot) before any
parameter is read. ``tests/pipelines/test_ablation_fanout.py`` checks that these equal the table
specs under the default parameters (``experiments.*_ablations``); change both together."""

# chapter -> thesis table -> row labels (``experiments.closed_set_ablations.table_layout``)
CLOSED_SET_ROWS: dict[str, dict[str, list[str]]] = {
    "caa_ablations": {
        "3.2": ["Baseline", "CC", "SA", "CC+SA"],
        "3.3": ["Baseline", "Intra-class", "Inter-class", "Intra+Inter"],
        "3.4": ["CAA", "CAA+Aux", "CAA+Aff", "CAA+Aux+Aff"],
        "3.7": [
            "FCN",
            "FCN+CAA",
            "CCNet",
            "CCNet+CAA",
            "UperNet",
            "UperNet+CAA",
            "PSPNet",
            "PSPNet+CAA",
            "Deeplabv3",
            "Deeplabv3+CAA",
            "ISNet",
            "ISNet+CAA",
        ],
    },
    "ecac_ablations": {
        "4.2": [
            "Baseline",
            "Baseline + L_{rce}",
            "ECAC + L_{rce}",
            "ECAC + L_{rce} + L_{mem}",
            "ECAC + L_{rce} + L_{mem} + L_{KL}",
            "ECAC + L_{rce} + L_{mem} + L_{KL} + L_{mse}",
        ],
        "4.3": [
            "L_{rceS} + L_{rceT} + L_M",
            "L_{rceS} + L_{rceT} + L_M + 0.1 · L_{KL}",
            "L_{rceS} + L_{rceT} + L_M + 1 · L_{KL}",
            "L_{rceS} + L_{rceT} + L_M + 10 · L_{KL}",
            "L_{rceS} + L_{rceT} + L_M + L_{KL}",
            "L_{rceS} + L_{rceT} + L_M + L_{KL} + 50 · L_{iv}",
            "L_{rceS} + L_{rceT} + L_M + L_{KL} + 100 · L_{iv}",
            "L_{rceS} + L_{rceT} + L_M + L_{KL} + 200 · L_{iv}",
        ],
        "4.4": ["Baseline", "Baseline + ECAC(cosine)", "Baseline + ECAC(ours)"],
        "4.5": ["DeeplabV3plus", "DeeplabV3plus + ECAC", "DeeplabV3plus + ECAC + Calibration"],
        "4.7": [
            "FCN",
            "FCN + ECAC",
            "UperNet",
            "UperNet + ECAC",
            "PSPNet",
            "PSPNet + ECAC",
            "DeeplabV3plus",
            "DeeplabV3plus + ECAC",
        ],
        "4.8": ["DeeplabV3plus", "DeeplabV3plus + ECAC"],
    },
}

# thesis table -> (table key, row labels) (``experiments.lsmseg_ablations.TABLES``)
LSMSEG_TABLES: dict[str, tuple[str, list[str]]] = {
    "5.5": ("table_5_5", ["16", "32", "48", "64", "96"]),
    "5.6": (
        "table_5_6",
        ["CATSeg [†]", "LSMSeg(w/o SAM)", "LSMSeg(w/ Dinov2-B)", "LSMSeg(w/ SAM-B)", "LSMSeg(w/ SAM-L)"],
    ),
    "5.7": ("table_5_7", ["Baseline", "Concat", "Attn", "Weighted"]),
    "5.10": ("table_5_10", ["Freeze", "CLIP_qk", "CLIP_kv", "CLIP_qv"]),
    "5.11": (
        "table_5_11",
        [
            "ZegFormer [49] (COCO-Stuff)",
            "SimSeg [48] (COCO-Stuff)",
            "CAT-Seg [100] (COCO-Stuff)",
            "LSMSeg (ours) (COCO-Stuff)",
            "ZegFormer [49] (PC-59)",
            "SimSeg [48] (PC-59)",
            "CAT-Seg [100] (PC-59)",
            "LSMSeg (ours) (PC-59)",
            "ZegFormer [49] (A-150)",
            "SimSeg [48] (A-150)",
            "CAT-Seg [100] (A-150)",
            "LSMSeg (ours) (A-150)",
        ],
    ),
}

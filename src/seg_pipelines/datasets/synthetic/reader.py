"""Reader family ``synthetic``: the ADE20K-150 reader over a written synthetic world, plus its extras.

The world is written in the ``ADEChallengeData2016`` layout, so reading goes through the real
``ade20k_150`` reader (objectInfo150.txt names, ``reduce_zero_label``). On top of it this reader
gives the concept table, the captions and the benchmark vocabularies; with ``vocabulary=`` it
yields labels in that vocabulary's class space and ignore value (e.g. ``syn847`` → 65535).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

import seg_pipelines.datasets.readers  # noqa: F401  (registers ade20k_150)
from seg_pipelines.datasets.base import READERS, DatasetError, register_reader
from seg_pipelines.datasets.readers import reduce_zero_label
from seg_pipelines.datasets.synthetic.concepts import Vocabulary


@register_reader
class SyntheticReader(READERS["ade20k_150"]):
    """The synthetic world under ``root`` (the folder holding ``ADEChallengeData2016/``).

    Without ``vocabulary`` labels are concept ids (``0..num_concepts-1``, ignore 255); with it,
    class ids of that vocabulary (``syn150``, ``syn847``, ``synpc59``, ``synpc459``, ``synvoc20``,
    ``synvoc21b``, ``seen``) and its ignore value.
    """

    family = "synthetic"

    def __init__(self, root: str | Path, vocabulary: str | None = None) -> None:
        super().__init__(root)
        if not (self.data_root / "objectInfo150.txt").is_file():
            raise DatasetError(f"synthetic world at {self.root} has no objectInfo150.txt under {self.data_root}")
        self.vocabulary_name = vocabulary
        self._vocabulary: Vocabulary | None = self.vocabularies[vocabulary] if vocabulary else None
        if self._vocabulary is not None:
            self.ignore_index = self._vocabulary.ignore_index  # instance value shadows the class default

    # -- class space ---------------------------------------------------------------------------

    @property
    def concept_names(self) -> list[str]:
        """All concept names in concept-id order (from objectInfo150.txt)."""
        return [synonyms[0] for synonyms in self.class_synonyms]

    @property
    def class_names(self) -> list[str]:
        if self._vocabulary is not None:
            return list(self._vocabulary.class_names)
        return self.concept_names

    def decode_label(self, raw: np.ndarray) -> np.ndarray:
        # the file's own ignore value (ADE's 255), not the vocabulary's: synpc459's ignore value 60 is
        # also the raw value of concept 59, which reduce_zero_label would otherwise drop as ignored
        concept_ids = reduce_zero_label(raw, type(self).ignore_index)  # 0 -> 255, k -> k-1
        if self._vocabulary is None:
            return concept_ids
        if len(self._vocabulary.lookup) != len(self.concept_names):
            raise DatasetError(
                f"{self.data_root / 'vocabularies.json'}: vocabulary {self.vocabulary_name!r} covers "
                f"{len(self._vocabulary.lookup)} concepts, objectInfo150.txt lists {len(self.concept_names)}"
            )
        return self._vocabulary.map_labels(concept_ids)

    # -- extras --------------------------------------------------------------------------------

    def _json(self, name: str) -> Any:
        path = self.data_root / name
        if not path.is_file():
            raise DatasetError(f"synthetic world file missing: {path}")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DatasetError(f"synthetic world file {path} is not valid JSON: {error}") from error

    @property
    def world(self) -> dict[str, Any]:
        """Contents of ``world.json`` (seed, sizes, concept table with frequencies and groups)."""
        if not hasattr(self, "_world"):
            self._world = self._json("world.json")
        return self._world

    @property
    def concepts(self) -> list[dict[str, Any]]:
        """The concept table (one dict per concept, id order)."""
        return self.world["concepts"]

    @property
    def vocabularies(self) -> dict[str, Vocabulary]:
        """Benchmark vocabularies from ``vocabularies.json``."""
        if not hasattr(self, "_vocabularies"):
            records = self._json("vocabularies.json")
            self._vocabularies = {name: Vocabulary.from_dict(name, record) for name, record in records.items()}
        return self._vocabularies

    def vocabulary(self, name: str) -> Vocabulary:
        if name not in self.vocabularies:
            raise KeyError(f"unknown synthetic vocabulary {name!r}; known: {sorted(self.vocabularies)}")
        return self.vocabularies[name]

    def captions(self, split: str | None = None) -> list[dict[str, Any]]:
        """Caption records (``split``, ``image`` relative to the data root, ``caption``, ``concepts``)."""
        path = self.data_root / "captions.jsonl"
        if not path.is_file():
            raise DatasetError(f"synthetic world file missing: {path}")
        records = []
        for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(f"{path}:{line_number}: invalid JSON: {error}") from error
            if split is None or record["split"] == split:
                records.append(record)
        return records

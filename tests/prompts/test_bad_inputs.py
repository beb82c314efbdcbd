"""Untrusted text the prompt stage reads: cache files edited by hand or cut short, empty inputs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from seg_pipelines.prompts.cache import CacheKey, ResponseCache
from seg_pipelines.prompts.generation import generate_descriptions

BAD_LINES = {
    "a JSON list": "[1, 2]",
    "a JSON string": '"sky is blue"',
    "a JSON number": "42",
    "null": "null",
    "an object without id": json.dumps({"schema": 1, "response": "blue"}),
    "an id that is not text": json.dumps({"schema": 1, "id": 7, "response": "blue"}),
    "not JSON": "{'id': 'x'",
    "an old schema": json.dumps({"schema": 0, "id": "x", "response": "blue"}),
}


@pytest.mark.parametrize("bad", list(BAD_LINES))
def test_a_bad_cache_line_is_skipped_and_named_by_file_and_line(bad: str, tmp_path: Path, caplog):
    path = tmp_path / "llm_responses.jsonl"
    key = CacheKey("replay", "m", "v1", "description", "sky", "color", "What color is a sky?")
    ResponseCache(path).put(key, "A sky is blue.")
    with path.open("a", encoding="utf-8") as handle:
        handle.write(BAD_LINES[bad] + "\n")
    with caplog.at_level(logging.WARNING):
        cache = ResponseCache(path)
    assert cache.skipped_lines == 1 and len(cache) == 1 and cache.get(key) == "A sky is blue."
    assert f"{path}:2" in caplog.text


class NeverAsked:
    name, model = "never", "never"

    def complete(self, *args, **kwargs):  # pragma: no cover - must not be reached
        raise AssertionError("asked the LLM")


@pytest.mark.parametrize(("classes", "attributes", "word"), [([], ["color"], "class"), (["sky"], [], "attribute")])
def test_empty_vocabulary_or_attribute_list_is_an_error(classes, attributes, word, tmp_path: Path):
    with pytest.raises(ValueError, match=f"no {word}"):
        generate_descriptions(NeverAsked(), ResponseCache(tmp_path / "c.jsonl"), classes, attributes, progress=False)

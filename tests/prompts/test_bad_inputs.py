"""Untrusted text the prompt stage reads: cache files edited by hand or cut short, empty inputs, and
LLM answers about another class, in another language, or cut to a fragment."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from seg_pipelines.prompts.cache import CacheKey, ResponseCache
from seg_pipelines.prompts.cleaning import (
    FragmentAnswerError,
    MalformedAnswerError,
    NotEnglishAnswerError,
    WrongClassAnswerError,
    check_description,
    clean_description,
)
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


# ---------------------------------------------------------------------------------------------
# LLM answers (issue 29 item 1): each with its outcome, a description or the error that asks again
# ---------------------------------------------------------------------------------------------

VOCABULARY = ["grass", "zebra", "lime", "wall", "brick wall", "sign", "stop sign", "water", "sky", "orange", "tree"]
VOCABULARY += ["pine tree", "wood", "table", "wall-other", "wall-wood", "mouse", "computer mouse", "berry"]

ANSWERS = [
    # (answer, asked class, the description kept, or the error that rejects it)
    ("A zebra is black and white striped.", "lime", WrongClassAnswerError),
    ("A zebra is black and white striped.", "grass", WrongClassAnswerError),
    ("Zebras have black and white stripes.", "grass", WrongClassAnswerError),
    ("A zebra's coat is striped.", "grass", WrongClassAnswerError),
    ("Trees are tall and green.", "grass", WrongClassAnswerError),
    ("A brick wall is red.", "wall", WrongClassAnswerError),  # "wall" only inside another class's name
    ("Brick walls are red.", "wall", WrongClassAnswerError),
    ("A stop sign is red and octagonal.", "sign", WrongClassAnswerError),
    ("An orange is round and orange.", "lime", WrongClassAnswerError),
    ("A frog is small, green and slimy.", "lime", WrongClassAnswerError),  # a worked example's class
    ("A zebra.", "grass", WrongClassAnswerError),  # no verb: the short clause is the subject
    ("A pine tree is tall.", "tree", WrongClassAnswerError),
    ("A tree is tall and green.", "pine tree", "A pine tree: a tree is tall and green."),
    ("A mouse is small and grey.", "computer mouse", "A computer mouse: a mouse is small and grey."),
    ("A wooden wall is brown.", "wall-wood", "A wall-wood: a wooden wall is brown."),  # "wall" of wall-other
    ("Wood is the usual material.", "table", "A table: wood is the usual material."),  # a material
    ("Berries are small and round.", "berry", "Berries are small and round."),  # a plural names the class
    ("A wall made of bricks is red.", "brick wall", "A brick wall: a wall made of bricks is red."),
    ("A sign is red and octagonal.", "stop sign", "A stop sign: a sign is red and octagonal."),
    ("Signs are rectangular.", "sign", "Signs are rectangular."),
    ("Walls are usually white.", "wall", "Walls are usually white."),
    ("A zebra is striped, unlike a lime.", "lime", "A zebra is striped, unlike a lime."),  # names the asked class
    ("It floats on water.", "lime", "A lime floats on water."),  # another class, not the subject
    ("Bright orange.", "lime", "A lime: bright orange."),  # a colour, not the class
    ("Orange is its usual colour.", "lime", "A lime: orange is its usual colour."),
    ("它通常是绿色的，圆形的。", "wall", NotEnglishAnswerError),
    ("Eine Limette ist klein, rund und grün.", "water", NotEnglishAnswerError),
    ("Une limette est petite et verte.", "lime", NotEnglishAnswerError),
    ("La lima es pequeña, redonda y verde.", "lime", NotEnglishAnswerError),
    ("De limoen is klein en groen.", "lime", NotEnglishAnswerError),
    ("Лайм маленький и зелёный.", "lime", NotEnglishAnswerError),
    ("Verde.", "lime", NotEnglishAnswerError),
    ("Jeruk nipis berwarna hijau dan bulat.", "lime", NotEnglishAnswerError),
    ("ライムは緑色です。", "lime", NotEnglishAnswerError),
    ("Trái chanh nhỏ, tròn và có màu xanh lá cây.", "lime", NotEnglishAnswerError),
    ("A wall is " + "very " * 2000 + "tall.", "wall", FragmentAnswerError),
    ("A wall is " + " ".join(f"word{i}" for i in range(2000)) + ".", "wall", FragmentAnswerError),
    ("A wall is very.", "wall", FragmentAnswerError),
    ("A lime is made of.", "lime", FragmentAnswerError),
    ("A lime is small. It has a very", "lime", "A lime is small."),  # the unfinished sentence is dropped
    ("A lime is " + ", ".join(f"shade {i}" for i in range(100)) + ".", "lime", None),  # cut at a comma: kept
]


@pytest.mark.parametrize(("raw", "class_name", "outcome"), ANSWERS, ids=[f"{c}:{r[:30]}" for r, c, _ in ANSWERS])
def test_llm_answer_outcomes(raw: str, class_name: str, outcome):
    if isinstance(outcome, type):
        with pytest.raises(outcome) as error:
            clean_description(raw, class_name, vocabulary=VOCABULARY + ["frog"])
        assert isinstance(error.value, MalformedAnswerError)  # so the retry asks again
        return
    description = clean_description(raw, class_name, vocabulary=VOCABULARY + ["frog"])
    assert outcome is None or description == outcome
    assert len(description) <= 300 and check_description(description, class_name, vocabulary=VOCABULARY) == description


CACHED = [
    # what older versions cached, as the issue reports them: each fails the same check
    ("A grass: a zebra is black and white striped.", "grass", WrongClassAnswerError),
    ("A wall: 它通常是绿色的，圆形的。.", "wall", NotEnglishAnswerError),
    ("A water: eine Limette ist klein…", "water", NotEnglishAnswerError),
    ("A wall is very.", "wall", FragmentAnswerError),
    ("A lime is " + "green, " * 60 + "green.", "lime", FragmentAnswerError),  # over max_chars
]


@pytest.mark.parametrize(("cached", "class_name", "error"), CACHED, ids=[c[:30] for c, _, _ in CACHED])
def test_cached_descriptions_fail_the_same_check(cached: str, class_name: str, error):
    with pytest.raises(error):
        check_description(cached, class_name, vocabulary=VOCABULARY, max_chars=300)


# ---------------------------------------------------------------------------------------------
# Two runs sharing one cache (issue 29 item 13): each question is asked once, not once per run
# ---------------------------------------------------------------------------------------------

COLOURS = {"sky": "blue", "grass": "green", "lime": "green", "water": "blue", "sand": "yellow", "snow": "white"}


class SlowCountingLLM:
    """Answers "A <class> is <colour>." after a pause; appends each question it answers to a log file."""

    name, model, concurrency = "counting", "m", 1

    def __init__(self, log: Path) -> None:
        self.log = log

    def complete(self, messages, **gen) -> str:
        import time

        question = messages[-1]["content"] if isinstance(messages, list) else str(messages)
        subject = next(name for name in COLOURS if f'"{name}"' in question)
        with self.log.open("a", encoding="utf-8") as handle:
            handle.write(question + "\n")
        time.sleep(0.05)
        return f"A {subject} is {COLOURS[subject]}."


def _describe(cache_path: str, log: str, order: int) -> dict:
    classes = list(COLOURS) if order == 0 else list(reversed(COLOURS))
    cache = ResponseCache(cache_path)
    result = generate_descriptions(SlowCountingLLM(Path(log)), cache, classes, ["color"], progress=False)
    return {"result": result, "stats": cache.stats()}


@pytest.mark.parametrize("order", [0, 1], ids=["same order", "opposite order"])
def test_two_runs_sharing_the_cache_ask_each_question_once(tmp_path: Path, order: int):
    import multiprocessing

    cache_path, log = tmp_path / "llm_responses.jsonl", tmp_path / "asked.log"
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        first, second = pool.starmap(_describe, [(str(cache_path), str(log), 0), (str(cache_path), str(log), order)])
    asked = log.read_text().splitlines()
    assert len(asked) == len(set(asked)) == len(COLOURS)  # before: 12, every question twice
    assert first["result"] == second["result"] and first["result"]["lime"]["color"] == "A lime is green."
    assert first["stats"]["shared_hits"] + second["stats"]["shared_hits"] == len(COLOURS)
    assert first["stats"]["misses"] + second["stats"]["misses"] == len(COLOURS)
    assert len(ResponseCache(cache_path)) == len(COLOURS)

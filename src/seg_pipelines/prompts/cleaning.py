"""Untrusted text in and out of the LLM: class-name sanitising, answer cleaning, attribute parsing.

Class names come from dataset files and are untrusted input to prompts: they are reduced to a
short single line of letters, digits and a little punctuation and then quoted by the question
template. LLM answers are untrusted output: they are cut to one or two sentences, stripped of
prompt echo, few-shot continuation ("Q: ..."), markdown and repetition loops, length-limited, and
made to name the class (``"A {class} ..."``) so each description stands alone as a CLIP prompt.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

from .llm import TransientLLMError

#: The nine candidate attributes GPT-4 returned in thesis 5.2.3 (thesis spelling).
THESIS_ATTRIBUTES: tuple[str, ...] = (
    "color",
    "shape",
    "size",
    "texture",
    "material",
    "position or location",
    "pattern",
    "action or state",
    "contextual relationship",
)

#: Spelling variants and synonyms -> canonical attribute name.
ATTRIBUTE_SYNONYMS: dict[str, str] = {
    "colour": "color",
    "colors": "color",
    "colours": "color",
    "coloration": "color",
    "colouration": "color",
    "hue": "color",
    "shapes": "shape",
    "form": "shape",
    "geometry": "shape",
    "silhouette": "shape",
    "sizes": "size",
    "scale": "size",
    "dimensions": "size",
    "textures": "texture",
    "surface texture": "texture",
    "materials": "material",
    "material composition": "material",
    "position": "position or location",
    "location": "position or location",
    "position/location": "position or location",
    "spatial position": "position or location",
    "spatial location": "position or location",
    "placement": "position or location",
    "patterns": "pattern",
    "action": "action or state",
    "state": "action or state",
    "action/state": "action or state",
    "pose": "action or state",
    "contextual relationships": "contextual relationship",
    "context": "contextual relationship",
    "contextual information": "contextual relationship",
    "relationships": "contextual relationship",
    "spatial relationships": "contextual relationship",
    "context and relationships": "contextual relationship",
}

MAX_CLASS_NAME_CHARS = 48
_CLASS_NAME_ALLOWED = re.compile(r"[^\w\s\-/(),.&+]")


class MalformedAnswerError(TransientLLMError):
    """An answer that is empty or unusable after cleaning (worth asking again)."""


class EchoedPromptError(MalformedAnswerError):
    """An answer that repeats part of what was sent (system prompt, question, worked example).

    Worth asking again (with resampling): a server that echoes its input once may answer the next
    time; cached as a description it would be a prompt about the prompt, not about the class."""


def sanitise_class_name(name: object, max_chars: int = MAX_CLASS_NAME_CHARS) -> str:
    """A class name safe to put inside a quoted prompt: one line, no quotes, no markup, short.

    Underscores become spaces (``"traffic_light"``); any character other than letters, digits,
    spaces and ``- / ( ) , . & +`` is removed; whitespace and newlines collapse to one space;
    the result is cut to ``max_chars`` at a word boundary. Raises ``ValueError`` if nothing is left.
    """
    text = unicodedata.normalize("NFKC", str(name)).replace("_", " ")
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in text)
    text = _CLASS_NAME_ALLOWED.sub("", text)
    text = re.sub(r"\s+([,.)])", r"\1", " ".join(text.split())).strip(" ,.-/")
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0] if " " in text[:max_chars] else text[:max_chars]
    if not text:
        raise ValueError(f"Class name {name!r} has no usable characters for a prompt.")
    return text


def indefinite_article(word: str) -> str:
    """'a' or 'an' for ``word`` (by its first letter)."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def normalise_attribute(name: str) -> str:
    """Lower-case, strip numbering/markdown, and map synonyms to the canonical attribute name."""
    text = re.sub(r"[*_`#]", "", name).strip().lower()
    text = re.sub(r"^\(?\d+[.)]\s*|^[-•]\s*", "", text)
    text = re.split(r"\s*[:\u2013\u2014]\s*|\s+-\s+", text, maxsplit=1)[0]  # drop "Color: why..."
    text = text.strip(" .;,")
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s*/\s*", "/", text)
    text = re.sub(r"\s*\band\b\s*|\s*&\s*", " and ", text).strip()
    if text in ATTRIBUTE_SYNONYMS:
        return ATTRIBUTE_SYNONYMS[text]
    if text.replace(" or ", "/") in ATTRIBUTE_SYNONYMS:
        return ATTRIBUTE_SYNONYMS[text.replace(" or ", "/")]
    return text


def parse_attribute_list(answer: str, max_items: int = 20, max_chars: int = 40) -> list[str]:
    """Attribute names from a free-text answer (numbered list, bullets or comma-separated),
    normalised and de-duplicated in first-mention order."""
    lines = [line for line in answer.splitlines() if line.strip()]
    if len(lines) <= 1:
        lines = re.split(r",|;|\band\b(?![^()]*\))", answer)
    found: list[str] = []
    for line in lines:
        attribute = normalise_attribute(line)
        if not attribute or len(attribute) > max_chars or not re.search(r"[a-z]", attribute):
            continue
        if attribute not in found:
            found.append(attribute)
        if len(found) >= max_items:
            break
    return found


def dedupe_attributes(attributes: Iterable[str]) -> list[str]:
    """Normalise and de-duplicate, keeping first-mention order."""
    out: list[str] = []
    for attribute in attributes:
        canonical = normalise_attribute(attribute)
        if canonical and canonical not in out:
            out.append(canonical)
    return out


# ---------------------------------------------------------------------------------------------
# Description cleaning
# ---------------------------------------------------------------------------------------------

_CONTINUATION = re.compile(r"(?:^|\n|\s)(?:Q|Question|User|Human)\s*:|\n\s*\n|<\|?end|<end_of_turn>")
_ANSWER_PREFIX = re.compile(r"^\s*(?:A|Answer|Assistant|Description)\s*:\s*", re.IGNORECASE)
_LABEL_PREFIX = re.compile(r"^[A-Za-z][A-Za-z ]{0,29}:\s+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_PRONOUN_START = re.compile(r"^(It|They|This|These|Such)\b(?!')\s*", re.IGNORECASE)
_POSSESSIVE_START = re.compile(r"^(Its|Their)\b\s*", re.IGNORECASE)
_VERB_START = re.compile(
    r"^(is|are|has|have|can|may|might|often|usually|typically|generally|tends|looks|appears|"
    r"comes|features|consists|ranges)\b",
    re.IGNORECASE,
)


def _normalise_for_match(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _strip_markdown(text: str) -> str:
    text = re.sub(r"[*_`#]+", "", text)
    text = re.sub(r"^\s*(?:[-•]|\d+[.)])\s+", "", text, flags=re.MULTILINE)
    return text


def _strip_echo(text: str, question: str | None) -> str:
    """Drop a leading copy of the question (the model repeating the prompt)."""
    if not question:
        return text
    target = _normalise_for_match(question)
    # Compare the answer's leading words with the question, ignoring punctuation and case.
    words = text.split()
    for cut in range(len(words), 0, -1):
        if _normalise_for_match(" ".join(words[:cut])) == target:
            return " ".join(words[cut:])
    return text


#: An echo is a run of this many consecutive words shared with a sent text (all of it when the
#: sent text is shorter, e.g. a worked example's answer). Eight words in a row of a system prompt
#: or a question do not occur in a genuine description by chance; a short worked answer ("A frog
#: is usually green.") names its own class, so it only occurs whole in an echo.
ECHO_RUN_WORDS = 8


def find_echo(
    text: str, sent: Mapping[str, str], max_run: int = ECHO_RUN_WORDS, class_name: str | None = None
) -> str | None:
    """The label of the first ``sent`` text that ``text`` repeats anywhere, else ``None``.

    ``sent`` maps a label ("system prompt", "question", "worked example 2") to the text sent to
    the LLM. Case and punctuation are ignored; ``text`` repeats a sent text when they share a run
    of ``max_run`` consecutive words (all of the sent text when it is shorter). ``class_name``
    counts as one word on both sides: a description names its class, however long the name.
    """

    def normalise(value: str) -> list[str]:
        value = _normalise_for_match(value)
        if class_name:
            name = _normalise_for_match(class_name)
            value = re.sub(rf"\b{re.escape(name)}\b", "\x00", value) if name else value
        return value.split()

    words = normalise(text)
    for label, source in sent.items():
        source_words = normalise(source)
        if not source_words:
            continue
        run = min(len(source_words), max_run)
        if len(words) < run:
            continue
        grams = {tuple(source_words[i : i + run]) for i in range(len(source_words) - run + 1)}
        if any(tuple(words[i : i + run]) in grams for i in range(len(words) - run + 1)):
            return label
    return None


def reject_echo(text: str, sent: Mapping[str, str], class_name: str | None = None) -> None:
    """Raise :class:`EchoedPromptError` when ``text`` repeats one of the ``sent`` texts."""
    echoed = find_echo(text, sent, class_name=class_name)
    if echoed is not None:
        raise EchoedPromptError(f"answer repeats the {echoed} sent to the LLM: {text!r:.100}")


def _cut_repetition(text: str, ngram: int = 4) -> str:
    """Cut a degenerate loop: stop before the first word n-gram that has already occurred."""
    words = text.split()
    seen: set[tuple[str, ...]] = set()
    for i in range(len(words) - ngram + 1):
        gram = tuple(re.sub(r"\W", "", w.lower()) for w in words[i : i + ngram])
        if gram in seen:
            return _strip_dangling(" ".join(words[:i]))
        seen.add(gram)
    return text


_DANGLING = re.compile(
    r"(?:[\s,;:-]+|\s+(?:and|or|with|of|the|a|an|to|in|on|but|that|which|is|are|has))+$",
    re.IGNORECASE,
)


def _strip_dangling(text: str) -> str:
    """Drop trailing punctuation and function words left by a cut ("soft and fluffy and")."""
    return _DANGLING.sub("", " " + text).strip()


def _limit_chars(sentence: str, max_chars: int) -> str:
    """Cut a run-on sentence at the last comma (else word) within ``max_chars`` and close it."""
    if len(sentence) <= max_chars:
        return sentence
    head = sentence[: max_chars - 1]
    for sep in (", ", "; ", " "):
        if sep in head:
            head = head.rsplit(sep, 1)[0]
            break
    return _strip_dangling(head) + "."


def _mentions(text: str, class_name: str) -> bool:
    """Whether ``text`` names the class (case-insensitive, whole words, simple plurals)."""
    words = [re.escape(w) for w in class_name.lower().split()]
    if not words:
        return True
    pattern = r"\b" + r"\s+".join(words) + r"(?:s|es)?\b"
    return re.search(pattern, text.lower()) is not None


def _name_the_class(text: str, class_name: str) -> str:
    """Make the description start with 'A {class} ...' when the class is not named."""
    subject = f"{indefinite_article(class_name).capitalize()} {class_name}"
    if _POSSESSIVE_START.match(text):
        return _POSSESSIVE_START.sub(f"{subject}'s ", text, count=1)
    if _PRONOUN_START.match(text):
        rest = _PRONOUN_START.sub("", text, count=1)
        rest = re.sub(r"^are\b", "is", re.sub(r"^have\b", "has", rest))
        return f"{subject} {rest}"
    if _VERB_START.match(text):
        rest = re.sub(r"^are\b", "is", re.sub(r"^have\b", "has", text[0].lower() + text[1:]))
        return f"{subject} {rest}"
    return f"{subject}: {text[0].lower() + text[1:]}"


def clean_description(
    raw: object,
    class_name: str,
    question: str | None = None,
    *,
    max_sentences: int = 2,
    max_chars: int = 300,
    min_chars: int = 3,
    sent: Mapping[str, str] | None = None,
) -> str:
    """One or two clean sentences describing ``class_name``, or :class:`MalformedAnswerError`.

    Rules, in order: cut at a few-shot continuation (``Q:``, blank line, end-of-turn tokens);
    drop an ``A:``/``Answer:`` prefix, markdown and a leading echo of ``question``; join lines;
    reject (:class:`EchoedPromptError`) what is left if it still repeats, anywhere, the question
    or any other text in ``sent`` (system prompt, worked examples: :func:`find_echo`);
    cut a repetition loop; keep the first ``max_sentences`` sentences, dropping an unfinished
    last sentence when a finished one precedes it; cut each sentence to ``max_chars`` at a comma;
    prepend ``"A {class}"`` when the class is not named; capitalise and end with a full stop.
    """
    if not isinstance(raw, str):
        raise MalformedAnswerError(f"answer is {type(raw).__name__}, not text")
    text = raw.replace("\r", "")
    text = _ANSWER_PREFIX.sub("", text.lstrip())
    text = _CONTINUATION.split(text, maxsplit=1)[0]
    text = _strip_markdown(text)
    text = " ".join(text.split())
    text = _strip_echo(text, question)
    reject_echo(text, {**({"question": question} if question else {}), **dict(sent or {})}, class_name)
    text = _ANSWER_PREFIX.sub("", text).strip(" \"'")
    text = _LABEL_PREFIX.sub("", text)  # "Color: bright green" -> "bright green"
    text = _cut_repetition(text)
    if not text:
        raise MalformedAnswerError("empty answer after cleaning")
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    if len(sentences) > 1 and not sentences[-1].endswith((".", "!", "?")):
        sentences = sentences[:-1]  # ran out of tokens mid-sentence
    sentences = sentences[:max_sentences]
    budget = max_chars // max(1, len(sentences))
    sentences = [_limit_chars(s, max(budget, 40)) for s in sentences]
    text = _strip_dangling(" ".join(sentences))
    if len(re.sub(r"\W", "", text)) < min_chars:
        raise MalformedAnswerError(f"answer too short after cleaning: {raw!r:.80}")
    if not _mentions(text, class_name):
        text = _name_the_class(text, class_name)
    text = text[0].upper() + text[1:]
    if not text.endswith((".", "!", "?")):
        text += "."
    return text

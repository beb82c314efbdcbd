"""Untrusted text in and out of the LLM: class-name sanitising, answer cleaning, attribute parsing.

Class names come from dataset files and are untrusted input to prompts: they are reduced to a
short single line of letters, digits and a little punctuation and then quoted by the question
template. LLM answers are untrusted output: they are cut to one or two sentences, stripped of
prompt echo, few-shot continuation ("Q: ..."), markdown and repetition loops, length-limited, and
made to name the class (``"A {class} ..."``) so each description stands alone as a CLIP prompt.
:func:`check_description` then decides whether what is left may be cached: it must not repeat
the prompt, must describe the asked class (not another class of the vocabulary), be English, and
be complete sentences within the length limit. The same check runs on every fresh answer and on
every cached one.
"""

from __future__ import annotations

import functools
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


class WrongClassAnswerError(MalformedAnswerError):
    """An answer about another class of the vocabulary ("A zebra is striped." asked for grass)."""


class NotEnglishAnswerError(MalformedAnswerError):
    """An answer in another language or script than English."""


class FragmentAnswerError(MalformedAnswerError):
    """An answer that is no complete sentence within the length limit ("A wall is very.")."""


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
    """Cut a run-on sentence at its last clause boundary (comma, semicolon) within ``max_chars``
    and close it. :class:`FragmentAnswerError` when there is none: a cut between two words leaves
    a fragment ("A wall is very."), not a description."""
    if len(sentence) <= max_chars:
        return sentence
    head = sentence[: max_chars - 1]
    for separator in (", ", "; "):
        if separator in head:
            kept = _strip_dangling(head.rsplit(separator, 1)[0])
            if kept:
                return kept + "."
    raise FragmentAnswerError(
        f"answer is one sentence of {len(sentence)} characters with no clause boundary within the "
        f"limit of {max_chars}; cut there it is a fragment: {sentence[:80]!r}"
    )


def _mentions(text: str, class_name: str) -> bool:
    """Whether ``text`` names the class (case-insensitive, whole words, any of its synonyms,
    plural forms: :func:`class_aliases`)."""
    words = _words(text)
    aliases = class_aliases(class_name)
    return not aliases or any(_alias_spans(words, alias) for alias in aliases)


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


# ---------------------------------------------------------------------------------------------
# Validation: one check for fresh and cached descriptions
# ---------------------------------------------------------------------------------------------

_IRREGULAR_PLURALS = {
    "person": "people",
    "man": "men",
    "woman": "women",
    "child": "children",
    "mouse": "mice",
    "foot": "feet",
    "tooth": "teeth",
    "goose": "geese",
    "ox": "oxen",
}
#: Words dropped from the end of a class name to give a shorter alias (COCO-Stuff "wall-other-merged").
_NAME_SUFFIXES = {"other", "merged", "stuff", "things"}
_WORD = re.compile(r"[^\W_]+")


def _word_forms(word: str) -> set[str]:
    """``word`` and its simple English plural / singular forms."""
    forms = {word, word + "s", word + "es"}
    if word.endswith("y") and word[-2:-1] not in set("aeiou"):
        forms.add(word[:-1] + "ies")
    if word.endswith("f"):
        forms.add(word[:-1] + "ves")
    if word.endswith("fe"):
        forms.add(word[:-2] + "ves")
    if word in _IRREGULAR_PLURALS:
        forms.add(_IRREGULAR_PLURALS[word])
    if word.endswith("ies"):  # a plural class name ("berries"): its singular names it too
        forms.add(word[:-3] + "y")
    elif word.endswith("s") and len(word) > 3:
        forms.add(word[:-1])
    return forms


def _words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", text).lower())


def class_aliases(class_name: str) -> list[tuple[str, ...]]:
    """The word sequences that name ``class_name`` in a text: the name, each of its synonyms
    (``"windowpane, window"``, ``"tv/monitor"``, ``"person (human)"``) and each without a
    dataset suffix (``"wall-other-merged"`` -> ``"wall"``)."""
    aliases: list[tuple[str, ...]] = []
    for part in re.split(r"[,;/()]", class_name):
        words = tuple(_words(part))
        while words:
            if words not in aliases:
                aliases.append(words)
            if len(words) > 1 and words[-1] in _NAME_SUFFIXES:
                words = words[:-1]
            else:
                break
    return aliases


def _alias_spans(words: list[str], alias: tuple[str, ...]) -> list[tuple[int, int]]:
    """Where ``alias`` occurs in ``words`` (its last word in any number, whole words only)."""
    head, last = alias[:-1], _word_forms(alias[-1])
    spans = []
    for start in range(len(words) - len(alias) + 1):
        end = start + len(alias)
        if tuple(words[start : end - 1]) == head and words[end - 1] in last:
            spans.append((start, end))
    return spans


@functools.lru_cache(maxsize=16)
def _alias_index(names: tuple[str, ...]) -> dict[str, list[tuple[tuple[str, ...], str]]]:
    """Every alias of ``names`` by each form of its last word: a text is matched word by word."""
    index: dict[str, list[tuple[tuple[str, ...], str]]] = {}
    for name in names:
        for alias in class_aliases(name):
            for form in _word_forms(alias[-1]):
                index.setdefault(form, []).append((alias, name))
    return index


def _named_classes(words: list[str], class_name: str, vocabulary: Iterable[str]) -> dict[str, list[tuple[int, int]]]:
    """Which classes ``words`` names, and where. Where two names overlap the longer one wins
    ("brick wall" over "wall", "stop sign" over "sign"); on a tie, ``class_name`` wins."""
    candidates: list[tuple[int, int, int, str]] = []  # (-length, asked first, start, class)
    for asked, index in ((0, _alias_index((class_name,))), (1, _alias_index(tuple(vocabulary)))):
        for end, word in enumerate(words, start=1):
            for alias, name in index.get(word, ()):
                start = end - len(alias)
                if start >= 0 and tuple(words[start : end - 1]) == alias[:-1]:
                    candidates.append((start - end, asked if name != class_name else 0, start, name))
    taken = [False] * len(words)
    named: dict[str, list[tuple[int, int]]] = {}
    for negative_length, _, start, name in sorted(candidates):
        end = start - negative_length
        if any(taken[start:end]):
            continue
        taken[start:end] = [True] * (end - start)
        named.setdefault(name, []).append((start, end))
    return named


def _is_part_of_name(other: str, class_name: str) -> bool:
    """Whether a name of ``other`` sits inside a name of ``class_name`` ("wall" in "brick wall",
    "wall-other" in "wall-wood" as "wall"): a more general name for the asked class."""
    own = class_aliases(class_name)
    return any(_alias_spans(list(words), alias) for alias in class_aliases(other) for words in own)


#: Words that follow the subject of a sentence: its verb, or an adverb before the verb.
_PREDICATE_START = frozenset(
    """is are was were be been has have had can could may might will would should must does do
    looks look appears appear seems seem tends tend comes come features feature consists consist
    ranges range grows grow stands stand sits sit lies lie hangs hang runs run floats float covers
    cover shows show contains contain lives live sometimes usually often typically generally
    normally commonly mostly always also""".split()
)
#: Words after which no subject can follow in the same clause: a sentence that meets one of
#: these before a verb has no class as its subject ("Like a zebra, it is striped.").
_NO_SUBJECT = frozenset(
    """that which who like with on in at near under over above below beside next by from for as
    than unlike similar against along around behind between into onto to while when where if
    because""".split()
)
_DETERMINERS = frozenset("a an the this that these those every each most many some all".split())
#: Class names that are also colour or material names: bare ("Orange is its colour.", "Wood, or
#: metal.") they name the colour or the material, not the class.
_COLOUR_AND_MATERIAL_WORDS = frozenset(
    """orange lime lemon olive gold silver rose coral salmon cream ivory tan navy chocolate
    lavender violet peach plum cherry mint amber turquoise teal maroon charcoal sand sky snow brick
    wine rust copper bronze slate stone wood metal plastic paper glass cardboard cloth fabric
    textile straw leather rubber concrete marble steel iron ceramic clay wool cotton silk wax foam
    porcelain""".split()
)
#: Longest clause without a verb that counts as naming its subject ("A zebra.", "Zebras.").
_VERBLESS_SUBJECT_WORDS = 3
_COMPOUND_MODIFIER = re.compile(r"\b[\w]+-(?:like|shaped|colou?red|sized|style|patterned|textured)\b", re.IGNORECASE)


def _subjects(text: str) -> list[list[str]]:
    """The subject words of each sentence of ``text`` that has one: the words before its verb,
    within its first clause (up to a comma, colon or bracket) and before any preposition; a
    first clause of a few words without a verb ("A zebra.") is a subject too."""
    subjects = []
    for sentence in _SENTENCE_END.split(text):
        head = re.split(r"[,;:()\u2013\u2014]", _COMPOUND_MODIFIER.sub(" ", sentence), maxsplit=1)[0]
        words: list[str] = []
        for word in _words(head):
            if word in _PREDICATE_START:
                if words:
                    subjects.append(words)
                break
            if word in _NO_SUBJECT:
                break
            words.append(word)
        else:  # no verb: a short clause ("A zebra.") is all subject
            if words and len(words) <= _VERBLESS_SUBJECT_WORDS:
                subjects.append(words)
    return subjects


def _subject_classes(subject: list[str], class_name: str, vocabulary: Iterable[str]) -> list[str]:
    """The classes ``subject`` (a sentence's subject words) is about: a class named at its end
    ("a zebra", "the stripes of zebras") or in the possessive ("a zebra's stripes"); a colour
    or material name without a determiner ("orange", "lime green", "wood") is not the class."""
    found = []
    for name, spans in _named_classes(subject, class_name, vocabulary).items():
        for start, end in spans:
            head = end == len(subject) or subject[end] == "s"  # "zebra's" -> "zebra", "s"
            bare = start == 0 or subject[start - 1] not in _DETERMINERS
            colour = end - start == 1 and subject[start] in _COLOUR_AND_MATERIAL_WORDS
            if head and not (bare and colour):
                found.append(name)
                break
    return found


def wrong_class_subject(text: str, class_name: str, vocabulary: Iterable[str]) -> str | None:
    """The other vocabulary class ``text`` describes instead of ``class_name``, else ``None``.

    ``text`` describes another class when it never names ``class_name`` (nor its plural) and the
    subject of one of its sentences (:func:`_subject_classes`) is another class of ``vocabulary``. A class whose name is
    part of the asked one ("wall" for "brick wall") is a more general name for it, not another
    class; the asked name inside a longer class name ("wall" inside "brick wall") does not name it.
    """
    vocabulary = [name for name in vocabulary if name != class_name]
    if not vocabulary:
        return None
    words = _words(text)
    named = _named_classes(words, class_name, vocabulary)
    if class_name in named:
        return None
    for subject in _subjects(text):
        for name in _subject_classes(subject, class_name, vocabulary):
            if name != class_name and not _is_part_of_name(name, class_name):
                return name
    return None


#: Common English words of short descriptions: function words and the commonest describing words.
ENGLISH_WORDS = frozenset(
    """a an the is are was were be been being has have had it its it's they their them this these
    that those of in on at to with without from by for and or but not no nor as than like usually
    often typically generally mostly sometimes always never very quite rather can may might made
    which when where some many most more other each into onto over under near while also such
    there one two small large big long short tall wide round flat smooth rough soft hard bright
    dark light pale green red blue yellow white black brown grey gray orange pink purple color
    colour shape size texture surface pattern material usually found typical shiny striped""".split()
)
#: Function words of other languages written in Latin script that are no English words.
FOREIGN_WORDS = frozenset(
    """der das und ist sind ein eine einer eines einem einen mit nicht oder auf von zu wird werden
    haben sie ich auch sehr meist meistens aus dem bei wie klein groß gross rund grün farbe
    normalerweise typischerweise ihre seine le les une est et sont avec dans pour sur qui cette
    il elle ils souvent généralement très petit petite ronde vert verte couleur du des au aux
    el los las una es y muy suele generalmente tiene del por para que pequeño pequeña redondo
    redonda lo gli di della delle sono molto spesso uno che è ed piccolo piccola um uma é são
    muito não em pequena normalmente het een zijn meestal niet vaak groen rond en de la verde rojo
    roja azul amarillo blanco negro grande vert rouge bleu jaune blanc noir blau gelb weiß
    schwarz rosso giallo bianco nero yang dengan adalah biasanya dan ini itu berwarna ve bir ile
    genellikle jest zazwyczaj och är ofta og er""".split()
)
#: The least share of a text's letters in Latin script, and the most share of them outside ASCII.
MIN_LATIN_SHARE = 0.9
MAX_ACCENTED_SHARE = 0.15


def language_problem(text: str, class_name: str = "") -> str | None:
    """Why ``text`` is not English, else ``None``.

    Not English: fewer than :data:`MIN_LATIN_SHARE` of its letters in Latin script (Chinese,
    Cyrillic...), more than :data:`MAX_ACCENTED_SHARE` accented, more function words of another
    language (:data:`FOREIGN_WORDS`: "eine", "ist", "une", "es"...) than English ones, or six
    words and more with no common English word. The class name's own words are not counted.
    """
    letters = [c for c in unicodedata.normalize("NFKC", text) if c.isalpha()]
    if not letters:
        return "no letters"
    latin = [c for c in letters if c.isascii() or "LATIN" in unicodedata.name(c, "")]
    if len(latin) < MIN_LATIN_SHARE * len(letters):
        return f"only {len(latin)} of {len(letters)} letters are in Latin script"
    accented = sum(not c.isascii() for c in latin)
    if accented > MAX_ACCENTED_SHARE * len(letters):
        return f"{accented} of {len(letters)} letters are accented"
    own = set(_words(class_name))
    words = [word for word in _words(text) if word not in own]
    english = sum(word in ENGLISH_WORDS for word in words)
    foreign = sum(word in FOREIGN_WORDS for word in words)
    if foreign and foreign > english:
        return f"{foreign} function words of another language and {english} English ones"
    if len(words) >= 6 and not english:
        return f"no common English word in {len(words)} words"
    return None


#: Words that cannot end an English sentence: a sentence ending with one was cut short.
DANGLING_END_WORDS = frozenset(
    """a an the and or but nor of to in on at by for from with without into onto than as very
    quite rather so too more most less least extremely really fairly somewhat slightly highly
    is are was were be been being has have had can could may might must should will would does
    its their his my our your whose which each every many much several""".split()
)


def fragment_problem(text: str) -> str | None:
    """Why ``text`` is not complete sentences, else ``None``: a sentence ends with a word that
    cannot end one ("A wall is very.", "It is made of.")."""
    for sentence in _SENTENCE_END.split(text):
        words = _words(sentence)
        if not words:
            return f"empty sentence in {text!r:.80}"
        if words[-1] in DANGLING_END_WORDS:
            return f"sentence ends with {words[-1]!r}: {sentence!r:.80}"
    return None


def _answer_part(description: str, class_name: str) -> str:
    """``description`` without the ``"A {class}: "`` that :func:`clean_description` puts in front
    of an answer that does not name its class: the part the LLM wrote."""
    prefix = f"{indefinite_article(class_name).capitalize()} {class_name}: "
    return description[len(prefix) :] if description.startswith(prefix) else description


def check_description(
    description: str,
    class_name: str,
    *,
    vocabulary: Iterable[str] = (),
    sent: Mapping[str, str] | None = None,
    max_chars: int | None = None,
) -> str:
    """``description`` if it may be cached as the description of ``class_name``, else raise.

    One check for fresh answers (:func:`clean_description` ends with it) and cached ones
    (generation re-asks a cached description that fails it). A description must not repeat any
    ``sent`` text (:class:`EchoedPromptError`); must describe ``class_name``, not another class of
    ``vocabulary`` (:class:`WrongClassAnswerError`, :func:`wrong_class_subject`); be English
    (:class:`NotEnglishAnswerError`, :func:`language_problem`); and be complete sentences of at
    most ``max_chars`` characters (:class:`FragmentAnswerError`, :func:`fragment_problem`). Each
    is a :class:`MalformedAnswerError`, so the question is asked again.
    """
    if not isinstance(description, str) or not description.strip():
        raise MalformedAnswerError(f"description is empty or not text: {description!r:.80}")
    if sent:
        reject_echo(description, sent, class_name)
    answer = _answer_part(description, class_name)
    problem = language_problem(answer, class_name)
    if problem is not None:
        raise NotEnglishAnswerError(f"answer is not English ({problem}): {description!r:.100}")
    other = wrong_class_subject(answer, class_name, vocabulary)
    if other is not None:
        raise WrongClassAnswerError(
            f"answer describes {other!r}, another class of the vocabulary, not {class_name!r}: {description!r:.100}"
        )
    if max_chars is not None and len(answer) > max_chars:
        raise FragmentAnswerError(f"answer is {len(answer)} characters, over the limit of {max_chars}")
    problem = fragment_problem(answer)
    if problem is not None:
        raise FragmentAnswerError(f"answer is not a complete sentence ({problem})")
    return description


def clean_description(
    raw: object,
    class_name: str,
    question: str | None = None,
    *,
    max_sentences: int = 2,
    max_chars: int = 300,
    min_chars: int = 3,
    sent: Mapping[str, str] | None = None,
    vocabulary: Iterable[str] = (),
) -> str:
    """One or two clean sentences describing ``class_name``, or :class:`MalformedAnswerError`.

    Rules, in order: cut at a few-shot continuation (``Q:``, blank line, end-of-turn tokens);
    drop an ``A:``/``Answer:`` prefix, markdown and a leading echo of ``question``; join lines;
    reject (:class:`EchoedPromptError`) what is left if it still repeats, anywhere, the question
    or any other text in ``sent`` (system prompt, worked examples: :func:`find_echo`);
    cut a repetition loop; keep the first ``max_sentences`` sentences, dropping an unfinished
    last sentence when a finished one precedes it and the later ones that do not fit in
    ``max_chars``; cut a first sentence longer than that at a comma (a sentence that would have
    to be cut between two words is a fragment: :class:`FragmentAnswerError`); prepend
    ``"A {class}"`` when the class is not named; capitalise and end with a full stop. Last, the
    result must pass :func:`check_description` (with ``vocabulary``, the other classes asked
    about: an answer about one of them is rejected).
    """
    if not isinstance(raw, str):
        raise MalformedAnswerError(f"answer is {type(raw).__name__}, not text")
    text = raw.replace("\r", "")
    text = _ANSWER_PREFIX.sub("", text.lstrip())
    text = _CONTINUATION.split(text, maxsplit=1)[0]
    text = _strip_markdown(text)
    text = " ".join(text.split())
    text = _strip_echo(text, question)
    echo_sources = {**({"question": question} if question else {}), **dict(sent or {})}
    reject_echo(text, echo_sources, class_name)
    text = _ANSWER_PREFIX.sub("", text).strip(" \"'")
    text = _LABEL_PREFIX.sub("", text)  # "Color: bright green" -> "bright green"
    text = _cut_repetition(text)
    if not text:
        raise MalformedAnswerError("empty answer after cleaning")
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    if len(sentences) > 1 and not sentences[-1].endswith((".", "!", "?")):
        sentences = sentences[:-1]  # ran out of tokens mid-sentence
    sentences = sentences[:max_sentences]
    # room for the "An {class}: " put in front of an answer that does not name its class
    reserve = 0 if _mentions(" ".join(sentences), class_name) else len(class_name) + 5
    limit = max(max_chars - reserve, 20)
    kept = [_limit_chars(sentences[0], limit)]
    for sentence in sentences[1:]:
        if len(" ".join([*kept, sentence])) > limit:
            break  # a later sentence that does not fit is left out, not cut
        kept.append(sentence)
    text = _strip_dangling(" ".join(kept))
    if len(re.sub(r"\W", "", text)) < min_chars:
        raise MalformedAnswerError(f"answer too short after cleaning: {raw!r:.80}")
    if not _mentions(text, class_name):
        text = _name_the_class(text, class_name)
    text = text[0].upper() + text[1:]
    if not text.endswith((".", "!", "?")):
        text += "."
    return check_description(text, class_name, vocabulary=vocabulary, sent=echo_sources, max_chars=max_chars)

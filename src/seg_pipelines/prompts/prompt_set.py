"""Final text prompts: one per class, combining the selected attributes' descriptions.

Thesis 5.2.3 ("Attribute Combination"): "we concatenate attribute-specific descriptions into a
single prompt". We concatenate the cleaned sentences in the order of the attribute combination
(e.g. size, shape, texture, color) rather than re-writing them into one sentence as the thesis's
hand-edited example does. CLIP's text encoder sees at most 77 BPE tokens including its start and
end tokens, so the prompt is budgeted to ``max_tokens=75`` content tokens: descriptions are added
whole while they fit, later (lower-priority) ones are dropped, and the first one alone is cut at a
word boundary if it is too long. Without attributes the prompt is the hand-crafted baseline
``"a photo of a {class_name}."`` (Table 5.3's "Baseline" row).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .cleaning import indefinite_article, normalise_attribute, sanitise_class_name

logger = logging.getLogger(__name__)

CLIP_CONTEXT_TOKENS = 77
BASELINE_TEMPLATE = "a photo of a {class_name}."
DEFAULT_TEMPLATE = "{descriptions}"
#: How a class's prompt joins its descriptions (``prompt_composition``): the descriptions alone
#: (thesis 5.2.3's example prompt), or the hand-crafted template followed by them.
PROMPT_COMPOSITIONS: dict[str, str] = {
    "description": DEFAULT_TEMPLATE,
    "template_description": "a photo of a {class_name}. {descriptions}",
}


@functools.lru_cache(maxsize=1)
def _clip_tokenizer():
    try:
        from open_clip.tokenizer import SimpleTokenizer
    except ImportError:  # pragma: no cover - open_clip is a core dependency
        return None
    return SimpleTokenizer()


def clip_token_count(text: str) -> int:
    """Number of CLIP BPE tokens in ``text`` (without start/end tokens).

    Uses open_clip's bundled tokenizer; falls back to counting words and punctuation.
    """
    tokenizer = _clip_tokenizer()
    if tokenizer is None:  # pragma: no cover
        return len(re.findall(r"\w+|[^\w\s]", text))
    return len(tokenizer.encode(text))


def fit_words(text: str, max_tokens: int, count_tokens: Callable[[str], int] = clip_token_count) -> str:
    """``text`` cut at a word boundary to fit ``max_tokens``, ended with a full stop."""
    words = text.split()
    while words and count_tokens(" ".join(words) + ".") > max_tokens:
        words.pop()
    return (" ".join(words).rstrip(" ,;:-") + ".") if words else ""


@dataclass(frozen=True)
class ComposedPrompt:
    """One class's prompt and what it holds: the attributes whose descriptions are in it, those left
    out because they did not fit the text context, whether the first one was cut at a word, and its
    token count (without CLIP's start and end tokens)."""

    text: str
    attributes: tuple[str, ...]
    dropped: tuple[str, ...] = ()
    cut: bool = False
    tokens: int = 0

    @property
    def shortened(self) -> bool:
        """Whether the prompt lost part of what it was asked to hold."""
        return bool(self.dropped) or self.cut

    def record(self) -> dict[str, object]:
        return {
            "attributes": list(self.attributes),
            "dropped": list(self.dropped),
            "cut": self.cut,
            "tokens": self.tokens,
        }


def compose_prompt(
    class_name: str,
    descriptions: Sequence[str],
    template: str = DEFAULT_TEMPLATE,
    *,
    attributes: Sequence[str] | None = None,
    max_tokens: int = CLIP_CONTEXT_TOKENS - 2,
    count_tokens: Callable[[str], int] = clip_token_count,
) -> ComposedPrompt:
    """One class's prompt: ``template`` filled with the descriptions that fit in ``max_tokens``, and
    the record of what it holds (``attributes`` name the descriptions, default their positions)."""
    names = [str(a) for a in attributes] if attributes is not None else [str(i) for i in range(len(descriptions))]
    safe_name = sanitise_class_name(class_name)
    if not descriptions:
        text = BASELINE_TEMPLATE.format(class_name=safe_name, article=indefinite_article(safe_name))
        return ComposedPrompt(text, (), tokens=count_tokens(text))

    def render(parts: Sequence[str]) -> str:
        return template.format(
            class_name=safe_name, article=indefinite_article(safe_name), descriptions=" ".join(parts)
        ).strip()

    kept: list[str] = []
    cut = False
    for description in descriptions:
        if count_tokens(render(kept + [description])) <= max_tokens:
            kept.append(description)
        elif not kept:  # the first description alone is too long: cut it at a word
            overhead = count_tokens(render([""]))
            kept.append(fit_words(description, max_tokens - overhead, count_tokens))
            cut = True
        else:
            break
    text = render(kept)
    return ComposedPrompt(text, tuple(names[: len(kept)]), tuple(names[len(kept) :]), cut, count_tokens(text))


def build_prompt(
    class_name: str,
    descriptions: Sequence[str],
    template: str = DEFAULT_TEMPLATE,
    *,
    max_tokens: int = CLIP_CONTEXT_TOKENS - 2,
    count_tokens: Callable[[str], int] = clip_token_count,
) -> str:
    """One class's prompt text (:func:`compose_prompt`); a shortened prompt is logged."""
    composed = compose_prompt(class_name, descriptions, template, max_tokens=max_tokens, count_tokens=count_tokens)
    if composed.shortened:
        logger.warning(
            "Prompt for %r keeps %d of %d descriptions to fit %d CLIP tokens",
            class_name,
            len(composed.attributes),
            len(descriptions),
            max_tokens,
        )
    return composed.text


def compose_prompt_set(
    descriptions: Mapping[str, Mapping[str, str]],
    attributes_combination: Sequence[str],
    class_names: Sequence[str],
    template: str = DEFAULT_TEMPLATE,
    *,
    max_tokens: int = CLIP_CONTEXT_TOKENS - 2,
    count_tokens: Callable[[str], int] = clip_token_count,
) -> dict[str, ComposedPrompt]:
    """``{class: ComposedPrompt}`` combining the descriptions of ``attributes_combination`` in that
    order (later attributes are the first left out when the context is full).

    ``template`` may use ``{descriptions}``, ``{class_name}`` and ``{article}``. An empty
    combination gives the baseline ``"a photo of a {class_name}."``.
    """
    attributes = [normalise_attribute(a) for a in attributes_combination]
    prompts: dict[str, ComposedPrompt] = {}
    for class_name in class_names:
        per_attribute = descriptions.get(class_name)
        if per_attribute is None:
            raise KeyError(f"No descriptions for class {class_name!r}; run generate_descriptions.")
        missing = [a for a in attributes if a not in per_attribute]
        if missing:
            raise KeyError(
                f"No description for class {class_name!r}, attribute(s) {missing}; available: {sorted(per_attribute)}"
            )
        prompts[class_name] = compose_prompt(
            class_name,
            [per_attribute[a] for a in attributes],
            template,
            attributes=attributes,
            max_tokens=max_tokens,
            count_tokens=count_tokens,
        )
    return prompts


def build_prompt_set(
    descriptions: Mapping[str, Mapping[str, str]],
    attributes_combination: Sequence[str],
    class_names: Sequence[str],
    template: str = DEFAULT_TEMPLATE,
    *,
    max_tokens: int = CLIP_CONTEXT_TOKENS - 2,
    count_tokens: Callable[[str], int] = clip_token_count,
) -> dict[str, str]:
    """``{class: prompt}`` of :func:`compose_prompt_set`."""
    composed = compose_prompt_set(
        descriptions, attributes_combination, class_names, template, max_tokens=max_tokens, count_tokens=count_tokens
    )
    return {name: prompt.text for name, prompt in composed.items()}

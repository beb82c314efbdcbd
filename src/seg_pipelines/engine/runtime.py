"""Process settings that every stage shares: torch's CPU thread count (``num_threads`` in each
parameter block), set in one place so every pipeline reads the same key the same way, and the
CPU allocator's reuse of freed memory (:func:`keep_freed_cpu_memory`, set by the training loop
``engine.training.run_training`` for every model; measured on the closed-set step at 1 thread)."""

from __future__ import annotations

import ctypes
import os

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


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_ALLOCATOR_CONFIGURED: dict[str, int] = {}


def keep_freed_cpu_memory(mmap_threshold_bytes: int = 32 << 20) -> bool:
    """Let glibc's malloc keep freed blocks of up to ``mmap_threshold_bytes`` for reuse.

    A CPU training step frees and re-allocates the same activation and gradient tensors every
    iteration. With glibc's defaults a block above the (adaptive) mmap threshold is handed back to
    the kernel when freed and the next step's allocation faults every page in again, zero-filled:
    on the default closed-set step (2 MB to 18 MB tensors) that was a third of the step's CPU time
    (issue 15). Here blocks up to the threshold (glibc's maximum, 32 MiB on 64-bit) come from the
    heap, and the heap is not trimmed, so a process's resident memory stays at its peak instead of
    shrinking between steps. Larger blocks are mapped as before. The numbers computed do not change.

    Process-wide and idempotent; returns whether it is in force (False off glibc, e.g. macOS).
    ``SEG_PIPELINES_KEEP_FREED_MEMORY=0`` in the environment turns it off.
    """
    if os.environ.get("SEG_PIPELINES_KEEP_FREED_MEMORY", "1") == "0":
        return False
    if _ALLOCATOR_CONFIGURED.get("threshold") == mmap_threshold_bytes:
        return True
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold_bytes)) == 1
        ok = ok and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    except (OSError, AttributeError):
        return False
    if ok:
        _ALLOCATOR_CONFIGURED["threshold"] = mmap_threshold_bytes
    return ok

"""The benchmark scripts as modules (benchmarks/ is not a package): one fixture per script tested here."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported as the module ``name``."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gpu_check() -> ModuleType:
    return load_benchmark("gpu_check")


@pytest.fixture(scope="module")
def smoke() -> ModuleType:
    return load_benchmark("thesis_smoke")


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_benchmark("bench_default_runs")

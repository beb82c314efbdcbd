"""The parameter check before a run: every block a run reads, validated by its model in
:mod:`seg_pipelines.parameters` before the first node (one line per problem, naming the key)."""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl

from seg_pipelines.engine.tracking import parameter_blocks
from seg_pipelines.parameters import SCHEMAS, check_parameters


def blocks_read_by(pipeline: Any) -> list[str]:
    """The top-level parameter blocks a Kedro pipeline's nodes read (``params:caa`` → ``caa``); every
    block with a schema when a node reads all ``parameters``."""
    blocks = parameter_blocks(pipeline)
    return list(SCHEMAS) if blocks is None else blocks


class ParameterValidationHook:
    """Check the parameter blocks a run reads before its first node (see module docstring)."""

    def __init__(self) -> None:
        self._params: dict[str, Any] = {}

    @hook_impl
    def after_context_created(self, context) -> None:
        self._params = dict(context.params or {})

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline, catalog) -> None:
        check_parameters(self._params, blocks_read_by(pipeline))

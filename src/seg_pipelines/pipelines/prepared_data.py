"""A hook that stops a node from training on another dataset's prepared data.

Before any node that reads ``dataset_manifest`` together with ``prepared_index`` and/or
``class_statistics``, the three are checked to describe one dataset
(:func:`seg_pipelines.experiments.data_preparation.check_prepared_data`). They can disagree after a
``data_preparation`` run that failed half-way: the steps that finished saved the new dataset's
outputs, the rest still hold the previous dataset's.
"""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl

PREPARED_OUTPUTS = ("prepared_index", "class_statistics")


class PreparedDataCheckHook:
    """Check manifest / index / class statistics agree before a node that reads them runs."""

    @hook_impl
    def before_node_run(self, node, catalog, inputs: dict[str, Any]) -> None:
        if "dataset_manifest" not in inputs or not any(name in inputs for name in PREPARED_OUTPUTS):
            return
        from seg_pipelines.experiments.data_preparation import check_prepared_data  # keeps `kedro` commands light

        check_prepared_data(
            inputs["dataset_manifest"],
            index=inputs.get("prepared_index"),
            class_statistics=inputs.get("class_statistics"),
        )

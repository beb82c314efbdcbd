"""Kedro project settings: hooks and config loader. Telemetry is off: Kedro's through `.telemetry`
(``consent: false``), MLflow's through ``MLFLOW_DISABLE_TELEMETRY``, which importing the hook's
tracking module sets before anything imports mlflow (set it to ``false`` yourself to opt in)."""

import warnings

from kedro.config import OmegaConfigLoader

from seg_pipelines.hooks import MlflowTrackingHook, RuntimeParameterCheckHook
from seg_pipelines.pipeline_registry import DEFAULT_PIPELINE
from seg_pipelines.pipelines.prepared_data import PreparedDataCheckHook

# Kedro 1.7's config loader calls OmegaConf 2.4's deprecated register_new_resolver() three times per
# run; the warning is about Kedro's code, not a user's, so it is not shown.
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning)

# Parameters are checked by Kedro itself before the run (and its MLflow run) starts: each node annotates
# its parameter blocks with their models (seg_pipelines.parameters); a --params key that names no setting
# is refused first (pluggy calls the hook registered last first). Nodes that read the prepared data first
# check it belongs to the manifest's dataset.
HOOKS = (MlflowTrackingHook(default_pipeline=DEFAULT_PIPELINE), PreparedDataCheckHook(), RuntimeParameterCheckHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {
        "mlflow": ["mlflow*", "mlflow*/**"],
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
    },
}

"""Kedro project settings: hooks and config loader. Telemetry is off: Kedro's through `.telemetry`
(``consent: false``), MLflow's through ``MLFLOW_DISABLE_TELEMETRY``, which importing the hook's
tracking module sets before anything imports mlflow (set it to ``false`` yourself to opt in)."""

import warnings
from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader
from omegaconf import OmegaConf

from seg_pipelines.hooks import MlflowTrackingHook, RunProvenanceHook, RuntimeParameterCheckHook
from seg_pipelines.pipeline_registry import DEFAULT_PIPELINE
from seg_pipelines.pipelines.prepared_data import PreparedDataCheckHook

# Kedro 1.7's config loader calls OmegaConf 2.4's deprecated register_new_resolver() three times per
# run; the warning is about Kedro's code, not a user's, so it is not shown.
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning)

# Parameters are checked by Kedro itself before the run (and its MLflow run) starts: each node annotates
# its parameter blocks with their models (seg_pipelines.parameters); a --params key that names no setting
# is refused first (pluggy calls the hook registered last first). Nodes that read the prepared data first
# check it belongs to the manifest's dataset. Each finished run records what it was made with (RunProvenanceHook).
HOOKS = (
    MlflowTrackingHook(default_pipeline=DEFAULT_PIPELINE),
    RunProvenanceHook(default_pipeline=DEFAULT_PIPELINE),
    PreparedDataCheckHook(),
    RuntimeParameterCheckHook(),
)


def default_data_root(run_env: str, base_env: str = "base", default_run_env: str = "local") -> str:
    """Where an environment's data lives when its ``globals.yml`` does not say: ``data`` for a plain
    ``kedro run`` (the base and the default run environment), ``data/<env>`` for any other."""
    return "data" if run_env in (base_env, default_run_env) else f"data/{run_env}"


class DataRootConfigLoader(OmegaConfigLoader):
    """Kedro's OmegaConfigLoader with one guarantee: the global ``data_root`` (every path the catalog
    and the parameters write, as ``${globals:data_root}/…``) is the environment's own.

    ``conf/<env>/globals.yml`` may set ``data_root``; an environment that does not gets
    :func:`default_data_root` (``data/<env>``), never the base's ``data``, so ``--env test`` or a new
    ``--env mycluster`` cannot overwrite the outputs of a plain ``kedro run``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        run_env = self.env or self.default_run_env
        env_globals = Path(str(self.conf_source)) / run_env / "globals.yml"
        own = OmegaConf.to_container(OmegaConf.load(env_globals)) if env_globals.is_file() else None
        if run_env != self.base_env and not (isinstance(own, dict) and "data_root" in own):
            self["globals"] = {
                **(self._globals or {}),
                "data_root": default_data_root(run_env, self.base_env, self.default_run_env),
            }
            self._globals_oc = None  # the globals resolver re-reads them


CONFIG_LOADER_CLASS = DataRootConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {
        "mlflow": ["mlflow*", "mlflow*/**"],
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
    },
}

"""Kedro project settings: hooks, config loader, and the telemetry opt-out lives in `.telemetry`."""

from kedro.config import OmegaConfigLoader

from seg_pipelines.hooks import MlflowTrackingHook

HOOKS = (MlflowTrackingHook(),)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {
        "mlflow": ["mlflow*", "mlflow*/**"],
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
    },
}

"""``caa``: the closed-set comparison template (see ``pipelines/closed_set``) for CAA."""

from kedro.pipeline import Pipeline

from seg_pipelines.pipelines.closed_set import create_closed_set_pipeline


def create_pipeline(**kwargs) -> Pipeline:
    return create_closed_set_pipeline("caa")

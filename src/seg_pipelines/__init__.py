"""seg_pipelines: Kedro pipelines for CAA, ECAC and LSMSeg semantic segmentation.

One layer per job; imports only go down (import-linter checks it, see pyproject.toml):
``pipelines`` (Kedro glue) → ``experiments`` (what the thesis runs) → ``engine`` (method-agnostic
runtime) → ``models`` / ``losses`` → ``datasets`` / ``prompts``. ``settings``, ``hooks`` and
``pipeline_registry`` sit on top; the hook talks to MLflow through ``engine.tracking`` only.
"""

__version__ = "0.1.0"

"""Kedro glue only: one folder per registered pipeline (``pipeline.py`` wires named nodes, ``nodes.py``
names the functions of :mod:`seg_pipelines.experiments` / :mod:`seg_pipelines.datasets` they call) and
the project's Kedro dataset types (``catalog_datasets``). No torch, no maths here."""

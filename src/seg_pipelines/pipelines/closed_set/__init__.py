"""Closed-set comparisons (thesis ch. 3–4): a head trained with and without an add-on.

``create_closed_set_pipeline(method)`` builds the ``caa`` and ``ecac`` pipelines (one template,
namespaced by the method); ``create_pipeline()`` registers ``closed_set`` = both of them.
"""

from seg_pipelines.pipelines.closed_set.pipeline import create_closed_set_pipeline, create_pipeline

__all__ = ["create_closed_set_pipeline", "create_pipeline"]

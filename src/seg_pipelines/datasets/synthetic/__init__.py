"""The synthetic world: the embedded default dataset (DESIGN.md §3).

Concepts with real names and looks, a long tail, context rules, captions and held-out unseen
concepts, written in the ADE20K-150 layout and read back by the ``synthetic`` reader family.
"""

from seg_pipelines.datasets.synthetic.concepts import CONCEPTS, Concept, Vocabulary, build_vocabularies
from seg_pipelines.datasets.synthetic.render import render_scene
from seg_pipelines.datasets.synthetic.world import ensure_synthetic_world, generate_synthetic_world


def plot_world_overview(root, n_images: int = 12):
    """Overview figure of a written world (lazy import keeps matplotlib out of plain imports)."""
    from seg_pipelines.datasets.synthetic.figures import plot_world_overview as _plot

    return _plot(root, n_images=n_images)


__all__ = [
    "CONCEPTS",
    "Concept",
    "Vocabulary",
    "build_vocabularies",
    "ensure_synthetic_world",
    "generate_synthetic_world",
    "plot_world_overview",
    "render_scene",
]

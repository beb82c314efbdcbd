"""What the thesis runs, on top of the method-agnostic :mod:`seg_pipelines.engine`: closed-set runs
and the chapter 3-4 ablation tables, OVSS runs and the chapter 5 tables, CLIP pretraining, attribute
scoring and selection, the efficiency tables, and their figures. Pipelines call into here; nothing
here imports a pipeline."""

import matplotlib

matplotlib.use("Agg")  # figures are written to files (Kedro's MatplotlibWriter), never shown

"""Models: backbones, closed-set decode heads, the CAA and ECAC add-ons, the segmentor, the OVSS models
(CLIP, SAM, fusion, cost volume, filtering, refinement, CAT-Seg, LSMSeg); one registry,
:func:`seg_pipelines.models.factory.create_model`."""

"""Typed parameter blocks: the one definition of each setting, its default and its range.

Every node function (``pipelines/<name>/nodes.py``) annotates its parameter blocks with these models.
Kedro validates each annotated ``params:`` input before the run's first node (a wrong type or an
impossible value, ``caa.training.iterations=ten``, ``=0``, ``retry.max_attempts=0``, stops the run
at its start naming the key, the value and what is expected) and hands the node the model; the node
passes it to its experiment, so a default written here is the default the experiment sees (a key the
YAML leaves out reads as its default here, not as a second default in the code).
:func:`check_parameters` validates a whole parameter tree the same way (one line per problem).

A block reads as a mapping too (``block["lr"]``, ``block.get("seed")``, ``dict(block)``) with the
same values as its attributes. Unknown keys pass through (``extra="allow"``), so a block may carry
settings these models do not know. Torch-free: registration imports this module.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

PositiveInt = Annotated[int, Field(strict=True, ge=1)]
NonNegativeInt = Annotated[int, Field(strict=True, ge=0)]
PositiveNumber = Annotated[float, Field(gt=0)]
NonNegativeNumber = Annotated[float, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, le=1)]


def _number(value: Any) -> Any:
    """Text and booleans are not numbers, even where pydantic would coerce them."""
    if isinstance(value, (str, bool)):
        raise ValueError(f"expected a number, got {value!r}")
    return value


# rates and weights whose text form ("0.01") is a typo to report, not a value to convert
Rate = Annotated[float, BeforeValidator(_number), Field(gt=0)]
NonNegativeRate = Annotated[float, BeforeValidator(_number), Field(ge=0)]


BlockType = TypeVar("BlockType", bound="Block")


class Block(BaseModel):
    """A parameter block: known keys typed (whole numbers strictly), unknown keys kept; read-only
    mapping access over both (known keys with their defaults filled in)."""

    model_config = ConfigDict(extra="allow")

    @classmethod
    def of(cls: type[BlockType], values: Mapping[str, Any] | BlockType | None) -> BlockType:
        """``values`` validated into this block (an already typed block is returned as it is)."""
        if isinstance(values, cls):
            return values
        return cls.model_validate(dict(values or {}))

    def _values(self) -> dict[str, Any]:
        # A field left out whose default is None means "not set": the mapping leaves it out too, so a
        # reader's own rule for a missing key applies (``model.get("channels") or width``).
        values = {
            name: value
            for name, value in self.__dict__.items()
            if value is not None or name in self.model_fields_set or type(self).model_fields[name].default is not None
        }
        return {**values, **(self.__pydantic_extra__ or {})}

    def __getitem__(self, key: str) -> Any:
        values = self._values()
        if key not in values:
            raise KeyError(key)
        return values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._values().get(key, default)

    def keys(self):
        return self._values().keys()

    def values(self):
        return self._values().values()

    def items(self):
        return self._values().items()

    def __contains__(self, key: object) -> bool:
        return key in self._values()

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]  # a mapping's keys, not pydantic's pairs
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())

    def plain(self) -> dict[str, Any]:
        """The mapping view as plain nested dicts and lists (JSON, settings hashes, code that edits
        settings by path such as the ablation runner): what ``dict(block)`` holds, all the way down."""
        return plain_data(self)


def plain_data(value: Any) -> Any:
    """``value`` with every mapping (a parameter block included) a dict and every list or tuple a list,
    all the way down: what JSON, settings hashes and MLflow's params and YAML artifacts take."""
    if isinstance(value, Mapping):
        return {key: plain_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(item) for item in value]
    return value


Mapping.register(Block)


class Training(Block):
    """What every training block sets (closed-set SGD + poly, OVSS AdamW + cosine)."""

    iterations: PositiveInt
    batch_size: PositiveInt
    lr: Rate
    weight_decay: NonNegativeRate = 0.0
    seed: NonNegativeInt = 0
    log_interval: PositiveInt = 10


class ClosedSetTraining(Training):
    """SGD + poly (engine.training.TrainConfig's fields; MMSegmentation's recipe as the defaults). Closed:
    a key TrainConfig does not know is refused here, naming it, not by a TypeError inside the node."""

    model_config = ConfigDict(extra="forbid")

    weight_decay: NonNegativeRate = 5e-4
    momentum: Annotated[float, BeforeValidator(_number), Field(ge=0, lt=1)] = 0.9
    poly_power: Rate = 0.9
    grad_clip_norm: Rate | None = None
    num_workers: NonNegativeInt = 0
    extra: dict[str, Any] = {}
    min_lr: NonNegativeRate = 1e-4
    checkpoint_interval: PositiveInt = 100
    checkpoint_seconds: PositiveNumber | None = None
    foreach: bool | None = None
    channels_last: bool = False
    amp_dtype: Literal["auto", "bfloat16", "float16"] | None = None


class Augmentation(Block):
    crop_size: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] | None = None
    scale_range: Annotated[list[PositiveNumber], Field(min_length=2, max_length=2)] | None = None
    flip_probability: Probability = 0.5

    @field_validator("scale_range")
    @classmethod
    def _ordered(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and value[0] > value[1]:
            raise ValueError(f"scale_range must be [low, high] with low <= high, got {value}")
        return value


class Evaluation(Block):
    split: str = "val"
    mode: Literal["whole", "slide", "multi_scale"] = "whole"
    batch_size: PositiveInt = 8
    max_images: PositiveInt | None = None
    limit: PositiveInt | None = None


#: experiments.closed_set.CLOSED_SET_MODELS's heads (a test keeps the two equal)
CLOSED_SET_HEADS = ("fcn", "pspnet", "deeplabv3", "deeplabv3plus", "upernet", "ccnet", "isnet")


class ClosedSetModel(Block):
    head: Literal[CLOSED_SET_HEADS]
    backbone: str
    channels: PositiveInt | None = None
    aux_channels: PositiveInt | None = None
    auxiliary_head: Annotated[bool, Field(strict=True)] = True  # MMSeg's FCN auxiliary head (not in eq. 3.12 / 4.21)
    aux_loss_weight: NonNegativeRate = 0.4


#: ExtendedContextAwareClassifier's other arguments a ``cfg`` may set (typed by the model itself; a test
#: keeps this list and the constructor's signature equal)
ECAC_OTHER_ARGUMENTS = (
    "projector_hidden_channels",
    "memory_update",
    "use_calibration",
    "use_reweighting",
    "detach_teacher",
    "cosine_temperature",
    "student_center_softmax",
    "teacher_absent_centers",
    "label_resize",
    "pixel_losses_at",
)


class ECACConfig(Block):
    """The ECAC switches of issues 14 and 28 (models/ecac.py documents each). A key that is neither a
    field here nor one of :data:`ECAC_OTHER_ARGUMENTS` is a typo, refused with the closest names."""

    @model_validator(mode="after")
    def _known_arguments(self) -> ECACConfig:
        known = [*type(self).model_fields, *ECAC_OTHER_ARGUMENTS]
        for key in self.model_extra or {}:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=2)
                hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
                raise ValueError(f"ECAC has no argument {key!r}{hint}")
        return self

    coarse_loss_weight: NonNegativeRate = 0.4
    intra_variance_on: Literal["logits", "probabilities"] = "probabilities"
    intra_variance_detach_features: Annotated[bool, Field(strict=True)] = True
    intra_variance_start_iter: NonNegativeInt = 0
    memory_learning: Literal["momentum", "loss_and_momentum"] = "momentum"
    memory_logit_temperature: Rate | None = 15.0
    # eq. 4.12's class average (losses.ecac.KL_AVERAGES): 1/C in the text (conf/thesis); the classes present
    # in the batch here (the loss before issue 28; docs/fidelity.md: what the choice changes)
    kl_average: Literal["all_classes", "present_classes"] = "present_classes"
    # the loss weights and schedule the add-on reads (models.ecac.ExtendedContextAwareClassifier's defaults)
    memory_momentum: Annotated[float, BeforeValidator(_number), Field(ge=0, le=1)] = 0.1
    teacher_ce_weight: NonNegativeRate = 1.0
    kl_weight: NonNegativeRate = 1.0
    intra_variance_weight: NonNegativeRate = 50.0
    memory_loss_weight: NonNegativeRate = 1.0
    memory_loss_start_iter: NonNegativeInt = 1000


class CAAConfig(Block):
    """CAA's arguments (``models.caa.ClassAwareAffinity``; its defaults), checked as deeply as the add-on
    reads them: a weight given as text fails here, not inside the affinity loss after the baseline trained.
    Closed: an unknown key (a typo) is refused here."""

    model_config = ConfigDict(extra="forbid")

    channels: PositiveInt = 512
    affinity_channels: PositiveInt = 256
    reduction_kernel_size: Literal[1, 3] = 1
    use_class_center: Annotated[bool, Field(strict=True)] = True
    use_semantic_affinity: Annotated[bool, Field(strict=True)] = True
    use_intra: Annotated[bool, Field(strict=True)] = True
    use_inter: Annotated[bool, Field(strict=True)] = True
    affinity_loss_weight: NonNegativeRate = 1.0
    aux_loss_weight: NonNegativeRate = 0.4
    normalize_context: Annotated[bool, Field(strict=True)] = True
    association_scale: Rate = 1.0
    dropout: Annotated[float, BeforeValidator(_number), Field(ge=0, le=1)] = 0.1
    memory_efficient: Annotated[bool, Field(strict=True)] = True
    chunk_size: PositiveInt = 256


#: The add-ons whose ``cfg`` has a model (``addon.name`` → model).
ADDON_CONFIGS: dict[str, type[Block]] = {"caa": CAAConfig, "ecac": ECACConfig}


class Addon(Block):
    """``addon``: name, eq. 4.14 class weights, the add-on's arguments (``cfg``, checked by the
    add-on's model in :data:`ADDON_CONFIGS`)."""

    name: str | None = None
    cfg: dict[str, Any] = {}

    @field_validator("cfg")
    @classmethod
    def _addon_cfg(cls, value: dict[str, Any], info) -> dict[str, Any]:
        model = ADDON_CONFIGS.get(str(info.data.get("name")))
        if model is not None:
            model.model_validate(value)
        return value


class ClosedSet(Block):
    """``caa`` / ``ecac`` (and the shared ``_closed_set``)."""

    model: ClosedSetModel
    addon: Addon | None = None
    training: ClosedSetTraining
    augmentation: Augmentation
    evaluation: Evaluation


class AblationReport(Block):
    decimals: NonNegativeInt = 2
    verdict_rule: Literal["t95", "2se"] = "t95"  # seg_pipelines.statistics.INTERVAL_RULES


class ClosedSetAblations(Block):
    """``caa_ablations`` / ``ecac_ablations``: seeds are a count (0..n-1) or a list; the training
    seed is set per run."""

    report: AblationReport = AblationReport()

    seeds: PositiveInt | Annotated[list[NonNegativeInt], Field(min_length=1)] = 3
    model: ClosedSetModel
    addon: Addon | None = None
    training: ClosedSetTraining
    augmentation: Augmentation
    evaluation: Evaluation


class OVSSTraining(Training):
    """AdamW (engine.ovss_training.OVSSTrainConfig's fields)."""

    weight_decay: NonNegativeRate = 1e-4
    checkpoint_interval: PositiveInt = 100
    checkpoint_seconds: PositiveNumber | None = None
    foreach: bool | None = None
    # not in the thesis, each a switch (engine/ovss_training.py; conf/thesis: CAT-Seg's schedule and CLIP
    # multiplier, no clipping, the BCE over all classes)
    lr_schedule: Literal["cosine", "poly", "constant"] = "cosine"
    clip_lr_multiplier: NonNegativeRate = 0.1
    min_lr_ratio: Probability = 0.01  # where the cosine ends, × lr
    grad_clip_norm: Rate | None = 1.0
    loss_on_kept_classes: Annotated[bool, Field(strict=True)] = True


#: models.ovss.sam.SAM_ENCODER_CONFIGS's variants (a test keeps the two equal)
SAM_VARIANTS = ("vit_b", "vit_l", "vit_h", "tiny", "tiny_l")


class OVSSModel(Block):
    architecture: Literal["catseg", "lsmseg"]
    top_k: NonNegativeInt = 0

    @model_validator(mode="after")
    def _known_sam_variant(self) -> OVSSModel:
        variant = (self.model_extra or {}).get("sam_variant")
        if variant is not None and variant not in SAM_VARIANTS:
            raise ValueError(f"sam_variant must be one of {list(SAM_VARIANTS)}, got {variant!r}")
        return self


class Clip(Block):
    model: str
    pretrained: str | None = None
    image_size: PositiveInt


class BenchmarkDataset(Block):
    """A benchmark that is a dataset of its own (the thesis's A-847 … VOCb; README "Real datasets")."""

    name: str
    family: str
    root: str
    split: str = "val"
    reader_kwargs: dict[str, Any] = {}
    vocabulary: str | None = None

    @model_validator(mode="after")
    def _folder(self) -> BenchmarkDataset:
        return _check_folder_dataset(self, [self.split])


class PromptComparison(Block):
    """``lsmseg`` with ``prompts: prompt_set``: LSMSeg trained with the prompt set and with the templates
    on these training seeds, the unseen mIoU compared paired (``rule``)."""

    seeds: list[NonNegativeInt] = [0, 1, 2]
    rule: Literal["t95", "2se"] = "t95"


class LSMSeg(Block):
    num_threads: PositiveInt | None = None
    prompt_comparison: PromptComparison = PromptComparison()
    train_vocabulary: str  # a synthetic-world vocabulary (seen) or "dataset": the prepared dataset's classes
    benchmarks: Annotated[list[str | BenchmarkDataset], Field(min_length=1)]
    prompts: Literal["world", "prompt_set", "templates"] = "world"
    clip: Clip
    models: dict[str, OVSSModel]
    training: OVSSTraining
    augmentation: Augmentation
    evaluation: Evaluation


class LSMSegAblations(Block):
    seeds: Annotated[list[NonNegativeInt], Field(min_length=1)] | PositiveInt = 3
    enriched_prompts: Literal["world", "prompt_set"] = "world"
    verdict_rule: Literal["t95", "2se"] = "t95"  # seg_pipelines.statistics.INTERVAL_RULES
    setup: LSMSeg


class Retry(Block):
    max_attempts: PositiveInt = 4
    base_delay: NonNegativeNumber = 1.0
    multiplier: Annotated[float, Field(ge=1)] = 2.0
    max_delay: NonNegativeNumber = 20.0


class Scoring(Block):
    mode: Literal["zero_shot", "finetune"] = "zero_shot"
    batch_size: PositiveInt = 32
    num_threads: PositiveInt | None = None
    seed: NonNegativeInt = 0


class Noise(Block):
    replicates: PositiveInt = 3
    rule: Literal["2se", "t95"] = "2se"
    held_out: Annotated[bool, Field(strict=True)] = True


class LLMSamples(Block):
    """The LLM as a noise source (issue 26): each (class, attribute) question asked ``n`` times with
    sampling (sample i at ``seed + i``); ``use``: ensemble (each class's text embedding is the mean of
    its n prompts' L2-normalised embeddings, CuPL) or replicates (each sample set scored as its own
    LLM row, and the headline verdict's agreement over them reported)."""

    n: PositiveInt = 1
    temperature: NonNegativeNumber = 0.7
    seed: NonNegativeInt = 0
    use: Literal["ensemble", "replicates"] = "ensemble"

    @field_validator("temperature")
    @classmethod
    def _sampled(cls, value: float, info) -> float:
        if info.data.get("n", 1) > 1 and value <= 0:
            raise ValueError("n > 1 samples at temperature 0 are n copies of one greedy answer: set temperature > 0")
        return value


class AttributeSelection(Block):
    retry: Retry = Retry()
    llm_samples: LLMSamples = LLMSamples()
    noise: Noise = Noise()
    prompt_composition: Literal["description", "template_description"] = "description"
    # a combination whose descriptions do not all fit the text context: scored shortened and said so in
    # the table's "prompts shortened" column (report), or an error naming the classes (refuse)
    prompt_overflow: Literal["report", "refuse"] = "report"
    attributes: Annotated[list[str], Field(min_length=1)]
    benchmarks: Annotated[list[str], Field(min_length=1)]
    scoring: Scoring = Scoring()
    top_k: PositiveInt = 4
    max_sentences: PositiveInt = 2
    max_chars: PositiveInt = 300
    max_images: PositiveInt | None = None
    description_examples: Literal["per_attribute", "none"] = "per_attribute"


class ClipTraining(Block):
    steps: PositiveInt
    batch_size: PositiveInt
    lr: Rate
    image_size: PositiveInt
    seed: NonNegativeInt = 0
    description_caption_probability: Probability = 0.0
    description_header_probability: Probability = 0.5
    description_sentences: PositiveInt = 3


class ClipPretraining(Block):
    num_threads: PositiveInt | None = None
    training: ClipTraining


class SamTraining(Block):
    """``experiments.sam_pretraining.SamPretrainingConfig``'s fields (its defaults where left out)."""

    variant: Literal["tiny", "tiny_l"] = "tiny"
    image_size: PositiveInt = 96
    steps: PositiveInt
    batch_size: PositiveInt
    prompts_per_image: PositiveInt = 4
    lr: Rate
    min_lr: NonNegativeRate = 1e-5
    warmup_steps: NonNegativeInt = 20
    weight_decay: NonNegativeRate = 0.1
    box_probability: Probability = 0.5
    min_region_pixels: PositiveInt = 16
    flip_probability: Probability = 0.5
    focal_weight: NonNegativeRate = 20.0  # SAM's 20 : 1 focal : dice
    dice_weight: NonNegativeRate = 1.0
    iou_weight: NonNegativeRate = 1.0
    seed: NonNegativeInt = 0
    log_interval: PositiveInt = 10
    checkpoint_interval: PositiveInt = 100


#: The block of ``sam_pretraining`` that trains each embedded-default SAM: ``tiny`` (the SAM-B stand-in,
#: ``tiny_sam_checkpoint``) and ``tiny_l`` (the SAM-L stand-in, ``tiny_sam_l_checkpoint``).
SAM_TRAINING_BLOCKS: dict[str, str] = {"tiny": "training", "tiny_l": "training_l"}


class SamPretraining(Block):
    num_threads: PositiveInt | None = None
    checkpoint_dir: str | None = None
    train_split: str = "train"
    eval_split: str = "val"
    training: SamTraining  # the tiny SAM (SAM-B stand-in): variant tiny
    training_l: SamTraining  # the larger one (SAM-L stand-in): variant tiny_l

    @field_validator("training", "training_l")
    @classmethod
    def _trains_its_variant(cls, block: SamTraining, info) -> SamTraining:
        expected = next(variant for variant, name in SAM_TRAINING_BLOCKS.items() if name == info.field_name)
        if block.variant != expected:
            raise ValueError(f"variant is {block.variant!r}; this block trains {expected!r}")
        return block


class FolderDatasetSettings(BaseModel):
    """``reader_kwargs`` of the ``folder`` family (``datasets.readers.FolderReader``'s arguments; README
    "Your own data"). Paths are relative to the dataset ``root`` unless absolute. Unknown keys are errors:
    a typo must not fall back to a default."""

    model_config = ConfigDict(extra="forbid")

    classes: str = "classes.txt"
    images: str = "images"
    masks: str = "masks"
    mask_format: Literal["ids", "rgb"] = "ids"
    palette: str | None = None
    ignore_colors: list[str] = []
    ignore_index: Annotated[int, Field(strict=True, ge=0, le=65535)] = 255
    reduce_zero_label: Annotated[bool, Field(strict=True)] = False
    split_files: dict[str, str] | None = None


def folder_dataset_problems(root: str, reader_kwargs: Mapping[str, Any], splits: list[str]) -> list[str]:
    """What stops a ``folder`` dataset before any file is read, one line per problem naming the key:
    an unknown or mistyped ``reader_kwargs`` key, a missing root / folder / class list / palette / split
    file, a split with neither a subfolder nor a split file. Paths resolve from the working directory
    (the project root under ``kedro run``)."""
    try:
        settings = FolderDatasetSettings.model_validate(dict(reader_kwargs or {}))
    except ValidationError as error:
        known = ", ".join(FolderDatasetSettings.model_fields)
        return [
            f"reader_kwargs.{'.'.join(str(p) for p in issue['loc'])}: "
            + ("unknown key (known: " + known + ")" if issue["type"] == "extra_forbidden" else issue["msg"])
            for issue in error.errors()
        ]
    base = Path(root)
    if not base.is_dir():
        return [f"root = {root!r}: no such folder ({base.resolve()})"]

    def under_root(path: str) -> Path:
        return Path(path) if Path(path).is_absolute() else base / path

    problems = []
    files = {
        "classes": settings.classes,
        "palette": settings.palette,
        **{f"split_files.{split}": path for split, path in (settings.split_files or {}).items()},
    }
    for key, path in files.items():
        if path is not None and not under_root(path).is_file():
            problems.append(f"reader_kwargs.{key} = {path!r}: no such file ({under_root(path)})")
    for key in ("images", "masks"):
        folder = getattr(settings, key)
        if not under_root(folder).is_dir():
            problems.append(f"reader_kwargs.{key} = {folder!r}: no such folder ({under_root(folder)})")
    if settings.mask_format == "rgb" and settings.palette is None:
        problems.append("reader_kwargs.palette: mask_format 'rgb' needs a palette file (one colour per class line)")
    if settings.mask_format == "ids" and settings.ignore_colors:
        problems.append("reader_kwargs.ignore_colors: applies to mask_format 'rgb' only")
    images = under_root(settings.images)
    for split in splits:
        if settings.split_files is not None:
            if split not in settings.split_files:
                problems.append(
                    f"splits: {split!r} has no file in reader_kwargs.split_files {sorted(settings.split_files)}"
                )
        elif images.is_dir() and not (images / split).is_dir():
            problems.append(
                f"splits: {split!r} has no folder {images / split} (splits are subfolders of the image and mask "
                "folders, or set reader_kwargs.split_files)"
            )
    return problems


def _check_folder_dataset(block: Any, splits: list[str]) -> Any:
    """Raise (naming every key) if ``block`` is a ``folder`` dataset that cannot be read."""
    if block.family == "folder":
        problems = folder_dataset_problems(block.root, block.reader_kwargs, splits)
        if getattr(block, "vocabulary", None):
            problems.append(f"vocabulary = {block.vocabulary!r}: a folder dataset's vocabulary is its class list")
        if problems:
            raise ValueError("folder dataset: " + "; ".join(problems))
    return block


class Dataset(Block):
    family: str
    root: str
    splits: Annotated[list[str], Field(min_length=1)]
    reader_kwargs: dict[str, Any] = {}

    @model_validator(mode="after")
    def _folder(self) -> Dataset:
        return _check_folder_dataset(self, self.splits)


class Preparation(Block):
    on_bad_sample: Literal["raise", "skip"] = "raise"
    overview_images: PositiveInt = 8


class ClassStatistics(Block):
    split: str = "train"
    rho: NonNegativeRate = 0.5
    group_size: PositiveInt = 10


class Inference(Block):
    """``predict`` / ``evaluate``: a checkpoint and how to run it (checked again, with file names, when loading)."""

    checkpoint: str | None = None  # (model_config, model_key: pydantic reserves the names; checked on load)
    model: dict[str, Any] | None = None
    vocabulary: str | None = None
    classes: Annotated[list[str], Field(min_length=1)] | str | None = None  # text: "cat;dog" (--params)
    templates: Annotated[list[str], Field(min_length=1)] = ["a photo of a {}."]
    mode: Literal["whole", "slide", "multi_scale"] = "whole"
    crop_size: PositiveInt | Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] | None = None
    stride: PositiveInt | Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] | None = None
    scales: Annotated[list[PositiveNumber], Field(min_length=1)] = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    flip: bool = True


class Predict(Inference):
    input: str | None = None
    short_side: PositiveInt | None = None
    max_megapixels: PositiveNumber | None = 4.0  # the largest inference pass (None: no limit)
    alpha: Probability = 0.5


class EvaluationDataset(Block):
    family: str
    root: str
    split: str = "val"
    reader_kwargs: dict[str, Any] = {}
    vocabulary: str | None = None

    @model_validator(mode="after")
    def _folder(self) -> EvaluationDataset:
        return _check_folder_dataset(self, [self.split])


class Evaluate(Inference):
    dataset: EvaluationDataset
    protocol: Literal["closed_set", "open_vocabulary"] | None = None
    output_size: PositiveInt | None = None
    limit: PositiveInt | None = None


class Export(Block):
    """``export``: a checkpoint to ONNX, checked on ``dataset`` (checked again, with file names, when loading)."""

    checkpoint: str | None = None  # (model_config, model_key: pydantic reserves the names; checked on load)
    model: dict[str, Any] | None = None
    output: str | None = None
    vocabulary: str | None = None
    classes: Annotated[list[str], Field(min_length=1)] | str | None = None
    templates: Annotated[list[str], Field(min_length=1)] = ["a photo of a {}."]
    dataset: EvaluationDataset
    sample_size: Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] | str = [67, 93]
    compare_images: PositiveInt = 3
    compare_sizes: list[Annotated[list[PositiveInt], Field(min_length=2, max_length=2)] | str] | str = [[67, 93]]
    tolerance: NonNegativeRate = 1e-4
    miou_tolerance: NonNegativeRate = 0.01
    opset: Annotated[int, Field(strict=True, ge=17)] = 18
    limit: PositiveInt | None = None
    show_progress: bool = True


#: Parameter block (top-level key) → its model.
SCHEMAS: dict[str, type[Block]] = {
    "_closed_set": ClosedSet,
    "caa": ClosedSet,
    "ecac": ClosedSet,
    "caa_ablations": ClosedSetAblations,
    "ecac_ablations": ClosedSetAblations,
    "lsmseg": LSMSeg,
    "lsmseg_ablations": LSMSegAblations,
    "lsmseg_attribute_selection": AttributeSelection,
    "clip_pretraining": ClipPretraining,
    "sam_pretraining": SamPretraining,
    "dataset": Dataset,
    "preparation": Preparation,
    "class_statistics": ClassStatistics,
    "predict": Predict,
    "evaluate": Evaluate,
    "export": Export,
}


class ParameterError(ValueError):
    """Parameters that cannot run; the message has one line per problem, naming the key."""


def _value_at(values: Any, location: tuple[Any, ...]) -> Any:
    for part in location:
        if isinstance(values, Mapping) and part in values:
            values = values[part]
        elif isinstance(values, list) and isinstance(part, int) and part < len(values):
            values = values[part]
        else:
            return "<missing>"
    return values


def check_parameters(params: Mapping[str, Any], blocks: list[str] | None = None) -> None:
    """Validate ``blocks`` of ``params`` (default: every block with a schema); raise
    :class:`ParameterError` listing every problem as ``key = value: what is wrong``."""
    problems = []
    for block in blocks if blocks is not None else list(SCHEMAS):
        if block not in SCHEMAS or block not in params:
            continue
        try:
            SCHEMAS[block].model_validate(params[block])
        except ValidationError as error:
            for issue in error.errors():
                # without pydantic's validator / union-member tags ("function-after[...]", "constrained-int")
                location = tuple(p for p in issue["loc"] if not (isinstance(p, str) and ("-" in p or "[" in p)))
                key = ".".join(str(p) for p in (block, *location))
                value = repr(_value_at(params[block], location))
                value = value if len(value) <= 100 else value[:96] + " ..."  # a whole block: its message names the key
                problems.append(f"{key} = {value}: {issue['msg']}")
    if problems:
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(dict.fromkeys(problems)))

"""CLIP through open_clip: offline loading, dense features, q/k/v-selective fine-tuning.

Architectures are open_clip model configs (built-in ``ViT-B-16``, ``ViT-L-14-336``… and the
project's tiny ones in ``model_configs/``, registered with ``open_clip.add_model_config``);
weights are a separate argument: a checkpoint path, an open_clip tag already in the local cache,
or ``None`` (random init). Nothing here downloads.

    clip = load_clip("ViT-B-16", "openai", image_size=384)          # real path (QuickGELU from tag)
    clip = load_clip(TINY_CLIP_NAME, None)                          # embedded default
    encoder = CLIPDenseEncoder(clip, model_name=TINY_CLIP_NAME)
    configure_clip_finetuning(clip, "qv")                           # thesis Table 5.10, CLIP_qv

Dense features follow CAT-Seg: every patch token of the last layer goes through ``ln_post`` and
``proj`` into the joint image–text space; intermediate layers give guidance features.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
import torch.nn.functional as F
from open_clip.constants import (
    HF_SAFE_WEIGHTS_NAME,
    HF_WEIGHTS_NAME,
    OPENAI_DATASET_MEAN,
    OPENAI_DATASET_STD,
)
from torch import nn
from torch.nn.utils import parametrize

from seg_pipelines.models.checkpoints import read_checkpoint

MODEL_CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
TINY_CLIP_NAME = "TinyCLIP-ViT-8-96"

CLIP_FINETUNE_MODES = ("frozen", "qk", "kv", "qv", "full")

# CAT-Seg's default single template and a small ensemble for template averaging.
DEFAULT_TEMPLATES: tuple[str, ...] = ("a photo of a {}.",)
ENSEMBLE_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a photo of a small {}.",
    "a photo of a large {}.",
    "a cropped photo of a {}.",
    "there is a {} in the scene.",
    "a good photo of a {}.",
)

_REGISTERED_CONFIG_DIRS: set[Path] = set()


def register_model_configs(config_dir: str | Path = MODEL_CONFIG_DIR) -> list[str]:
    """Register the JSON architectures in ``config_dir`` with open_clip (idempotent); return names."""
    config_dir = Path(config_dir).resolve()
    if config_dir not in _REGISTERED_CONFIG_DIRS:
        open_clip.add_model_config(config_dir)
        _REGISTERED_CONFIG_DIRS.add(config_dir)
    return sorted(path.stem for path in config_dir.glob("*.json"))


def _cached_hf_file(repo_id: str, filenames: Iterable[str], cache_dir: str | None) -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub ships with open_clip
        return None
    for filename in filenames:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


def resolve_clip_weights(
    model_name: str, pretrained: str | os.PathLike | None, cache_dir: str | None = None
) -> tuple[str | None, bool]:
    """Turn ``pretrained`` (path, open_clip tag or None) into a local file, never downloading.

    Returns ``(checkpoint_path or None, tag_expects_quick_gelu)``. A tag whose weights are not in
    the local Hugging Face / open_clip cache raises ``FileNotFoundError`` naming where it looked.
    """
    if pretrained is None or str(pretrained) == "":
        return None, False
    path = Path(pretrained).expanduser()
    if path.is_file():
        return str(path), False
    tag_cfg = open_clip.get_pretrained_cfg(model_name.replace("/", "-"), str(pretrained))
    if not tag_cfg:
        known = open_clip.list_pretrained_tags_by_model(model_name.replace("/", "-"))
        raise FileNotFoundError(
            f"CLIP weights {str(pretrained)!r} for {model_name!r}: no such file and not an open_clip "
            f"tag (known tags: {known})"
        )
    quick_gelu = bool(tag_cfg.get("quick_gelu", False))
    looked_in: list[str] = []
    if tag_cfg.get("file") and os.path.isfile(tag_cfg["file"]):
        return tag_cfg["file"], quick_gelu
    if tag_cfg.get("hf_hub"):
        repo_id, filename = os.path.split(tag_cfg["hf_hub"])  # "org/repo/" or "org/repo/file.bin"
        candidates = [filename] if filename else [HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME]
        if filename.endswith((".bin", ".pth")):
            candidates.insert(0, filename[:-4] + ".safetensors")
        found = _cached_hf_file(repo_id, candidates, cache_dir)
        if found:
            return found, quick_gelu
        looked_in.append(f"Hugging Face cache for {repo_id} ({', '.join(candidates)})")
    if tag_cfg.get("url"):
        url_cache = Path(cache_dir or os.path.expanduser("~/.cache/clip"))
        local = url_cache / os.path.basename(tag_cfg["url"])
        if local.is_file():
            return str(local), quick_gelu
        looked_in.append(str(local))
    raise FileNotFoundError(
        f"CLIP weights for {model_name!r} tag {str(pretrained)!r} are not available offline; looked in: "
        f"{'; '.join(looked_in) or 'nowhere (tag has no source)'}. Nothing is downloaded at run time: "
        "pass a checkpoint path instead, or pre-populate the cache."
    )


def load_clip(
    model_name: str,
    pretrained: str | os.PathLike | None = None,
    *,
    image_size: int | None = None,
    force_quick_gelu: bool | None = None,
    cache_dir: str | None = None,
) -> nn.Module:
    """Build open_clip architecture ``model_name`` with weights from a path, cached tag or none.

    Args:
        model_name: open_clip architecture (``ViT-B-16``, ``ViT-L-14-336``, ``TinyCLIP-ViT-8-96``…).
        pretrained: checkpoint path, open_clip tag resolvable from the local cache, or None.
        image_size: build the vision tower at this size (e.g. 384 for ViT-B/16 as in thesis 5.3.2);
            open_clip interpolates the checkpoint's position embedding.
        force_quick_gelu: QuickGELU activations (OpenAI weights need them). None = follow the tag.
        cache_dir: cache folder to look in for tags.
    """
    register_model_configs()
    checkpoint_path, tag_quick_gelu = resolve_clip_weights(model_name, pretrained, cache_dir)
    quick_gelu = tag_quick_gelu if force_quick_gelu is None else force_quick_gelu
    try:
        model = open_clip.create_model(
            model_name,
            pretrained=checkpoint_path,
            force_quick_gelu=quick_gelu,
            force_image_size=image_size,
            cache_dir=cache_dir,
            weights_only=True,
            pretrained_text=False,
        )
    except Exception:
        if checkpoint_path is not None:  # a bad file: raise the error that names it and says why
            read_checkpoint(checkpoint_path, "CLIP checkpoint")
        raise
    model.eval()
    return model


def clip_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """open_clip-layout state dict; split q/k/v parametrizations are packed back to ``in_proj_*``."""
    state = {}
    split_groups: dict[str, list[tuple[int, torch.Tensor]]] = {}
    for key, value in model.state_dict().items():
        if ".parametrizations." in key:
            owner, rest = key.split(".parametrizations.", 1)
            tensor_name, original = rest.split(".", 1)
            split_groups.setdefault(f"{owner}.{tensor_name}", []).append((int(original[-1]), value))
        else:
            state[key] = value
    for key, parts in split_groups.items():
        state[key] = torch.cat([value for _, value in sorted(parts, key=lambda item: item[0])], dim=0)
    return state


def save_clip_checkpoint(model: nn.Module, path: str | os.PathLike) -> Path:
    """Save ``model``'s weights as a plain tensor dict that :func:`load_clip` reads (weights_only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({key: value.detach().cpu().contiguous() for key, value in clip_state_dict(model).items()}, path)
    return path


# --------------------------------------------------------------------------- fine-tuning


class PackedQueryKeyValue(nn.Module):
    """Parametrization storing a packed ``in_proj`` tensor as three tensors (query, key, value)."""

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return torch.cat([query, key, value], dim=0)

    def right_inverse(self, packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        query, key, value = packed.chunk(3, dim=0)
        return query.clone(), key.clone(), value.clone()


def _attention_modules(model: nn.Module) -> list[nn.Module]:
    """Every attention module with a packed ``in_proj_weight`` (nn.MultiheadAttention, open_clip Attention)."""
    modules = []
    for module in model.modules():
        weight = getattr(module, "in_proj_weight", None)
        if isinstance(weight, torch.Tensor) and weight.dim() == 2 and weight.shape[0] == 3 * weight.shape[1]:
            modules.append(module)
    return modules


def split_query_key_value(model: nn.Module) -> int:
    """Store every packed ``in_proj_weight``/``in_proj_bias`` as separate q, k, v parameters.

    Returns the number of attention modules converted (already split modules are skipped).
    """
    converted = 0
    for module in _attention_modules(model):
        for name in ("in_proj_weight", "in_proj_bias"):
            tensor = getattr(module, name, None)
            if tensor is None or parametrize.is_parametrized(module, name):
                continue
            parametrize.register_parametrization(module, name, PackedQueryKeyValue())
            converted += 1 if name == "in_proj_weight" else 0
    return converted


def configure_clip_finetuning(
    model: nn.Module, mode: str = "qv", *, train_position_embedding: bool = False
) -> list[str]:
    """Freeze CLIP except what ``mode`` fine-tunes; return the trainable parameter names.

    ``frozen``: nothing; ``full``: everything; ``qk``/``kv``/``qv``: only those attention projections
    (weight and bias) of every attention block of both towers (thesis Table 5.10; CLIP_qv is best).
    Packed ``in_proj`` tensors are split into separate q/k/v parameters so optimizers (weight decay
    included) never touch the frozen slices. CAT-Seg additionally trains position embeddings in its
    "attention" mode: ``train_position_embedding=True`` reproduces that.
    """
    if mode not in CLIP_FINETUNE_MODES:
        raise ValueError(f"unknown CLIP fine-tuning mode {mode!r}; choose one of {CLIP_FINETUNE_MODES}")
    for parameter in model.parameters():
        parameter.requires_grad_(mode == "full")
    if mode in ("qk", "kv", "qv"):
        split_query_key_value(model)
        chosen = {"q": 0, "k": 1, "v": 2}
        trainable_slots = {chosen[letter] for letter in mode}
        for module in _attention_modules(model):
            for name in ("in_proj_weight", "in_proj_bias"):
                if not parametrize.is_parametrized(module, name):
                    continue
                originals = module.parametrizations[name]
                for slot in range(3):
                    getattr(originals, f"original{slot}").requires_grad_(slot in trainable_slots)
    if train_position_embedding:
        for name, parameter in model.named_parameters():
            if "positional_embedding" in name:
                parameter.requires_grad_(True)
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad]


def encode_text_trimmed(clip_model: nn.Module, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """``clip_model.encode_text`` on tokens cut to the longest prompt in the batch (exact, and faster).

    The CLIP text tower is causal and pools at the end-of-text token, so the padding after the
    longest prompt never influences the result; the pairwise attention cost drops with the length.
    Falls back to ``encode_text`` for towers that are not causal or do not pool at the EOT token.
    """
    attn_mask = getattr(clip_model, "attn_mask", None)
    if (
        attn_mask is None
        or getattr(clip_model, "text_pool_type", None) != "argmax"
        or not hasattr(clip_model, "token_embedding")
    ):
        return clip_model.encode_text(tokens, normalize=normalize)
    length = max(1, int((tokens != 0).sum(dim=1).max()))
    tokens = tokens[:, :length]
    cast_dtype = clip_model.transformer.get_cast_dtype()
    x = clip_model.token_embedding(tokens).to(cast_dtype) + clip_model.positional_embedding[:length].to(cast_dtype)
    x = clip_model.transformer(x, attn_mask=attn_mask[:length, :length])
    x = clip_model.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]  # EOT has the largest id
    projection = clip_model.text_projection
    if projection is not None:
        x = projection(x) if isinstance(projection, nn.Linear) else x @ projection
    return F.normalize(x, dim=-1) if normalize else x


# --------------------------------------------------------------------------- dense features


@dataclass
class DenseCLIPFeatures:
    """Per-patch CLIP image features.

    dense: (B, D, h, w) last-layer patch tokens after ``ln_post`` and ``proj`` (joint space).
    guidance: intermediate-layer patch tokens, each (B, width, h, w), shallow to deep.
    """

    dense: torch.Tensor
    guidance: list[torch.Tensor]


def interpolate_position_embedding(position_embedding: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Resize a ViT ``(1 + N, C)`` position embedding (class token first) to a new patch grid."""
    class_position, patch_position = position_embedding[:1], position_embedding[1:]
    old_side = int(round(patch_position.shape[0] ** 0.5))
    if (old_side, old_side) == tuple(grid):
        return position_embedding
    patch_position = patch_position.reshape(1, old_side, old_side, -1).permute(0, 3, 1, 2)
    patch_position = F.interpolate(patch_position, size=grid, mode="bicubic", align_corners=False)
    patch_position = patch_position.permute(0, 2, 3, 1).reshape(grid[0] * grid[1], -1)
    return torch.cat([class_position, patch_position], dim=0)


def default_guidance_layers(num_layers: int) -> tuple[int, int]:
    """CAT-Seg's guidance layers: [3, 7] of 12 (ViT-B), [7, 15] of 24 (ViT-L)."""
    return max(num_layers // 3 - 1, 0), max(2 * num_layers // 3 - 1, 0)


class CLIPDenseEncoder(nn.Module):
    """Wrap an open_clip CLIP (ViT image tower) for dense prediction.

    Args:
        clip_model: an open_clip ``CLIP`` with a ``VisionTransformer`` image tower.
        model_name: open_clip architecture name, used to pick the tokenizer.
        guidance_layers: 0-based transformer block indices for guidance features
            (default: CAT-Seg's one-third / two-thirds layers).
    """

    def __init__(
        self,
        clip_model: nn.Module,
        *,
        model_name: str | None = None,
        guidance_layers: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        visual = getattr(clip_model, "visual", None)
        if visual is None or not hasattr(visual, "conv1") or not hasattr(visual, "transformer"):
            raise TypeError(
                f"CLIPDenseEncoder needs an open_clip VisionTransformer image tower, got {type(visual).__name__}"
            )
        self.clip = clip_model
        self.model_name = model_name
        num_layers = len(visual.transformer.resblocks)
        layers = tuple(guidance_layers) if guidance_layers is not None else default_guidance_layers(num_layers)
        if any(not 0 <= index < num_layers for index in layers):
            raise ValueError(f"guidance layers {layers} out of range for a {num_layers}-layer image tower")
        self.guidance_layers = layers
        self.register_buffer("pixel_mean", torch.tensor(OPENAI_DATASET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(OPENAI_DATASET_STD).view(1, 3, 1, 1), persistent=False)
        self._tokenizer = None

    @property
    def embed_dim(self) -> int:
        return int(self.clip.visual.proj.shape[1])

    @property
    def width(self) -> int:
        return int(self.clip.visual.transformer.width)

    @property
    def patch_size(self) -> int:
        return int(self.clip.visual.patch_size[0])

    @property
    def image_size(self) -> int:
        return int(self.clip.visual.image_size[0])

    @property
    def context_length(self) -> int:
        return int(self.clip.context_length)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] → CLIP's normalisation."""
        return (images - self.pixel_mean) / self.pixel_std

    def _block_outputs(self, tokens: torch.Tensor, indices: list[int]) -> list[torch.Tensor]:
        transformer = self.clip.visual.transformer
        if hasattr(transformer, "forward_intermediates"):  # open_clip >= 2.24
            _, outputs = transformer.forward_intermediates(tokens, indices=indices, stop_early=True)
            return outputs
        outputs = []  # pragma: no cover - older open_clip
        for index, block in enumerate(transformer.resblocks):
            tokens = block(tokens)
            if index in indices:
                outputs.append(tokens)
        return outputs

    def forward(self, images: torch.Tensor) -> DenseCLIPFeatures:
        """Dense features of CLIP-normalised ``images`` (B, 3, H, W); H, W multiples of the patch."""
        visual = self.clip.visual
        patches = visual.conv1(images)
        batch, _, grid_h, grid_w = patches.shape
        tokens = patches.flatten(2).transpose(1, 2)
        class_token = visual.class_embedding.view(1, 1, -1).expand(batch, -1, -1).to(tokens.dtype)
        tokens = torch.cat([class_token, tokens], dim=1)
        tokens = tokens + interpolate_position_embedding(visual.positional_embedding, (grid_h, grid_w)).to(tokens.dtype)
        tokens = visual.ln_pre(tokens)  # patch dropout is skipped: dense prediction needs every token
        last = len(visual.transformer.resblocks) - 1
        indices = sorted(set(self.guidance_layers) | {last})
        outputs = dict(zip(indices, self._block_outputs(tokens, indices)))

        def to_map(sequence: torch.Tensor) -> torch.Tensor:
            return sequence[:, 1:].transpose(1, 2).reshape(batch, -1, grid_h, grid_w)

        dense = visual.ln_post(outputs[last])
        if visual.proj is not None:
            dense = dense @ visual.proj
        return DenseCLIPFeatures(
            dense=to_map(dense), guidance=[to_map(outputs[index]) for index in self.guidance_layers]
        )

    # ------------------------------------------------------------------ text side

    def tokenize(self, prompts: Sequence[Sequence[str]]) -> torch.Tensor:
        """Class-major prompts (K lists of P strings) → token ids (K, P, L)."""
        num_prompts = {len(per_class) for per_class in prompts}
        if len(num_prompts) != 1:
            raise ValueError(f"every class needs the same number of prompts, got counts {sorted(num_prompts)}")
        if self._tokenizer is None:
            if self.model_name is not None:
                register_model_configs()
                self._tokenizer = open_clip.get_tokenizer(self.model_name, context_length=self.context_length)
            else:
                self._tokenizer = open_clip.SimpleTokenizer(context_length=self.context_length)
        flat = [prompt for per_class in prompts for prompt in per_class]
        tokens = self._tokenizer(flat)
        return tokens.view(len(prompts), num_prompts.pop(), -1)

    def encode_text_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids (K, P, L) → text embeddings (K, P, D) in the joint space (not normalised)."""
        classes, prompts, length = tokens.shape
        embeddings = encode_text_trimmed(
            self.clip, tokens.reshape(classes * prompts, length).to(self.pixel_mean.device)
        )
        return embeddings.view(classes, prompts, -1)

    def encode_prompts(self, prompts: Sequence[Sequence[str]]) -> torch.Tensor:
        """Class-major prompt strings → text embeddings (K, P, D)."""
        return self.encode_text_tokens(self.tokenize(prompts))


def build_class_prompts(class_names: Sequence[str], templates: Sequence[str] = DEFAULT_TEMPLATES) -> list[list[str]]:
    """Fill every template with every class name: K lists of P prompts."""
    return [[template.format(name) for template in templates] for name in class_names]


def ensemble_text_embeddings(text_embeddings: torch.Tensor) -> torch.Tensor:
    """Template ensemble: mean of L2-normalised prompt embeddings, re-normalised; (K, P, D) → (K, 1, D)."""
    mean = F.normalize(text_embeddings, dim=-1).mean(dim=-2, keepdim=True)
    return F.normalize(mean, dim=-1)

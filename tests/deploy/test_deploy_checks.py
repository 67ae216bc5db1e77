"""The deployment checks `make test` runs find what they are there to find."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _check_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_check", DEPLOY / "check.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_schema_validation_refuses_a_misspelt_field() -> None:
    check = _check_module()
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "nscl", "securityContex": {}}]},
    }
    assert check.validate_schema([pod]), "a misspelt field passed the schema"
    del pod["spec"]["containers"][0]["securityContex"]  # type: ignore[index]
    assert check.validate_schema([pod]) == []


def test_hadolint_refuses_an_unpinned_root_image(tmp_path: Path) -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    assert subprocess.run([hadolint, str(dockerfile)], capture_output=True).returncode != 0
    ours = subprocess.run([hadolint, str(DEPLOY / "Dockerfile")], capture_output=True, text=True)
    assert ours.returncode == 0, ours.stdout


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl renders the kustomizations")
def test_the_rendered_manifests_meet_the_schema_and_hold_the_production_rules() -> None:
    check = _check_module()
    import yaml

    rendered = [
        doc
        for path in check.RENDERED
        for doc in yaml.safe_load_all(check.kustomize(DEPLOY / path))
        if doc
    ]
    assert check.validate_schema(rendered) == []
    kinds = {doc["kind"] for doc in rendered}
    assert {"PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"} <= kinds
    for doc in rendered:
        if doc["kind"] not in {"Deployment", "Job"}:
            continue
        pod = doc["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert "@sha256:" in container["image"], container["image"]
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert "envFrom" not in container  # secrets come as files
    job = next(doc for doc in rendered if doc["kind"] == "Job")
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    mounted = {v["secret"]["secretName"] for v in job["spec"]["template"]["spec"]["volumes"]}
    assert mounted == {"nscl-migration"}  # the owner's credentials, and only for the Job
    services = {
        v["secret"]["secretName"]
        for doc in rendered
        if doc["kind"] == "Deployment"
        for v in doc["spec"]["template"]["spec"]["volumes"]
        if "secret" in v
    }
    assert services == {"nscl-service"}

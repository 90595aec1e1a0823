"""cert-manager's CRDs for tests (fetched by `make tools`: deploy/tools/fetch-cert-manager-crds.sh).

`crd_documents()` loads them; `validate_strictly()` checks an object against its CRD's schema the way
`kubernetes_validate --strict` checks built-in kinds: an unknown field is an error rather than pruned.
"""

from __future__ import annotations

import copy
import datetime
import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_FILE = REPO_ROOT / "deploy" / "tools" / "cert-manager.env"


def cert_manager_version() -> str:
    for line in ENV_FILE.read_text().splitlines():
        if line.startswith("CERT_MANAGER_VERSION="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError(f"{ENV_FILE} names no CERT_MANAGER_VERSION")


def crd_dir() -> Path:
    """The CRDs' directory; skips the test without them, fails it with CI=true."""
    path = REPO_ROOT / ".tools" / "cert-manager" / cert_manager_version()
    if not (path / ".complete").exists():
        problem = f"cert-manager CRDs missing in {path}: run `make tools` (needs Go and the module proxy)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI=true and {problem}")
        pytest.skip(problem)
    return path


@cache
def _crds() -> tuple[dict[str, Any], ...]:
    docs = []
    for path in sorted(crd_dir().glob("*.yaml")):
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return tuple(docs)


def crd_documents() -> list[dict[str, Any]]:
    """Every cert-manager.io CRD of the pinned version."""
    return copy.deepcopy(list(_crds()))


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every object that lists its properties closed to others, as strict decoding is."""
    schema = dict(schema)
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        schema.setdefault("additionalProperties", False)
        schema["properties"] = {name: _closed(sub) for name, sub in schema["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            schema[key] = _closed(schema[key])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in schema:
            schema[key] = [_closed(sub) for sub in schema[key]]
    return schema


def validate_strictly(obj: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError unless `obj` matches its cert-manager CRD's served version."""
    group, version = obj["apiVersion"].split("/")
    for crd in _crds():
        spec = crd["spec"]
        if spec["group"] != group or spec["names"]["kind"] != obj["kind"]:
            continue
        for served in spec["versions"]:
            if served["name"] == version and served.get("served"):
                schema = copy.deepcopy(served["schema"]["openAPIV3Schema"])
                # apiVersion, kind and metadata are the apiserver's, not the CRD's, to check.
                body = {k: v for k, v in obj.items() if k not in {"apiVersion", "kind", "metadata"}}
                for key in ("apiVersion", "kind", "metadata"):
                    schema.get("properties", {}).pop(key, None)
                jsonschema.validate(body, _closed(schema))
                return
    raise LookupError(f"no served CRD for {obj['apiVersion']} {obj['kind']}")


def controller_binary() -> Path:
    """The cert-manager controller built by `make tools` (deploy/cert-manager); skips the test without
    it, fails it with CI=true."""
    path = REPO_ROOT / ".tools" / "cert-manager" / cert_manager_version() / "cert-manager-controller"
    if not path.exists():
        problem = (
            f"cert-manager controller missing at {path}: run `make tools` (needs Go and the module proxy)"
        )
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI=true and {problem}")
        pytest.skip(problem)
    return path


class ControllerProcess:
    """The real cert-manager controllers as one process against a cluster, stopped with SIGTERM."""

    def __init__(self, binary: Path, kubeconfig: Path, log: Path) -> None:
        self.log_path = log
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [str(binary), f"--kubeconfig={kubeconfig}", "--cluster-resource-namespace=cert-manager"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def ca_material(common_name: str = "store-platform test CA") -> tuple[bytes, bytes]:
    """A fresh self-signed CA (certificate PEM, key PEM) for a CA ClusterIssuer."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem

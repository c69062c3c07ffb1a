"""Certificates for keys certops does not hold (csr_src, key_src), against Pebble: the key stays
where its owner keeps it, the store and the host get the certificate and chain only."""

from __future__ import annotations

import json
import os
import stat
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

pytestmark = pytest.mark.integration


def write_key(path, key) -> bytes:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.write_bytes(pem)
    path.chmod(0o600)
    return pem


def spki(public) -> bytes:
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_body(pem: bytes) -> bytes:
    """The base64 lines of a PEM key: what must appear in no file but its own."""
    return b"".join(pem.splitlines()[1:-1])


def test_the_key_stays_where_it_is_and_hosts_get_certificate_and_chain(controller, pebble_server, http01_responder):
    run_id = uuid.uuid4().hex[:8]
    by_key, by_csr = f"bykey-{run_id}.own.test", f"bycsr-{run_id}.own.test"
    keys = controller.work / "keys"
    keys.mkdir()
    key_path, csr_path = keys / "bykey.pem", keys / "bycsr.csr"
    key_pem = write_key(key_path, ec.generate_private_key(ec.SECP384R1()))
    hsm_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # stands in for an HSM's key
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, by_csr)]))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName(by_csr)]), critical=False)
           .sign(hsm_key, hashes.SHA256()))
    csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    dest = controller.work / "host"
    playbook = controller.playbook("own-keys", [
        {"certops.acme.certificate": {"store_path": str(controller.store), "certificates": [
            {"name": "bykey", "domains": [by_key], "key_src": str(key_path)},
            {"name": "bycsr", "domains": [by_csr], "csr_src": str(csr_path)}]}, "register": "issued"},
        {"certops.acme.install": {"store_path": str(controller.store), "dest": str(dest),
                                  "certificates": ["bykey", "bycsr"]}, "register": "installed"},
        {"ansible.builtin.copy": {"content": "{{ {'issued': issued, 'installed': installed} | to_json }}",
                                  "dest": str(controller.work / "out.json")}, "changed_when": False}])

    def run():
        controller.run(playbook, check=True)
        out = json.loads((controller.work / "out.json").read_text())
        return {c["name"]: c for c in out["issued"]["certificates"]}, out["installed"]

    issued, installed = run()
    assert [issued[n]["action"] for n in ("bykey", "bycsr")] == ["issue", "issue"]
    assert issued["bykey"]["key_type"] == "ec384" and issued["bycsr"]["key_type"] == "rsa2048"
    for name, public in (("bykey", serialization.load_pem_private_key(key_pem, None).public_key()),
                         ("bycsr", hsm_key.public_key())):
        held = dest / name
        assert sorted(os.listdir(held)) == ["cert.pem", "chain.pem", "fullchain.pem"]
        leaf = x509.load_pem_x509_certificate((held / "cert.pem").read_bytes())
        assert spki(leaf.public_key()) == spki(public)
        stored = controller.store / "certificates" / name / "current"
        assert not (stored / "privkey.pem").exists()
        assert json.loads((stored / "meta.json").read_text())["key"] == "kept elsewhere"
    assert key_path.read_bytes() == key_pem and stat.S_IMODE(key_path.stat().st_mode) == 0o600
    body = key_body(key_pem)
    for root in (controller.store, dest):
        for path in root.rglob("*"):
            if path.is_file():
                assert body not in b"".join(path.read_bytes().splitlines()), f"the key was copied into {path}"

    # Idempotent: nothing ordered, nothing shipped.
    issued, installed = run()
    assert [issued[n]["action"] for n in ("bykey", "bycsr")] == ["keep", "keep"]
    assert installed["changed"] is False and installed["bundles_sent"] == 0

    # The owner rotates the key: the next run orders for the new one.
    new_pem = write_key(key_path, ec.generate_private_key(ec.SECP384R1()))
    issued, installed = run()
    assert issued["bykey"]["action"] == "renew" and f"key_src {key_path}" in issued["bykey"]["reason"]
    assert issued["bycsr"]["action"] == "keep"
    leaf = x509.load_pem_x509_certificate((dest / "bykey" / "cert.pem").read_bytes())
    assert spki(leaf.public_key()) == spki(serialization.load_pem_private_key(new_pem, None).public_key())
    assert installed["changed_certificates"] == ["bykey"]

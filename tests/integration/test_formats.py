"""Extra formats through the certificates role: PKCS#12 (modern and legacy) read back by
openssl and Java's keytool with the given passphrase, a DER certificate and a combined PEM;
the second run ships nothing, a renewal rebuilds them, and the passphrase never shows."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from cryptography import x509

pytestmark = pytest.mark.integration

NAME = "app.formats.test"
PASSPHRASE = "Tr0ub4dor-and-3"
FORMATS = [{"type": "pkcs12", "passphrase": PASSPHRASE},
           {"type": "pkcs12", "file": "legacy.p12", "passphrase": PASSPHRASE, "encryption": "legacy"},
           {"type": "der"}, {"type": "pem_combined", "mode": "0640"}]


def openssl_pkcs12(path, *extra) -> str:
    return subprocess.run(["openssl", "pkcs12", "-in", str(path), "-passin", f"pass:{PASSPHRASE}", "-nodes", *extra],
                          check=True, capture_output=True, text=True).stdout


def test_pkcs12_der_and_combined_pem_are_installed_read_back_and_not_shipped_again(
        controller, pebble_server, http01_responder, account):
    dest = controller.work / "javahost"
    controller.write_inventory({"all": {"hosts": {"javahost": controller.local_host(
        certops_certificates_dest=str(dest),
        certops_certificates_list=[{"name": NAME, "domains": [NAME], "formats": FORMATS}],
        certops_certificates_acme_directory=pebble_server.directory_url,
        certops_certificates_acme_ca_path=pebble_server.ca_cert,
        certops_certificates_account_key_src=account["key_path"],
        certops_certificates_store_path=str(controller.work / "store"))}}})
    playbook = controller.role_playbook("formats", "certops_certificates_installed",
                                        str(controller.work / "installed.json"))
    first = controller.run(playbook, "-vvv", check=True)
    assert PASSPHRASE not in first.stdout + first.stderr, "the passphrase was shown"
    cert_dir = dest / NAME
    leaf = x509.load_pem_x509_certificate((cert_dir / "cert.pem").read_bytes())
    serial = format(leaf.serial_number, "X")
    for p12 in ("certificate.p12", "legacy.p12"):
        text = openssl_pkcs12(cert_dir / p12)
        assert "BEGIN PRIVATE KEY" in text and text.count("BEGIN CERTIFICATE") == 2, p12
        info = subprocess.run(["openssl", "pkcs12", "-in", str(cert_dir / p12), "-passin", f"pass:{PASSPHRASE}",
                               "-info", "-noout"], capture_output=True, text=True, check=True).stderr
        assert ("AES-256-CBC" in info) == (p12 == "certificate.p12"), info
        assert ("3DES" in info or "pbeWithSHA1And3-KeyTripleDES-CBC" in info) == (p12 == "legacy.p12"), info
    if shutil.which("keytool"):
        listed = subprocess.run(["keytool", "-list", "-v", "-storetype", "PKCS12", "-keystore",
                                 str(cert_dir / "certificate.p12"), "-storepass", PASSPHRASE],
                                capture_output=True, text=True, check=True).stdout
        assert "PrivateKeyEntry" in listed and serial.lower().lstrip("0") in listed.lower()
    assert x509.load_der_x509_certificate((cert_dir / "cert.der").read_bytes()) == leaf
    combined = (cert_dir / "combined.pem").read_bytes()
    assert combined == (cert_dir / "privkey.pem").read_bytes() + (cert_dir / "fullchain.pem").read_bytes()
    assert oct((cert_dir / "combined.pem").stat().st_mode & 0o777) == "0o640"

    second = controller.run(playbook, check=True)
    installed = json.loads((controller.work / "installed.json").read_text())
    assert second.total("changed") == 0 and installed["host_calls"] == 0 and installed["bundles_sent"] == 0

    controller.run(playbook, "-e", "certops_certificates_force_renew=true", check=True)
    renewed = x509.load_pem_x509_certificate((cert_dir / "cert.pem").read_bytes())
    assert renewed.serial_number != leaf.serial_number
    assert x509.load_pem_x509_certificate(openssl_pkcs12(cert_dir / "certificate.p12", "-nokeys", "-clcerts")
                                          .encode()) == renewed, "the PKCS#12 file was not rebuilt"

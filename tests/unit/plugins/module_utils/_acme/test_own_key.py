"""csr_src / key_src: what is read, what is refused (naming the field), and when a stored
certificate no longer fits the key given. Ordering with them runs against Pebble in
tests/integration/test_own_keys.py."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ansible_collections.certops.acme.plugins.module_utils._acme.renewal import decide
from ansible_collections.certops.acme.plugins.module_utils._acme.spec import parse_specs
from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import private_key_pem, utcnow
from ansible_collections.certops.acme.plugins.module_utils._acme.renewal import Action
from ansible_collections.certops.acme.plugins.module_utils._acme.store.files import FileStore

from tests.harness.certs import make_ca, make_leaf


def csr_file(path, names, key=None, ips=()):
    key = key or ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
           .add_extension(x509.SubjectAlternativeName(sans), critical=False).sign(key, hashes.SHA256()))
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    return key


def failure_of(entry):
    specs, failures = parse_specs([dict({"name": "www", "domains": ["www.example.com"]}, **entry)])
    assert not specs and len(failures) == 1
    return failures[0].error


def test_a_csr_for_exactly_the_domains_gives_the_key_type_and_no_key(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    csr_file(tmp_path / "www.csr", ["example.com", "www.example.com"], key, ips=["192.0.2.1"])
    [spec], _unused = parse_specs([{"name": "www", "domains": ["WWW.example.com", "example.com", "192.0.2.1"],
                                    "csr_src": str(tmp_path / "www.csr")}])
    assert spec.key_type == "rsa3072" and spec.own_key.option == "csr_src"
    assert x509.load_der_x509_csr(spec.own_key.csr_der).public_key().public_numbers() == key.public_key().public_numbers()


def test_a_key_file_is_read_into_a_csr_for_the_domains(tmp_path):
    key = ec.generate_private_key(ec.SECP384R1())
    (tmp_path / "k.pem").write_bytes(private_key_pem(key))
    [spec], _unused = parse_specs([{"name": "www", "domains": ["www.example.com"], "key_src": str(tmp_path / "k.pem")}])
    csr = x509.load_der_x509_csr(spec.own_key.csr_der)
    assert spec.key_type == "ec384" and csr.is_signature_valid
    assert csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == ["www.example.com"]


def test_a_csr_naming_other_names_is_refused_listing_both_sides(tmp_path):
    csr_file(tmp_path / "www.csr", ["www.example.com", "old.example.com"])
    error = failure_of({"domains": ["www.example.com", "new.example.com"], "csr_src": str(tmp_path / "www.csr")})
    assert error.startswith("certificates[0].csr_src: the CSR in")
    assert "missing: new.example.com; not listed in domains: old.example.com" in error


@pytest.mark.parametrize("entry,field", [
    ({"csr_src": "CSR", "key_src": "KEY"}, "csr_src"),
    ({"key_src": "KEY", "key_type": "rsa2048"}, "key_type"),
    ({"csr_src": "CSR", "reuse_key": True}, "reuse_key"),
    ({"key_src": "MISSING"}, "key_src"),
    ({"csr_src": "GARBAGE"}, "csr_src"),
    ({"csr_src": "HUGE"}, "csr_src"),
    ({"key_src": "CSR"}, "key_src"),
])
def test_bad_own_key_input_fails_the_certificate_naming_the_field(tmp_path, entry, field):
    csr_file(tmp_path / "CSR", ["www.example.com"])
    (tmp_path / "KEY").write_bytes(private_key_pem(ec.generate_private_key(ec.SECP256R1())))
    (tmp_path / "GARBAGE").write_bytes(b"-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n")
    (tmp_path / "HUGE").write_bytes(b"A" * (65 * 1024))
    error = failure_of({k: (str(tmp_path / v) if isinstance(v, str) else v) for k, v in entry.items()})
    assert error.startswith(f"certificates[0].{field}"), error


def test_another_key_or_a_switch_between_kept_and_made_keys_renews(tmp_path):
    store = FileStore(str(tmp_path / "store"))
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "k.pem").write_bytes(private_key_pem(key))
    ca = make_ca("Test CA")
    _ignored, leaf = make_leaf(ca, key=key)
    kept = store.save("www", b"", leaf, [ca[1]], {"key": "kept elsewhere"})
    assert not (tmp_path / "store" / "certificates" / "www" / "current" / "privkey.pem").exists()
    assert store.load("www").key_pem == b"" and set(kept.files()) == {"cert.pem", "chain.pem", "fullchain.pem"}

    [same], _unused = parse_specs([{"name": "www", "domains": ["www.example.com"], "key_src": str(tmp_path / "k.pem")}])
    assert decide(same, kept, utcnow()).action == Action.KEEP
    (tmp_path / "k.pem").write_bytes(private_key_pem(ec.generate_private_key(ec.SECP256R1())))
    [rotated], _unused = parse_specs([{"name": "www", "domains": ["www.example.com"], "key_src": str(tmp_path / "k.pem")}])
    decision = decide(rotated, kept, utcnow())
    assert decision.action == Action.RENEW and "is not the stored certificate's" in decision.reason
    [made], _unused = parse_specs([{"name": "www", "domains": ["www.example.com"]}])
    assert "kept elsewhere" in decide(made, kept, utcnow()).reason


def test_a_symlinked_key_file_is_read_and_a_fifo_a_device_or_a_huge_file_is_refused_at_once(tmp_path):
    """key_src may be a symlink to the real file (as key managers lay them out); a named pipe
    would block the run and a device would stream without end: both are refused, not read."""
    import os
    import time
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "real.pem").write_bytes(private_key_pem(key))
    os.symlink(tmp_path / "real.pem", tmp_path / "link.pem")
    [spec], _unused = parse_specs([{"name": "www", "domains": ["www.example.com"], "key_src": str(tmp_path / "link.pem")}])
    assert spec.own_key is not None and spec.key_type == "ec256"

    os.mkfifo(tmp_path / "pipe.pem")
    started = time.monotonic()
    assert "pipe.pem is not a regular file" in failure_of({"key_src": str(tmp_path / "pipe.pem")})
    assert time.monotonic() - started < 5, "opening the pipe blocked"
    assert "/dev/zero is not a regular file" in failure_of({"csr_src": "/dev/zero"})
    (tmp_path / "huge.pem").write_bytes(b"A" * (1024 * 1024))
    assert "huge.pem is larger than 64 KiB" in failure_of({"csr_src": str(tmp_path / "huge.pem")})

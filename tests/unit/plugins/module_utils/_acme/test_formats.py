"""Extra formats built on the controller: PKCS#12 (modern and legacy) opens with its passphrase
and holds the key and chain, DER and the combined PEM are what they say, and the source that
stands for each file stays the same across builds and changes with what it is built from."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError
from ansible_collections.certops.acme.plugins.module_utils._acme.formats import (
    expected_fingerprint, parse_formats, passphrases, shipped)

from tests.harness.certs import make_chain

FP = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def bundle():
    key_pem, leaf, chain = make_chain()
    pem = serialization.Encoding.PEM
    return key_pem, leaf.public_bytes(pem).decode(), "".join(c.public_bytes(pem).decode() for c in chain), leaf, chain


@pytest.mark.parametrize("encryption", ["modern", "legacy"])
def test_pkcs12_opens_with_its_passphrase_and_holds_key_leaf_and_chain(bundle, encryption):
    key_pem, cert_pem, chain_pem, leaf, chain = bundle
    [spec] = parse_formats([{"type": "pkcs12", "passphrase": "s3cret-pass", "encryption": encryption}], "f")
    data = base64.b64decode(shipped("app", [spec], key_pem, cert_pem, chain_pem, FP)["certificate.p12"]["data"])
    loaded = pkcs12.load_pkcs12(data, b"s3cret-pass")
    assert loaded.cert.certificate == leaf and [c.certificate for c in loaded.additional_certs] == chain
    assert loaded.key.private_numbers() == serialization.load_pem_private_key(key_pem, None).private_numbers()
    assert loaded.cert.friendly_name == b"app"
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(data, b"wrong")


def test_der_and_combined_pem(bundle):
    key_pem, cert_pem, chain_pem, leaf, _chain = bundle
    specs = parse_formats([{"type": "der"}, {"type": "pem_combined", "file": "all.pem", "mode": "0640",
                                             "group": "ssl-cert"}], "f")
    files = shipped("app", specs, key_pem, cert_pem, chain_pem, FP)
    assert base64.b64decode(files["cert.der"]["data"]) == leaf.public_bytes(serialization.Encoding.DER)
    assert base64.b64decode(files["all.pem"]["data"]) == key_pem + cert_pem.encode() + chain_pem.encode()
    assert files["cert.der"]["mode"] == 0o644 and files["all.pem"]["mode"] == 0o640
    assert files["all.pem"]["group"] == "ssl-cert"


def test_the_source_is_stable_and_follows_what_the_file_is_built_from():
    def fingerprint(formats, bundle_fp=FP):
        return expected_fingerprint(bundle_fp, parse_formats(formats, "f", "root", "root"))
    p12 = {"type": "pkcs12", "passphrase": "one-pass"}
    assert fingerprint([]) == FP, "a bundle without extras keeps its own fingerprint"
    assert fingerprint([p12]) == fingerprint([p12]) != FP
    for changed in ({**p12, "passphrase": "two-pass"}, {**p12, "encryption": "legacy"}, {**p12, "mode": "0640"},
                    {**p12, "file": "x.p12"}, {**p12, "owner": "www-data"}):
        assert fingerprint([changed]) != fingerprint([p12]), changed
    assert fingerprint([p12], "sha256:" + "cd" * 32) != fingerprint([p12]), "a renewal rebuilds it"


@pytest.mark.parametrize("raw, field", [
    ([{"type": "jks"}], r"f\[0\]"),
    ([{"type": "pkcs12"}], r"f\[0\]\.passphrase"),
    ([{"type": "pkcs12", "passphrase": ""}], r"f\[0\]\.passphrase"),
    ([{"type": "pkcs12", "passphrase": "p" * 8, "encryption": "rc2"}], r"f\[0\]\.encryption"),
    ([{"type": "der", "passphrase": "p" * 8}], r"f\[0\]"),
    ([{"type": "der", "file": "../x"}], r"f\[0\]\.file"),
    ([{"type": "der", "file": "privkey.pem"}], r"f\[0\]\.file"),
    ([{"type": "der", "file": ".hidden"}], r"f\[0\]\.file"),
    ([{"type": "der", "mode": 644}], r"f\[0\]\.mode"),
    ([{"type": "der", "mode": "0999"}], r"f\[0\]\.mode"),
    ([{"type": "der", "owner": "a b"}], r"f\[0\]\.owner"),
    ([{"type": "der", "nope": 1}], r"f\[0\]"),
    ([{"type": "der"}, {"type": "der"}], r"f: names a file more than once"),
    ("der", r"^f:"),
])
def test_a_bad_format_names_its_field(raw, field):
    with pytest.raises(InputError, match=field):
        parse_formats(raw, "f")


def test_an_error_never_shows_the_passphrase():
    with pytest.raises(InputError) as caught:
        parse_formats([{"type": "pkcs12", "passphrase": "hunter2-secret", "bogus": 1}], "f")
    assert "hunter2-secret" not in str(caught.value)


def test_a_key_kept_elsewhere_allows_der_only(bundle):
    _key, cert_pem, chain_pem, _leaf, _chain = bundle
    assert shipped("own", parse_formats([{"type": "der"}], "f"), b"", cert_pem, chain_pem, FP)
    with pytest.raises(InputError, match="only der"):
        shipped("own", parse_formats([{"type": "pem_combined"}], "f"), b"", cert_pem, chain_pem, FP)


def test_passphrases_are_gathered_for_masking():
    assert passphrases({"a": parse_formats([{"type": "pkcs12", "passphrase": "pass-one"}, {"type": "der"}], "f")}) \
        == {"pass-one"}

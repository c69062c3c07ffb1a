"""Test certificates made with cryptography, shaped like a public CA's (root -> intermediate ->
leaf, with the key identifiers, key usages and EKU that path verification requires), so store,
adoption and verification tests need no running CA."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import private_key_pem

NOW = datetime.datetime.now(datetime.timezone.utc)


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca_usage():
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                         encipher_only=False, decipher_only=False)


def make_ca(common_name="Test Root", issuer=None):
    """(key, certificate) of a CA; self-signed unless ``issuer`` (key, certificate) signs it."""
    key = ec.generate_private_key(ec.SECP256R1())
    signer_key, signer = issuer if issuer else (key, None)
    builder = (x509.CertificateBuilder().subject_name(_name(common_name))
               .issuer_name(signer.subject if signer else _name(common_name))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - datetime.timedelta(days=1)).not_valid_after(NOW + datetime.timedelta(days=800))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(_ca_usage(), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()),
                              critical=False))
    return key, builder.sign(signer_key, hashes.SHA256())


def make_leaf(issuer, names=("www.example.com",), days_left=60, days_total=90, key=None):
    """(leaf_key_pem, leaf) issued by ``issuer`` (key, certificate); ``issuer=None``: self-signed."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    not_after = NOW + datetime.timedelta(days=days_left)
    signer_key, signer = issuer if issuer else (key, None)
    leaf = (x509.CertificateBuilder().subject_name(_name(names[0]))
            .issuer_name(signer.subject if signer else _name(names[0]))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_after - datetime.timedelta(days=days_total)).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()),
                           critical=False)
            .sign(signer_key, hashes.SHA256()))
    return private_key_pem(key), leaf


def make_chain(names=("www.example.com",), days_left=60, days_total=90, root=None):
    """(leaf_key_pem, leaf, [intermediate]) under ``root`` (key, certificate; a new one if None)."""
    root = root or make_ca("Test Root")
    intermediate = make_ca("Test Intermediate", issuer=root)
    key_pem, leaf = make_leaf(intermediate, names, days_left, days_total)
    return key_pem, leaf, [intermediate[1]]

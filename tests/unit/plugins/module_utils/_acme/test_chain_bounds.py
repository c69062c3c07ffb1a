"""Chains from a CA or a host are bounded: no repeated certificate, no loop, no absurd length."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import (
    MAX_CHAIN_LENGTH, chain_problems, without_repeats)

from tests.harness.certs import make_ca, make_chain, make_leaf

NOW = datetime.datetime.now(datetime.timezone.utc)


def _cross(subject, subject_key, issuer, issuer_key):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    return (x509.CertificateBuilder().subject_name(name)
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(subject_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW).not_valid_after(NOW + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))


def looping_chain(length):
    """A leaf under CA 'A', and A and B each signing the other: every link verifies."""
    key_a, key_b = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    a_by_b, b_by_a = _cross("A", key_a, "B", key_b), _cross("B", key_b, "A", key_a)
    _ignored, leaf = make_leaf((key_a, a_by_b))
    return leaf, [a_by_b if i % 2 == 0 else b_by_a for i in range(length)]


def test_a_valid_chain_passes():
    _ignored, leaf, chain = make_chain()
    assert chain_problems(leaf, chain) is None


def test_a_looping_chain_whose_every_link_verifies_is_refused():
    leaf, chain = looping_chain(4)
    assert "appears twice" in chain_problems(leaf, chain)
    # With the repeats dropped, the loop is still seen: the top is signed by a CA below it.
    assert "signed by a certificate below it (a loop)" in chain_problems(leaf, without_repeats(chain))


def test_a_2001_certificate_chain_is_refused_for_its_length():
    leaf, chain = looping_chain(2001)
    assert "2001 certificates" in chain_problems(leaf, chain)
    assert MAX_CHAIN_LENGTH < 2001


def test_an_exactly_repeated_ca_certificate_is_dropped_not_fatal():
    root = make_ca("Root")
    intermediate = make_ca("Intermediate", issuer=root)
    _ignored, leaf = make_leaf(intermediate)
    sent = [intermediate[1], intermediate[1], root[1]]
    assert "appears twice" in chain_problems(leaf, sent)
    assert without_repeats(sent) == [intermediate[1], root[1]]
    assert chain_problems(leaf, without_repeats(sent)) is None

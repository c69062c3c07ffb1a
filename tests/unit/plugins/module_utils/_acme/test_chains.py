"""Choosing among the CA's chains by the name of the CA they lead to."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import chain_matches, chain_root


def ca(name, issuer_name=None, issuer_key=None):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name or name)]))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(issuer_key or key, hashes.SHA256()))
    return cert, key


def test_a_chain_matches_the_root_its_top_certificate_names_as_issuer():
    root_key = ca("Old Root X1")[1]
    intermediate = ca("Intermediate R3", "Old Root X1", root_key)[0]
    assert chain_matches([intermediate], "Old Root X1")
    assert chain_matches([intermediate], "old root x1 ")  # case and spaces do not matter
    assert chain_matches([intermediate], "Intermediate R3")  # or any certificate in it
    assert not chain_matches([intermediate], "New Root X2")
    assert not chain_matches([], "Old Root X1")
    assert chain_root(intermediate, [intermediate]) == "Old Root X1"


def test_every_alternate_chain_link_is_found():
    import requests
    from ansible_collections.certops.acme.plugins.module_utils._acme.orders import _links
    response = requests.Response()
    # As requests joins repeated Link headers: one alternate per extra chain, and the directory.
    response.headers["Link"] = ('<https://ca/cert/1/1>;rel="alternate", <https://ca/dir>;rel="index", '
                                '<https://ca/cert/1/2>; rel="alternate"')
    assert _links(response, "alternate") == ["https://ca/cert/1/1", "https://ca/cert/1/2"]
    assert _links(response, "index") == ["https://ca/dir"]
    assert _links(requests.Response(), "alternate") == []

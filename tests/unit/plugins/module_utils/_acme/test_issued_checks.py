"""What the CA returns is refused unless it is the certificate we asked for."""

import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import load_private_key
from ansible_collections.certops.acme.plugins.module_utils._acme.names import normalize_names
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import OrderError
from ansible_collections.certops.acme.plugins.module_utils._acme.orders import OrderRequest, _verified_chain

from tests.harness.certs import make_chain


def pem(*certs):
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def check(key_pem, certs_pem, names):
    request = OrderRequest("c", normalize_names(names), key_pem)
    return _verified_chain(certs_pem, load_private_key(key_pem), request, "certificate 'c'")


def test_the_certificate_we_asked_for_is_accepted():
    key, leaf, chain = make_chain(names=("www.example.com",))
    got_leaf, got_chain = check(key, pem(leaf, *chain), ["www.example.com"])
    assert got_leaf == leaf and got_chain == chain


def test_names_that_do_not_match_the_order_are_refused():
    key, leaf, chain = make_chain(names=("www.example.com", "evil.example.net"))
    with pytest.raises(OrderError, match="do not match the order"):
        check(key, pem(leaf, *chain), ["www.example.com"])


def test_a_certificate_for_another_key_is_refused():
    _ignored, leaf, chain = make_chain()
    other_key, _ignored, _ignored = make_chain()
    with pytest.raises(OrderError, match="different key"):
        check(other_key, pem(leaf, *chain), ["www.example.com"])


def test_a_chain_that_does_not_verify_is_refused():
    key, leaf, _ignored = make_chain()
    _ignored, _ignored, foreign_chain = make_chain()
    with pytest.raises(OrderError, match="chain does not verify"):
        check(key, pem(leaf, *foreign_chain), ["www.example.com"])


def test_a_download_that_is_not_pem_is_refused():
    key, _ignored, _ignored = make_chain()
    with pytest.raises(OrderError, match="not a PEM chain"):
        check(key, b"<html>oops</html>", ["www.example.com"])


def test_a_looping_chain_from_the_ca_is_refused_and_a_repeated_ca_is_dropped():
    from test_chain_bounds import looping_chain
    from tests.harness.certs import make_ca, make_leaf
    intermediate = make_ca("Intermediate", issuer=make_ca("Root"))
    key, leaf = make_leaf(intermediate)
    got_leaf, got_chain = check(key, pem(leaf, intermediate[1], intermediate[1]), ["www.example.com"])
    assert got_chain == [intermediate[1]]
    loop_leaf, loop = looping_chain(2001)
    with pytest.raises(OrderError, match="2002 certificates"):
        _verified_chain(pem(loop_leaf, *loop), None, OrderRequest("c", normalize_names(["www.example.com"]), b""),
                        "certificate 'c'")

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import (
    KEY_TYPES, build_csr, chain_problems, generate_private_key, key_type_of, load_private_key)
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError
from ansible_collections.certops.acme.plugins.module_utils._acme.names import normalize_names

from tests.harness.certs import make_chain


@pytest.mark.parametrize("key_type", ["ec256", "ec384", "rsa2048"])
def test_generated_keys_have_the_requested_type(key_type):
    assert key_type_of(generate_private_key(key_type)) == key_type


def test_default_key_type_is_p256():
    assert KEY_TYPES[0] == "ec256"


def test_unsupported_key_type_names_the_field():
    with pytest.raises(InputError, match="key_type"):
        generate_private_key("dsa1024")


def test_csr_carries_every_name_as_san_and_the_first_as_cn():
    key = generate_private_key("ec256")
    idents = normalize_names(["www.example.com", "Example.com", "192.0.2.7"])
    csr = x509.load_der_x509_csr(build_csr(key, idents))
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["www.example.com", "example.com"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["192.0.2.7"]
    assert csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "www.example.com"
    assert csr.is_signature_valid
    assert csr.public_key().public_numbers() == key.public_key().public_numbers()


def test_encrypted_key_without_passphrase_is_a_clear_error():
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.BestAvailableEncryption(b"secret"))
    with pytest.raises(InputError, match="passphrase"):
        load_private_key(pem, "account_key_src")
    assert key_type_of(load_private_key(pem, "account_key_src", "secret")) == "ec256"


def test_small_rsa_key_is_refused():
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    with pytest.raises(InputError, match="not supported"):
        load_private_key(pem, "account_key_src")


def test_chain_links_are_checked():
    _ignored, leaf, chain = make_chain()
    assert chain_problems(leaf, chain) is None
    _ignored, _ignored, other_chain = make_chain()
    assert "not signed" in chain_problems(leaf, other_chain)

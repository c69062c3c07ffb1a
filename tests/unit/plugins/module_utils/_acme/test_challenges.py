import base64
import hashlib

from cryptography import x509

from ansible_collections.certops.acme.plugins.module_utils._acme.names import Identifier
from ansible_collections.certops.acme.plugins.module_utils._acme.challenges import (
    ACME_IDENTIFIER_OID, PendingChallenge, tls_alpn_challenge_certificate)


def challenge(value, kind="dns-01"):
    return PendingChallenge(certificate="c", identifier=Identifier("dns", value), type=kind, url="u",
                            token="tok_EN-1", key_authorization="tok_EN-1.thumb", authz_url="a")


def test_dns01_record_value_is_the_base64url_sha256_of_the_key_authorization():
    expected = base64.urlsafe_b64encode(hashlib.sha256(b"tok_EN-1.thumb").digest()).rstrip(b"=").decode()
    assert challenge("www.example.com").dns_record_value == expected


def test_a_wildcard_shares_the_record_name_of_its_base_name():
    assert challenge("*.example.com").dns_record_name == challenge("example.com").dns_record_name \
        == "_acme-challenge.example.com"


def test_tls_alpn_certificate_carries_the_critical_acme_identifier_extension():
    cert_pem, key_pem = tls_alpn_challenge_certificate(challenge("www.example.com", "tls-alpn-01"))
    cert = x509.load_pem_x509_certificate(cert_pem)
    extension = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(ACME_IDENTIFIER_OID))
    assert extension.critical
    assert extension.value.value == b"\x04\x20" + hashlib.sha256(b"tok_EN-1.thumb").digest()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["www.example.com"]
    assert b"PRIVATE KEY" in key_pem

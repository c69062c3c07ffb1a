"""fallback.ca_order: which CA each certificate tries first."""

from __future__ import annotations

from types import SimpleNamespace

from ansible_collections.certops.acme.plugins.module_utils._acme.fallback import CertificateAuthority, ca_order
from ansible_collections.certops.acme.plugins.module_utils._acme.spec import parse_specs

CAS = [CertificateAuthority(f"https://ca{i}.example.test/directory", lambda: None, None) for i in range(3)]
SPEC = parse_specs([{"name": "www", "domains": ["www.example.test"]}])[0][0]


def stored_from(directory: str):
    """ca_order reads only the stored certificate's metadata."""
    return SimpleNamespace(meta={"directory": directory})


def test_a_new_certificate_tries_the_cas_as_listed():
    assert ca_order(SPEC, CAS, None) == [0, 1, 2]


def test_a_renewal_goes_to_the_ca_that_issued_it_first_then_the_others_as_listed():
    assert ca_order(SPEC, CAS, stored_from(CAS[2].directory)) == [2, 0, 1]


def test_a_pending_order_goes_back_to_its_ca_whoever_issued_the_stored_one():
    assert ca_order(SPEC, CAS, stored_from(CAS[2].directory), pending_directory=CAS[1].directory) == [1, 0, 2]


def test_a_ca_no_longer_listed_changes_nothing():
    assert ca_order(SPEC, CAS, stored_from("https://gone.example.test/directory")) == [0, 1, 2]

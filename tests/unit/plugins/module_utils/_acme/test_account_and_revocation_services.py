"""The account and revocation services run without Ansible: what they decide before any request."""

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme.ca.account import (
    AccountKey, AccountWish, ensure_account)
from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import generate_private_key
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError
from ansible_collections.certops.acme.plugins.module_utils._acme.ca.revocation import revoke_stored
from ansible_collections.certops.acme.plugins.module_utils._acme.store.files import FileStore

from tests.harness.certs import make_chain

CA = "https://ca.test/dir"


def no_transport():
    pytest.fail("the CA was contacted")


def test_a_known_account_is_answered_from_the_store_without_the_ca(tmp_path):
    store = FileStore(str(tmp_path))
    key = AccountKey.from_key(generate_private_key("ec256"))
    store.remember_account(CA, key.thumbprint, "https://ca.test/acct/7", ["mailto:ops@example.com"])
    result = ensure_account(store, CA, key, AccountWish(contact=["mailto:ops@example.com"]), no_transport, 10)
    assert result == {"changed": False, "account_url": "https://ca.test/acct/7", "exists": True,
                      "thumbprint": key.thumbprint, "contact": ["mailto:ops@example.com"], "acme_requests": {},
                      "known_from_store": True}


def test_a_changed_contact_or_another_ca_is_asked_for(tmp_path):
    store = FileStore(str(tmp_path))
    key = AccountKey.from_key(generate_private_key("ec256"))
    store.remember_account(CA, key.thumbprint, "https://ca.test/acct/7", ["mailto:ops@example.com"])
    asked = []

    def transport():
        asked.append(1)
        raise InputError("acme_directory", "stop here")
    for directory, wish in ((CA, AccountWish(contact=["mailto:new@example.com"])),
                            ("https://other.test/dir", AccountWish())):
        with pytest.raises(InputError, match="stop here"):
            ensure_account(store, directory, key, wish, transport, 10)
    assert len(asked) == 2


def test_revoking_a_name_the_store_lacks_fails_naming_the_store(tmp_path):
    store = FileStore(str(tmp_path))
    with pytest.raises(InputError, match=r"certificates\[0\]: 'www' is not in the store \(files at "):
        revoke_stored(store, ["www"], "unspecified", "account_key", no_transport, no_transport, 10)


def test_check_mode_and_already_revoked_certificates_send_nothing(tmp_path):
    store = FileStore(str(tmp_path))
    for name in ("www", "api"):
        key_pem, leaf, chain = make_chain()
        stored = store.save(name, key_pem, leaf, chain, {})
    store.update_meta("api", stored.version, revoked_at="2026-12-01T00:00:00+00:00")
    result = revoke_stored(store, ["www", "api"], "keyCompromise", "account_key", no_transport, no_transport, 10,
                           check_mode=True)
    assert result["changed"] is True
    assert {r["name"]: r["note"] for r in result["certificates"]} == {"api": "already revoked (store)",
                                                                      "www": "would revoke"}
    assert "revoked_at" not in store.load("www").meta


def test_the_account_key_kept_in_the_store_is_made_once_and_then_read(tmp_path):
    from ansible_collections.certops.acme.plugins.module_utils._acme import options
    store = FileStore(str(tmp_path))
    args = {"account_key_in_store": True}
    with pytest.raises(InputError, match="account_key_in_store: the store .* holds no account key yet"):
        options.build_account_key(args, store=store)
    made, created = options.build_account_key(args, create=True, store=store)
    again, created_again = options.build_account_key(args, create=True, store=FileStore(str(tmp_path)))
    assert created and not created_again and made.thumbprint == again.thumbprint
    with pytest.raises(InputError, match="cannot be combined with account_key_src"):
        options.account_key_in_store({"account_key_in_store": True, "account_key_src": "/k"})
    assert options.account_key_in_store({}, {"CERTOPS_ACME_ACCOUNT_KEY_IN_STORE": "True"})
    assert not options.account_key_in_store({"account_key_in_store": False}, {"CERTOPS_ACME_ACCOUNT_KEY_IN_STORE": "1"})

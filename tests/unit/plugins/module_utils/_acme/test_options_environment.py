"""Options a task leaves out come from CERTOPS_* environment variables (AWX credentials)."""

from __future__ import annotations

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme import options
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError

ENV = {"CERTOPS_ACME_DIRECTORY": "https://ca.example/dir", "CERTOPS_ACME_ACCOUNT_KEY": "PEM",
       "CERTOPS_ACME_EAB_KID": "kid-1", "CERTOPS_ACME_EAB_HMAC_KEY": "mac"}


def test_unset_options_are_filled_from_the_environment():
    args = {"acme_directory": None, "account_key_src": None, "account_key_content": None,
            "eab_kid": None, "eab_hmac_key": None}
    assert options.apply_environment(args, ENV) == {
        "acme_directory": "https://ca.example/dir", "account_key_src": None, "account_key_content": "PEM",
        "eab_kid": "kid-1", "eab_hmac_key": "mac"}


def test_the_task_wins_and_a_key_path_keeps_the_environment_key_out():
    args = {"acme_directory": "https://other/dir", "account_key_src": "/keys/account.pem",
            "account_key_content": None}
    assert options.apply_environment(args, ENV) == args


def test_a_key_file_from_the_environment_fills_the_path_when_the_task_gives_no_key():
    """What the AWX credential injects: the key's content cannot cross podman's --env-file."""
    environ = {"CERTOPS_ACME_ACCOUNT_KEY_FILE": "/runner/env/awx-account_key",
               "CERTOPS_ACME_ACCOUNT_KEY_PASSPHRASE": "secret"}
    args = {"account_key_src": None, "account_key_content": None, "account_key_passphrase": None}
    assert options.apply_environment(args, environ) == {
        "account_key_src": "/runner/env/awx-account_key", "account_key_content": None,
        "account_key_passphrase": "secret"}
    # The task's own key, and the key's content in the environment, come first.
    given = {"account_key_src": None, "account_key_content": "PEM", "account_key_passphrase": None}
    assert options.apply_environment(given, environ)["account_key_src"] is None
    both = {**environ, "CERTOPS_ACME_ACCOUNT_KEY": "ENV PEM"}
    assert options.apply_environment(args, both)["account_key_src"] is None
    assert options.apply_environment(args, both)["account_key_content"] == "ENV PEM"


def test_options_a_plugin_does_not_have_are_not_added():
    assert options.apply_environment({"store_path": None}, ENV) == {"store_path": None}


def test_a_missing_directory_names_the_option_and_the_variable():
    with pytest.raises(InputError) as error:
        options.build_transport({"acme_directory": None})
    assert "acme_directory" in str(error.value) and "CERTOPS_ACME_DIRECTORY" in str(error.value)


def test_rfc2136_settings_merge_task_over_environment_with_defaults():
    environ = {"CERTOPS_DNS_RFC2136_SERVER": "192.0.2.1", "CERTOPS_DNS_RFC2136_KEY_NAME": "env-key",
               "CERTOPS_DNS_RFC2136_KEY_SECRET": "c2VjcmV0", "CERTOPS_DNS_RFC2136_PORT": "5353"}
    settings = options.rfc2136_settings({"key_name": "task-key", "server": None}, environ)
    assert settings == {"server": "192.0.2.1", "port": 5353, "key_name": "task-key", "key_secret": "c2VjcmV0",
                        "key_algorithm": "hmac-sha256", "zone": None}


def test_rfc2136_settings_name_what_is_missing():
    with pytest.raises(InputError) as error:
        options.rfc2136_settings({"server": "192.0.2.1", "key_name": "k"}, {})
    assert "dns_rfc2136.key_secret" in str(error.value) and "CERTOPS_DNS_RFC2136_KEY_SECRET" in str(error.value)


def test_rfc2136_port_must_be_a_number():
    with pytest.raises(InputError) as error:
        options.rfc2136_settings({}, {"CERTOPS_DNS_RFC2136_SERVER": "a", "CERTOPS_DNS_RFC2136_KEY_NAME": "b",
                                      "CERTOPS_DNS_RFC2136_KEY_SECRET": "c", "CERTOPS_DNS_RFC2136_PORT": "dns"})
    assert "dns_rfc2136.port" in str(error.value)


def test_eab_from_the_task_or_the_environment_binds_the_first_ca_only():
    """A second CA that does not ask for EAB must never receive the first CA's key id; a CA
    that asks gets its own from its entry."""
    args = options.apply_environment({"acme_directory": ["https://first.example/dir", "https://second.example/dir",
                                                         {"directory": "https://third.example/dir",
                                                          "eab_kid": "kid-3", "eab_hmac_key": "mac-3"}],
                                      "eab_kid": None, "eab_hmac_key": None},
                                     {"CERTOPS_ACME_EAB_KID": "kid-1", "CERTOPS_ACME_EAB_HMAC_KEY": "mac-1"})
    first, second, third = options.ca_entries(args)
    assert (first["eab_kid"], first["eab_hmac_key"]) == ("kid-1", "mac-1")
    assert (second["eab_kid"], second["eab_hmac_key"]) == (None, None)
    assert (third["eab_kid"], third["eab_hmac_key"]) == ("kid-3", "mac-3")


def test_every_variable_of_the_table_is_documented_where_users_look():
    """The one table (options.ENVIRONMENT) against the docs: README.md, docs/ and the option
    documentation (ansible-doc) name every variable the collection reads."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[5]
    places = [root / "README.md", *root.glob("docs/**/*.md"), *root.glob("plugins/doc_fragments/*.py"),
              *root.glob("plugins/modules/*.py")]
    docs = "\n".join(p.read_text() for p in places)
    missing = [f.variable for f in options.ENVIRONMENT if f.variable not in docs]
    assert not missing, f"undocumented environment variables: {missing}"


def test_the_table_names_each_variable_once_and_each_option_once_per_group():
    variables = [f.variable for f in options.ENVIRONMENT]
    assert len(variables) == len(set(variables))
    keys = [(f.group, f.option) for f in options.ENVIRONMENT]
    assert len(keys) == len(set(keys))


def test_store_options_and_the_in_store_flag_come_from_the_table():
    settings = options.store_settings({"store": None, "vault_url": None, "vault_token": None},
                                      {"CERTOPS_ACME_STORE_BACKEND": "vault", "VAULT_ADDR": "https://a:8200, https://b:8200",
                                       "VAULT_TOKEN": "t"})
    assert settings["store"] == "vault" and settings["vault_url"] == ["https://a:8200", "https://b:8200"]
    assert options.account_key_in_store({}, {"CERTOPS_ACME_ACCOUNT_KEY_IN_STORE": "yes"}) is True
    assert options.account_key_in_store({"account_key_in_store": False}, {"CERTOPS_ACME_ACCOUNT_KEY_IN_STORE": "yes"}) \
        is False

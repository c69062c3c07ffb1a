"""Secrets are masked in a task's result whatever route they came by."""

from __future__ import annotations

from ansible_collections.certops.acme.plugins.module_utils._acme import masking

SPEC = {
    "acme_directory": {"type": "raw"},
    "eab_hmac_key": {"type": "str", "no_log": True},
    "dns_rfc2136": {"type": "dict", "options": {"server": {"type": "str"},
                                                "key_secret": {"type": "str", "no_log": True}}},
    "dns_providers": {"type": "dict", "no_log": True},
    "vault_url": {"type": "list", "elements": "str"},
}
KEY = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg2XwDVevZUPuEmNac\n-----END PRIVATE KEY-----\n"


def test_every_route_of_a_secret_is_gathered():
    args = {"acme_directory": ["https://acme:url-password-1@ca.example/dir", "https://plain.example/dir"],
            "eab_hmac_key": "task-mac-key", "dns_rfc2136": {"server": "192.0.2.1", "key_secret": "tsig-secret"},
            "dns_providers": {"zone": {"provider": "lexicon", "options": {"auth_token": "nested-token"}}},
            "vault_url": ["https://vault:url-password-2@vault.example:8200"]}
    environ = {"CERTOPS_ACME_ACCOUNT_KEY": KEY, "VAULT_TOKEN": "hvs.environment-token",
               "LEXICON_CLOUDFLARE_AUTH_TOKEN": "lexicon-env-token", "LEXICON_CLOUDFLARE_ZONE": "example.com",
               "CERTOPS_ACME_DIRECTORY": "https://ca.example/dir", "VAULT_NAMESPACE": "team-a"}
    found = masking.secret_values(args, SPEC, environ)
    for secret in ("url-password-1", "url-password-2", "task-mac-key", "tsig-secret", "nested-token",
                   "hvs.environment-token", "lexicon-env-token", KEY,
                   "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg2XwDVevZUPuEmNac"):
        assert secret in found, secret
    # Not secrets: the server, a provider's zone, the directory, a namespace.
    for value in ("192.0.2.1", "example.com", "https://ca.example/dir", "team-a", "lexicon"):
        assert value not in found, value


def test_secrets_are_masked_in_messages_warnings_and_nested_results():
    result = {"failed": True, "msg": "https://acme:url-password-1@ca.example/dir is unreachable",
              "warnings": ["the provider said: bad token lexicon-env-token"],
              "certificates": [{"name": "www", "error": "TSIG tsig-secret refused", "days_left": 30}]}
    out = masking.masked(result, {"url-password-1", "lexicon-env-token", "tsig-secret"})
    text = repr(out)
    assert "url-password-1" not in text and "lexicon-env-token" not in text and "tsig-secret" not in text
    assert out["msg"] == "https://acme:********@ca.example/dir is unreachable"
    assert out["certificates"][0]["days_left"] == 30 and out["failed"] is True


def test_short_values_are_not_masked_everywhere():
    assert masking.secret_values({"eab_hmac_key": "root"}, SPEC, {}) == set()


def test_the_secrets_of_each_ca_in_a_list_are_gathered():
    spec = {**SPEC, "account_key_content": {"type": "str", "no_log": True}, "account_key_src": {"type": "path"}}
    args = {"acme_directory": ["https://first.example/dir",
                               {"directory": "https://ca:entry-url-pass@second.example/dir", "eab_kid": "kid-22",
                                "eab_hmac_key": "entry-mac-key", "account_key_content": KEY,
                                "account_key_src": None}]}
    found = masking.secret_values(args, spec, {})
    assert {"entry-url-pass", "entry-mac-key", KEY} <= found
    assert "kid-22" not in found and "https://first.example/dir" not in found

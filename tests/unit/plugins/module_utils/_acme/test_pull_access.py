"""Pull delivery's policies (module_utils/_acme/pull_access.py): one host reads its own
certificates and nothing else, and no name can widen that."""

from __future__ import annotations

import re

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError
from ansible_collections.certops.acme.plugins.module_utils._acme.pull_access import (
    checked_hosts, policy_text, role_name)


def test_a_policy_reads_exactly_the_hosts_certificates():
    text = policy_text("secret", "certops-acme/prod", "proxy1", ["www.example.com", "api.example.com", "www.example.com"])
    paths = re.findall(r'^path "([^"]+)" \{\n  capabilities = \["read"\]\n\}$', text, re.M)
    assert paths == ["secret/data/certops-acme/prod/certificates/api.example.com",
                     "secret/data/certops-acme/prod/certificates/www.example.com"]
    assert text.count("path ") == 2 and "*" not in text and "+" not in text
    assert role_name("certops-pull-", "proxy1") == "certops-pull-proxy1"


@pytest.mark.parametrize("mount, prefix", [("secret", "certops-acme/*"), ("sec+ret", "p"), ("secret", "a//b"),
                                           ("secret", '"x"'), ("secret", "p\n}")])
def test_a_store_path_that_would_widen_or_break_a_policy_is_refused(mount, prefix):
    with pytest.raises(InputError, match="cannot be written into a policy path"):
        policy_text(mount, prefix, "proxy1", ["www.example.com"])


@pytest.mark.parametrize("hosts, field", [
    ([{"name": "proxy*", "certificates": []}], r"hosts\[0\]\.name"),
    ([{"name": "p1", "certificates": ["www.example.com/*"]}], r"hosts\[0\]\.certificates"),
    ([{"name": "p1", "certificates": ["+"]}], r"hosts\[0\]\.certificates"),
    ([{"name": "p1"}, {"name": "p1"}], r"hosts\[1\]\.name"),
])
def test_host_and_certificate_names_that_could_widen_a_policy_are_refused(hosts, field):
    with pytest.raises(InputError, match=field):
        checked_hosts(hosts)

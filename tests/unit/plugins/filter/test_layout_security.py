"""The layouts' security settings as the filters check and spell them: Mozilla's profiles, the
peers whose forwarding headers are trusted, HSTS. Every value is written into a proxy
configuration, so hostile ones (a newline, a ';', a second directive) must be refused."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.certops.acme.plugins.filter.layout_security import (
    checked_networks, input_problems, secured_sites, tls_profile)

ROLE_HSTS = {"enabled": False, "max_age": 63072000, "include_subdomains": False, "preload": False}


def test_the_profiles_pin_mozillas_groups_and_modern_is_tls13_only():
    intermediate, modern = tls_profile("intermediate", "v"), tls_profile("modern", "v")
    assert intermediate["nginx_protocols"] == "TLSv1.2 TLSv1.3" and intermediate["haproxy_min_version"] == "TLSv1.2"
    assert modern["nginx_protocols"] == "TLSv1.3" and modern["haproxy_min_version"] == "TLSv1.3"
    assert modern["ciphers"] == "", "TLS 1.2 suites have no place in a TLS 1.3-only profile"
    assert intermediate["ciphers"].split(":") == [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"]
    for profile in (intermediate, modern):
        assert profile["nginx_groups"] == "X25519:prime256v1:secp384r1"
        assert profile["haproxy_groups"] == "X25519:P-256:P-384"
    with pytest.raises(AnsibleFilterError, match=r"certops_edge_tls_profile: 'old' is not a TLS profile"):
        tls_profile("old", "certops_edge_tls_profile")


def test_trusted_peers_are_normalised_networks():
    assert checked_networks(["203.0.113.0/24", "192.0.2.7", "2001:DB8::/32", "10.1.2.3/8"], "v") == [
        "203.0.113.0/24", "192.0.2.7/32", "2001:db8::/32", "10.0.0.0/8"]
    assert checked_networks([], "v") == [] and checked_networks(None, "v") == []


@pytest.mark.parametrize("hostile", ["10.0.0.0/8;\n    server evil 1.2.3.4:80", "10.0.0.0/8 1;", "1.2.3.4 5.6.7.8",
                                     "all", "", "300.1.1.1", "10.0.0.0/33", 42, None])
def test_a_trusted_peer_that_is_not_one_address_or_network_is_refused_naming_it(hostile):
    with pytest.raises(AnsibleFilterError, match=r"certops_edge_trusted_proxies\[1\]: .* is not an IP address or "
                                                 r"network; write e\.g\."):
        checked_networks(["192.0.2.1", hostile], "certops_edge_trusted_proxies")


def test_a_site_uses_its_own_trusted_peers_else_the_roles():
    sites = [{"name": "a", "domains": ["a.example"]},
             {"name": "b", "domains": ["b.example"], "trusted_proxies": ["198.51.100.0/24"]},
             {"name": "c", "domains": ["c.example"], "trusted_proxies": []}]
    secured = secured_sites(sites, "sites", ["203.0.113.9"], "trusted", ROLE_HSTS, "hsts")
    assert [s["trusted_proxies"] for s in secured] == [["203.0.113.9/32"], ["198.51.100.0/24"], []]
    with pytest.raises(AnsibleFilterError, match=r"sites\[1\]\.trusted_proxies\[0\]"):
        secured_sites([sites[0], {**sites[1], "trusted_proxies": ["x\n"]}], "sites", [], "trusted", ROLE_HSTS, "hsts")


def test_hsts_comes_from_the_site_or_the_role_and_a_mapping_turns_it_on():
    sites = [{"name": "off", "domains": ["a.example"]},
             {"name": "on", "domains": ["b.example"], "hsts": True},
             {"name": "preload", "domains": ["c.example"],
              "hsts": {"include_subdomains": True, "preload": True, "max_age": 31536000}},
             {"name": "sub", "domains": ["d.example"], "hsts": {"include_subdomains": True}}]
    headers = [s["hsts_header"] for s in secured_sites(sites, "sites", [], "t", ROLE_HSTS, "hsts")]
    assert headers == ["", "max-age=63072000", "max-age=31536000; includeSubDomains; preload",
                       "max-age=63072000; includeSubDomains"]
    role_on = dict(ROLE_HSTS, enabled=True, include_subdomains=True)
    assert [s["hsts_header"] for s in secured_sites(sites[:1], "sites", [], "t", role_on, "hsts")] == [
        "max-age=63072000; includeSubDomains"]


@pytest.mark.parametrize("hsts,needle", [
    ({"preload": True}, r"preload needs include_subdomains: true and max_age of at least 31536000"),
    ({"preload": True, "include_subdomains": True, "max_age": 86400}, r"preload needs"),
    ({"max_age": 3600}, r"max_age 3600 must be whole seconds from 86400"),
    ({"max_age": "63072000\nadd_header X 1"}, r"max_age '63072000\\nadd_header X 1' must be whole seconds"),
    ({"max_age": True}, r"max_age True must be whole seconds"),
    ({"include_subdomains": "yes"}, r"include_subdomains must be true or false"),
    ({"maxage": 86400}, r"unknown key\(s\) maxage"),
    ("yes", r"'yes' is neither true/false nor a mapping"),
])
def test_bad_hsts_settings_are_refused_naming_the_site_and_the_fix(hsts, needle):
    site = {"name": "s", "domains": ["s.example"], "hsts": hsts}
    with pytest.raises(AnsibleFilterError, match=r"sites\[0\]\.hsts: " + needle):
        secured_sites([site], "sites", [], "t", ROLE_HSTS, "hsts")


def test_the_roles_own_hsts_settings_are_checked_even_when_no_site_uses_them():
    with pytest.raises(AnsibleFilterError, match=r"certops_edge_hsts: preload needs"):
        secured_sites([], "sites", [], "t", dict(ROLE_HSTS, enabled=True, preload=True), "certops_edge_hsts")


def test_input_problems_lists_what_the_filters_would_refuse_instead_of_raising():
    hsts = {"enabled": False, "max_age": 63072000, "include_subdomains": False, "preload": False}
    good = [{"name": "www", "domains": ["www.example.com"], "backends": ["10.0.0.1:80"]}]
    assert input_problems(good, "sites", [], "trusted", hsts, "hsts", "intermediate", "profile") == []
    bad = [{"name": "bad name;", "domains": ["www.example.com"], "backends": ["10.0.0.1:80"]}]
    problems = input_problems(bad, "sites", ["not a network"], "trusted", hsts, "hsts", "ancient", "profile")
    assert len(problems) == 2
    assert problems[0].startswith("sites[0].name: 'bad name;' cannot be used as a certificate name")
    assert problems[1].startswith("profile: 'ancient' is not a TLS profile")
    # A site that passes its own checks still meets the role's trusted peers.
    assert input_problems(good, "sites", ["not a network"], "trusted", hsts, "hsts", "modern", "profile")[0].startswith(
        "trusted[0]: 'not a network' is not an IP address or network")

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.certops.acme.plugins.filter.certificates import (
    certificate_status, checked_sites, merge_certificates, served_checks, sites_to_certificates)


WANTED, SERVED = "_certops_certificates_wanted", "certops_certificates_served"


def test_sites_become_certificates_named_after_the_site_or_certificate():
    specs = sites_to_certificates([
        {"name": "app", "domains": ["app.example.com"], "backends": ["10.0.0.1:80"], "key_type": "ec384"},
        {"name": "www", "certificate": "shared", "domains": ["www.example.com"], "backends": []},
    ])
    assert specs == [{"name": "app", "domains": ["app.example.com"], "key_type": "ec384"},
                     {"name": "shared", "domains": ["www.example.com"]}]


def test_the_same_certificate_on_two_hosts_is_ordered_once():
    spec = {"name": "app", "domains": ["app.example.com"]}
    assert merge_certificates([spec, dict(spec), dict(spec)]) == [spec]


def test_conflicting_definitions_are_an_error_naming_the_certificate():
    with pytest.raises(AnsibleFilterError, match="'app' is defined twice"):
        merge_certificates([{"name": "app", "domains": ["a.example.com"]},
                            {"name": "app", "domains": ["b.example.com"]}])


def test_backend_addresses_must_be_host_and_port():
    from ansible_collections.certops.acme.plugins.filter.certificates import invalid_addresses
    good = ["10.0.0.5:8080", "app.internal:80", "[2001:db8::5]:8443", "localhost:1"]
    assert invalid_addresses(good) == []
    bad = ["10.0.0.5", "app:0", "app:70000", "not an address:80", "2001:db8::5:80", "-x.example:80"]
    assert invalid_addresses(bad) == bad


def test_status_rows_name_the_hosts_that_want_each_certificate():
    hosts = [
        {"inventory_hostname": "web1", "_certops_certificates_wanted": [{"name": "app"}, {"name": "api"}]},
        {"inventory_hostname": "web2", "_certops_certificates_wanted": [{"name": "app"}]},
        {"inventory_hostname": "db1"},  # wants nothing (the role was not run for it)
    ]
    results = [
        {"name": "app", "action": "keep", "domains": ["app.example.com"], "not_after": "2027-01-01T00:00:00Z",
         "days_left": 39, "renewal_window": {"start": "2026-12-20T00:00:00Z", "end": "2026-12-22T00:00:00Z"}},
        {"name": "api", "action": "failed", "error": "rate limited", "failing_since": "2026-12-01T08:00:00+00:00",
         "next_try_at": "2026-12-01T10:00:00+00:00", "failures": 2},
        {"name": "orphan", "action": "keep"},
    ]
    rows = {row["name"]: row for row in certificate_status(results, hosts, WANTED, SERVED)}
    assert rows["app"]["hosts"] == ["web1", "web2"]
    assert rows["app"]["days_left"] == 39 and rows["app"]["renewal_window"]["end"].startswith("2026-12-22")
    assert rows["api"] == {"name": "api", "action": "failed", "domains": [], "not_after": None, "days_left": None,
                           "hosts": ["web1"], "renewal_window": None, "served": "-", "error": "rate limited",
                           "failing_since": "2026-12-01T08:00:00+00:00", "next_try_at": "2026-12-01T10:00:00+00:00",
                           "failures": 2}
    assert rows["orphan"]["hosts"] == []
    assert list(rows) == ["app", "api", "orphan"]  # the result's order is kept


def test_the_served_column_names_the_hosts_that_serve_something_else():
    hosts = [
        {"inventory_hostname": "web1", "_certops_certificates_wanted": [{"name": "app"}, {"name": "api"}],
         "certops_certificates_served": [{"certificate": "app", "state": "match"},
                                         {"certificate": "api", "state": "match"}]},
        {"inventory_hostname": "web2", "_certops_certificates_wanted": [{"name": "app"}],
         "certops_certificates_served": [{"certificate": "app", "state": "differs"}]},
    ]
    rows = {row["name"]: row["served"] for row in certificate_status(
        [{"name": "app"}, {"name": "api"}, {"name": "unchecked"}], hosts, WANTED, SERVED)}
    assert rows == {"app": "NO: web2", "api": "yes", "unchecked": "-"}


def test_checked_sites_normalise_names_and_refuse_values_that_would_add_directives():
    from ansible_collections.certops.acme.plugins.filter.certificates import checked_sites
    [site] = checked_sites([{"name": "shop", "domains": ["Bücher.Example", "WWW.Shop.Example."],
                             "backends": ["127.0.0.1:8080"]}], "sites")
    assert site["domains"] == ["xn--bcher-kva.example", "www.shop.example"]
    for field, value in (("name", "shop\nbind :1"), ("backends", ["127.0.0.1:8080\n"]),
                         ("haproxy_options", ["option httplog\nbind :1"]), ("domains", ["a.example\nbind :1"])):
        with pytest.raises(AnsibleFilterError, match=r"sites\[0\].*%s" % field):
            checked_sites([dict({"name": "shop", "domains": ["shop.example"]}, **{field: value})], "sites")


def test_a_passthrough_upstream_that_is_not_host_port_names_the_site():
    from ansible_collections.certops.acme.plugins.filter.certificates import checked_sites
    with pytest.raises(AnsibleFilterError, match=r"sites on b1\[0\] \(site shop\)\.upstream: 'localhost' is not host:port"):
        checked_sites([{"name": "shop", "domains": ["shop.example"], "upstream": "localhost"}], "sites on b1")


def test_a_site_naming_an_ip_address_is_refused_with_the_way_to_certify_it():
    from ansible_collections.certops.acme.plugins.filter.certificates import checked_sites
    with pytest.raises(AnsibleFilterError) as raised:
        checked_sites([{"name": "shop", "domains": ["shop.example"]},
                       {"name": "direct", "domains": ["direct.example", "[2001:DB8::1]"]}], "certops_edge_sites")
    message = str(raised.value)
    assert message.startswith("certops_edge_sites[1] (site direct).domains: 2001:db8::1 is an IP address")
    assert "certops.acme.certificate" in message and "nothing was changed" in message


def test_a_site_bringing_its_own_key_is_refused_since_the_proxy_would_have_none():
    from ansible_collections.certops.acme.plugins.filter.certificates import checked_sites
    with pytest.raises(AnsibleFilterError, match=r"certops_edge_sites\[0\] \(site shop\)\.key_src: a proxy serving"):
        checked_sites([{"name": "shop", "domains": ["shop.example"], "key_src": "/etc/keys/shop.pem"}],
                      "certops_edge_sites")


def test_a_site_with_two_key_types_is_served_with_two_certificates_ordered_in_one_batch():
    [site] = checked_sites([{"name": "www", "domains": ["www.example.com"], "backends": ["10.0.0.1:80"],
                             "key_types": ["ec256", "rsa2048"]}], "certops_edge_sites")
    assert site["certificates"] == [{"name": "www", "key_type": "ec256", "algorithm": "ecdsa"},
                                    {"name": "www-rsa2048", "key_type": "rsa2048", "algorithm": "rsa"}]
    assert [(c["name"], c["key_type"]) for c in sites_to_certificates([site])] == [
        ("www", "ec256"), ("www-rsa2048", "rsa2048")]
    checks = served_checks([site], ["www", "www-rsa2048"], "127.0.0.1", 443)
    assert [(c["certificate"], c["key_algorithm"]) for c in checks] == [("www", "ecdsa"), ("www-rsa2048", "rsa")]
    [single] = checked_sites([{"name": "one", "domains": ["one.example.com"], "key_type": "rsa2048"}], "sites")
    assert single["certificates"] == [{"name": "one", "key_type": "rsa2048", "algorithm": ""}]


@pytest.mark.parametrize("extra,needle", [
    ({"key_types": ["ec256", "ec384"]}, r"names two ECDSA types"),
    ({"key_types": ["rsa2048", "rsa4096"]}, r"names two RSA types"),
    ({"key_types": ["ec256", "rsa2048", "ec384"]}, r"must list one or two of"),
    ({"key_types": ["ec256", "rsa1024"]}, r"must list one or two of"),
    ({"key_types": "ec256"}, r"must list one or two of"),
    ({"key_types": ["ec256", "rsa2048"], "key_type": "ec256"}, r"give key_type or key_types, not both"),
])
def test_key_types_that_cannot_be_served_side_by_side_are_refused_naming_the_site(extra, needle):
    with pytest.raises(AnsibleFilterError, match=r"certops_edge_sites\[0\] \(site www\)\.key_types: (.* )?" + needle):
        checked_sites([{"name": "www", "domains": ["www.example.com"], **extra}], "certops_edge_sites")

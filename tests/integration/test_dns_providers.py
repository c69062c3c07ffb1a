"""dns-01 beyond RFC 2136: providers driven through dns-lexicon against a real PowerDNS
(Debian's pdns-server with its HTTP API, tests/harness/powerdns.py), and _acme-challenge
CNAME delegation on a real BIND whose main zone refuses updates. Each Pebble here resolves
through the DNS server of its test, so the CA sees exactly what the provider wrote."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.harness import pebble
from tests.harness.bind import start_bind, start_resolver
from tests.harness.powerdns import start_powerdns
from tests.harness.processes import stop_pidfile, wait_port
from tests.harness.tls import handshake

pytestmark = pytest.mark.integration
PDNS_PORT, PDNS_API_PORT = 15356, 18082
BIND_PORT, RESOLVER_PORT = 15357, 15358
TLS_PORT = 14743


@pytest.fixture(scope="module")
def powerdns(tmp_path_factory):
    server = start_powerdns(tmp_path_factory.mktemp("pdns"), "127.0.0.1", PDNS_PORT, PDNS_API_PORT)
    server.add_zone("pdns.test", [("ns1.pdns.test", "A", "127.0.0.1"), ("pdns.test", "A", "127.0.0.1")])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pebble_on_pdns(tmp_path_factory, powerdns):
    info = pebble.start(tmp_path_factory.mktemp("pebble-pdns"), base_port=14300, dns_server=f"127.0.0.1:{PDNS_PORT}")
    yield info
    pebble.stop(info)


DELEGATION = """
_acme-challenge.www    IN CNAME www.delegate.test.
_acme-challenge.deep   IN CNAME hop.main.test.
hop                    IN CNAME deep.delegate.test.
_acme-challenge.loop   IN CNAME spin.main.test.
spin                   IN CNAME _acme-challenge.loop.main.test.
"""


@pytest.fixture(scope="module")
def delegating_bind(tmp_path_factory):
    """main.test (not updatable) delegates _acme-challenge names by CNAME into delegate.test
    (updatable with the TSIG key)."""
    server = start_bind(tmp_path_factory.mktemp("bind-cname"), "127.0.0.1", BIND_PORT, zone="main.test",
                        records=DELEGATION, updatable=False, more_zones={"delegate.test": ("", True)})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pebble_on_bind(tmp_path_factory, delegating_bind, powerdns):
    """Pebble behind a recursive BIND (as a CA's resolver is), which follows the CNAMEs and
    knows both servers' zones."""
    resolver = start_resolver(tmp_path_factory.mktemp("resolver"), "127.0.0.1", RESOLVER_PORT, {
        "main.test": ("127.0.0.1", BIND_PORT), "delegate.test": ("127.0.0.1", BIND_PORT),
        "pdns.test": ("127.0.0.1", PDNS_PORT)})
    info = pebble.start(tmp_path_factory.mktemp("pebble-cname"), base_port=14310,
                        dns_server=f"127.0.0.1:{RESOLVER_PORT}")
    yield info
    pebble.stop(info)
    resolver.stop()


def run_batch(controller, pebble_info, certificates, dns, *args):
    key = str(controller.work / "dns-account.key")
    acme = {"acme_directory": pebble_info.directory_url, "ca_path": pebble_info.ca_cert, "account_key_src": key}
    playbook = controller.playbook("dns", [
        {"certops.acme.account": {**acme, "account_key_create": True, "terms_agreed": True}},
        {"certops.acme.certificate": {**acme, "store_path": str(controller.store), "certificates": certificates,
                                      **dns}, "register": "issued", "ignore_errors": True},
        {"ansible.builtin.copy": {"content": "{{ issued | to_json }}", "dest": str(controller.work / "issued.json")},
         "changed_when": False}])
    outcome = controller.run(playbook, *args)
    assert (controller.work / "issued.json").exists(), outcome.stdout[-3000:]
    issued = json.loads((controller.work / "issued.json").read_text())
    # A task that fails as a whole (bad settings) has no per-certificate list.
    return outcome, issued, {c["name"]: c for c in issued.get("certificates", [])}


def lexicon_settings(powerdns, **options):
    return {"dns_provider": "lexicon",
            "dns_lexicon": {"provider": "powerdns",
                            "options": {"pdns_server": powerdns.api_url, "auth_token": powerdns.api_key,
                                        "pdns_server_id": "localhost", **options}},
            "dns_resolvers": [f"127.0.0.1:{PDNS_PORT}"], "dns_check_servers": [f"127.0.0.1:{PDNS_PORT}"]}


def test_a_wildcard_via_lexicon_and_powerdns_is_issued_and_served(controller, pebble_on_pdns, powerdns):
    outcome, _issued, results = run_batch(
        controller, pebble_on_pdns, [{"name": "wild-pdns", "domains": ["*.pdns.test", "pdns.test"]}],
        lexicon_settings(powerdns), "-vvv")
    assert results["wild-pdns"]["action"] == "issue", results["wild-pdns"]["error"]
    assert powerdns.txt_values("_acme-challenge.pdns.test") == set(), "the records were left behind"
    assert powerdns.api_key not in outcome.stdout + outcome.stderr, "the API key was shown"

    # Served: the stored bundle in a real HAProxy, verified against Pebble's root for a name
    # only the wildcard covers.
    current = controller.store / "certificates" / "wild-pdns" / "current"
    work = controller.work / "serve"
    work.mkdir()
    (work / "site.pem").write_bytes((current / "fullchain.pem").read_bytes() + (current / "privkey.pem").read_bytes())
    (work / "haproxy.cfg").write_text(f"""defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend tls
    bind 127.0.0.41:{TLS_PORT} ssl crt {work / 'site.pem'}
    http-request return status 200 content-type text/plain string "wildcard"
""")
    pidfile = work / "haproxy.pid"
    subprocess.run(["haproxy", "-W", "-D", "-f", str(work / "haproxy.cfg"), "-p", str(pidfile)], check=True)
    try:
        wait_port("127.0.0.41", TLS_PORT, pidfile=pidfile)
        served = handshake("127.0.0.41", TLS_PORT, "shop.pdns.test", pebble_on_pdns.root_pem())
    finally:
        stop_pidfile(pidfile)
    assert sorted(served.names) == ["*.pdns.test", "pdns.test"] and served.body == "wildcard"


def test_a_lexicon_provider_missing_an_option_fails_naming_it_without_the_secret(
        controller, pebble_on_pdns, powerdns):
    settings = lexicon_settings(powerdns)
    del settings["dns_lexicon"]["options"]["pdns_server"]
    outcome, issued, results = run_batch(controller, pebble_on_pdns,
                                         [{"name": "noserver", "domains": ["noserver.pdns.test"],
                                           "challenge": "dns-01"}], settings)
    error = results["noserver"]["error"]
    assert "dns-01 via lexicon provider powerdns" in error and "pdns_server" in error, error
    assert powerdns.api_key not in outcome.stdout + outcome.stderr + json.dumps(issued)


def test_an_unknown_lexicon_provider_is_refused_listing_the_known(controller, pebble_on_pdns, powerdns):
    settings = lexicon_settings(powerdns)
    settings["dns_lexicon"]["provider"] = "nosuchdns"
    _outcome, issued, _results = run_batch(controller, pebble_on_pdns,
                                           [{"name": "x", "domains": ["x.pdns.test"], "challenge": "dns-01"}],
                                           settings)
    assert "dns_lexicon.provider: lexicon has no provider 'nosuchdns'" in issued["msg"]
    assert "cloudflare" in issued["msg"] and "powerdns" in issued["msg"]


def rfc2136(bind, **extra):
    return {"dns_provider": "rfc2136",
            "dns_rfc2136": {"server": bind.address, "port": bind.port, "key_name": bind.key_name,
                            "key_secret": bind.key_secret}, **extra}


def test_cname_delegated_names_are_written_in_the_delegated_zone(controller, pebble_on_bind, delegating_bind):
    """main.test refuses updates; its _acme-challenge names point into delegate.test (one hop and
    two), where the records go. A CNAME loop fails its certificate only."""
    _outcome, _issued, results = run_batch(controller, pebble_on_bind, [
        {"name": "www", "domains": ["www.main.test"], "challenge": "dns-01"},
        {"name": "deep", "domains": ["deep.main.test"], "challenge": "dns-01"},
        {"name": "loop", "domains": ["loop.main.test"], "challenge": "dns-01"}], rfc2136(delegating_bind))
    assert results["www"]["action"] == "issue", results["www"]["error"]
    assert results["deep"]["action"] == "issue", results["deep"]["error"]
    assert results["loop"]["action"] == "failed"
    assert "the CNAME chain from _acme-challenge.loop.main.test loops" in results["loop"]["error"]
    # Cleaned up where they were written: nothing left at the chains' ends in delegate.test.
    for name in ("www.delegate.test", "deep.delegate.test"):
        assert txt_records(delegating_bind, name) == [], f"TXT records left at {name}"


def txt_records(server, name):
    """The TXT records ``server`` itself answers for ``name`` (asked directly, not through a resolver)."""
    import dns.message
    import dns.query
    import dns.rdatatype
    answer = dns.query.udp(dns.message.make_query(name, "TXT"), server.address, port=server.port, timeout=3)
    return [record.to_text() for rrset in answer.answer if rrset.rdtype == dns.rdatatype.TXT for record in rrset]


def test_without_following_the_cname_the_main_zone_refuses_the_update(controller, pebble_on_bind,
                                                                      delegating_bind):
    _outcome, _issued, results = run_batch(controller, pebble_on_bind, [
        {"name": "www2", "domains": ["www.main.test"], "challenge": "dns-01", "force": True}],
        rfc2136(delegating_bind, dns_follow_cname=False))
    assert results["www2"]["action"] == "failed"
    assert "refused the update of _acme-challenge.www.main.test in zone main.test." in results["www2"]["error"]


def test_one_batch_spans_bind_and_powerdns_each_certificate_with_its_provider(controller, pebble_on_bind,
                                                                              delegating_bind, powerdns):
    """The task's provider (RFC 2136 on BIND, through the CNAME delegation) for one certificate,
    a named lexicon provider (PowerDNS) for the other: one batch, one run."""
    public = lexicon_settings(powerdns)
    dns = rfc2136(delegating_bind, dns_providers={"public": {
        "provider": "lexicon", "lexicon": public["dns_lexicon"], "resolvers": public["dns_resolvers"],
        "check_servers": public["dns_check_servers"]}})
    _outcome, issued, results = run_batch(controller, pebble_on_bind, [
        {"name": "internal", "domains": ["www.main.test"], "challenge": "dns-01", "force": True},
        {"name": "public", "domains": ["*.pdns.test"], "dns": "public"}], dns)
    assert results["internal"]["action"] in ("issue", "renew"), results["internal"]["error"]
    assert results["public"]["action"] == "issue", results["public"]["error"]
    assert powerdns.txt_values("_acme-challenge.pdns.test") == set()


def test_a_certificate_naming_an_undefined_dns_provider_fails_the_task_listing_the_defined(
        controller, pebble_on_bind, delegating_bind):
    _outcome, issued, _results = run_batch(controller, pebble_on_bind, [
        {"name": "typo", "domains": ["typo.main.test"], "dns": "pubilc"}],
        rfc2136(delegating_bind, dns_providers={"public": {"provider": "hook", "hook": "/bin/true"}}))
    assert issued["failed"] and "certificates[].dns: names the DNS provider 'pubilc', which dns_providers does " \
        "not define (defined: public)" in issued["msg"]

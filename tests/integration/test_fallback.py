"""Two real CAs in order of preference: Pebble and acme2certifier (tests/harness/a2c.py).

A certificate the first cannot issue for a reason retrying will not fix (a profile it does not
offer, the CA unreachable, CAA forbidding it) is ordered from the next in the same run; a
renewal goes back to the CA that issued the certificate; when every CA fails, one failure is
remembered and the error names what each said."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.harness import a2c

pytestmark = pytest.mark.integration
A2C_PORT = 14812
CLOSED = "http://127.0.0.1:14813/directory"  # nothing listens here: an unreachable CA


@pytest.fixture
def second_ca(tmp_path):
    server = a2c.start(tmp_path / "a2c", A2C_PORT)
    yield server
    server.stop()


def run(controller, cas, certificates, **options):
    """The account task and the certificate task over ``cas``, as the roles run them."""
    play = controller.playbook("fallback", [
        {"certops.acme.account": {"acme_directory": cas, "terms_agreed": True,
                                  "contact": ["mailto:ops@example.test"],  # acme2certifier requires one
                                  **({"fallback_after": options["fallback_after"]} if "fallback_after" in options else {})},
         "register": "accounts", "ignore_errors": True},
        {"certops.acme.certificate": {"acme_directory": cas, "store_path": str(controller.store),
                                      "certificates": certificates, **options},
         "register": "issued", "ignore_errors": True},
        {"ansible.builtin.copy": {"content": "{{ {'issued': issued, 'accounts': accounts} | to_json }}",
                                  "dest": str(controller.work / "out.json")}, "changed_when": False}])
    outcome = controller.run(play)
    assert (controller.work / "out.json").exists(), outcome.stdout[-3000:]
    out = json.loads((controller.work / "out.json").read_text())
    return {c["name"]: c for c in out["issued"]["certificates"]}, out


def a2c_names(server) -> list[str]:
    return sorted(i["value"] for o in server.new_orders() for i in o["identifiers"])


def test_a_profile_the_first_ca_lacks_is_ordered_from_the_second_and_renewed_there(
        controller, pebble_server, http01_responder, second_ca):
    tag = uuid.uuid4().hex[:6]
    plain, short = f"plain-{tag}.fallback.test", f"short-{tag}.fallback.test"
    cas = [pebble_server.directory_url, second_ca.directory_url]
    pebble_before = pebble_server.new_orders()
    results, out = run(controller, cas, [{"name": "plain", "domains": [plain]},
                                         {"name": "short", "domains": [short], "profile": "shortlived"}])
    assert [a["directory"] for a in out["accounts"]["accounts"]] == cas and not out["accounts"].get("failed")
    assert results["plain"]["action"] == "issue" and results["plain"]["directory"] == pebble_server.directory_url
    assert results["short"]["action"] == "issue" and results["short"]["directory"] == second_ca.directory_url
    assert results["short"]["profile"] == "shortlived"
    assert results["short"]["tried"] == [f"{pebble_server.directory_url}: certificate 'short': profile "
                                         "'shortlived' is not offered by this CA (its directory lists no profiles)"]
    assert pebble_server.new_orders() - pebble_before == 1 and a2c_names(second_ca) == [short]
    assert results["short"]["failures"] == 0, "the fallback worked: nothing is remembered as a failure"

    # A forced renewal of each goes to the CA that issued it, the second CA first for "short".
    results, _out = run(controller, cas, [{"name": "plain", "domains": [plain], "force": True},
                                          {"name": "short", "domains": [short], "profile": "shortlived",
                                           "force": True}])
    assert results["short"]["action"] == "renew" and results["short"]["tried"] == []
    assert results["short"]["directory"] == second_ca.directory_url
    assert results["plain"]["directory"] == pebble_server.directory_url
    assert a2c_names(second_ca) == [short, short] and pebble_server.new_orders() - pebble_before == 2


def test_an_unreachable_first_ca_is_passed_over_within_fallback_after(controller, pebble_server, http01_responder):
    name = f"down-{uuid.uuid4().hex[:6]}.fallback.test"
    results, out = run(controller, [CLOSED, pebble_server.directory_url], [{"name": "down", "domains": [name]}],
                       fallback_after=3)
    accounts = out["accounts"]
    assert not accounts.get("failed"), "one CA down does not stop the run"
    assert accounts["accounts"][0]["failed"] and accounts["accounts"][1]["exists"]
    assert accounts["warnings"][0].startswith(f"account at {CLOSED}: cannot reach the ACME server")
    assert results["down"]["action"] == "issue" and results["down"]["directory"] == pebble_server.directory_url
    assert results["down"]["tried"][0].startswith(f"{CLOSED}: cannot reach the ACME server")
    assert "connection refused" in results["down"]["tried"][0]

    # The next run remembers the outage: the first CA is passed over without being asked (its
    # account too), and the new certificate is ordered from the second.
    second = f"later-{uuid.uuid4().hex[:6]}.fallback.test"
    results, out = run(controller, [CLOSED, pebble_server.directory_url],
                       [{"name": "down", "domains": [name]}, {"name": "later", "domains": [second]}], fallback_after=3)
    assert "has been unreachable since" in out["accounts"]["warnings"][0]
    assert results["down"]["action"] == "keep"
    assert results["later"]["action"] == "issue" and results["later"]["directory"] == pebble_server.directory_url
    assert "has been unreachable since" in results["later"]["tried"][0] and "passed over" in results["later"]["tried"][0]


def test_when_every_ca_fails_one_failure_is_remembered_naming_each(controller, pebble_server, second_ca):
    name = f"none-{uuid.uuid4().hex[:6]}.fallback.test"
    results, _out = run(controller, [pebble_server.directory_url, second_ca.directory_url],
                        [{"name": "none", "domains": [name], "profile": "nosuchprofile"}])
    result = results["none"]
    assert result["action"] == "failed" and result["failures"] == 1
    assert result["error"].startswith("certificate 'none': profile 'nosuchprofile' is not offered by this CA "
                                      "(it offers: classic, shortlived) (before that: " + pebble_server.directory_url)
    again, _out = run(controller, [pebble_server.directory_url, second_ca.directory_url],
                      [{"name": "none", "domains": [name], "profile": "nosuchprofile"}])
    assert again["none"]["error"].startswith("failing since"), "held back by the failure memory at every CA"
    assert a2c_names(second_ca) == []


def test_each_certificate_is_revoked_at_the_ca_that_issued_it(controller, pebble_server, http01_responder,
                                                              second_ca):
    tag = uuid.uuid4().hex[:6]
    cas = [pebble_server.directory_url, second_ca.directory_url]
    results, _out = run(controller, cas, [
        {"name": "at-pebble", "domains": [f"p-{tag}.fallback.test"]},
        {"name": "at-a2c", "domains": [f"a-{tag}.fallback.test"], "profile": "shortlived"}])
    assert [results[n]["directory"] for n in ("at-pebble", "at-a2c")] == cas
    play = controller.playbook("revoke", [
        {"certops.acme.revoke": {"acme_directory": cas, "store_path": str(controller.store),
                                 "certificates": ["at-pebble", "at-a2c"]}, "register": "revoked"},
        {"ansible.builtin.copy": {"content": "{{ revoked | to_json }}", "dest": str(controller.work / "revoked.json")},
         "changed_when": False}])
    controller.run(play, check=True)
    revoked = json.loads((controller.work / "revoked.json").read_text())
    assert sorted((c["name"], c["changed"]) for c in revoked["certificates"]) == [("at-a2c", True), ("at-pebble", True)]
    # Pebble's own word on the certificate it issued (its log counts a request refused with
    # badNonce, 5 % of them on purpose, and sent again, twice).
    assert pebble_server.cert_status(results["at-pebble"]["serial"]) == "Revoked"
    paths = [json.loads(line)["path"] for line in (second_ca.state / "requests.jsonl").read_text().splitlines()]
    assert sum("revoke" in path for path in paths) == 1, paths

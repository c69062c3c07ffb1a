"""Fingerprints first: the install module compares what a host holds with the store's bundle
fingerprint and asks for the bundles that differ; inspect sends files only for those. The file
work is real (a temporary directory); only AnsibleModule's result plumbing is stood in for."""

from __future__ import annotations

import datetime
import os

import pytest

from ansible_collections.certops.acme.plugins.module_utils import _host_files
from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import split_pem_chain
from ansible_collections.certops.acme.plugins.module_utils._acme.store.files import FileStore
from ansible_collections.certops.acme.plugins.modules import install as install_module

from tests.harness.install_module import FakeModule, bundle, params


def store_fingerprint(bundle_and_keys):
    files, keys = bundle_and_keys[0]["files"], bundle_and_keys[1]
    return _host_files.fingerprint_of_files({f: text.encode("ascii") for f, text in {**files, **keys}.items()})


def run(module_params, state="present", check_mode=False):
    module = FakeModule()
    module.check_mode = check_mode
    module_params.setdefault("state", state)
    (install_module.inspect if state == "inspect" else install_module.install)(module, module_params)
    return module.result


def verify_only(dest, expected):
    """A call with no bundles, only the store's fingerprints."""
    return run(dict(params(dest), bundles=[], key_material="{}", expected=expected))


@pytest.fixture
def installed(tmp_path):
    """Two certificates installed the normal way (bundles shipped)."""
    dest = tmp_path / "certs"
    pairs = {"a.test": bundle("a.test"), "b.test": bundle("b.test")}
    run(params(dest, *pairs.values()))
    return dest, {name: store_fingerprint(pair) for name, pair in pairs.items()}


def test_a_host_holding_the_stores_bundles_exactly_needs_nothing_sent(installed):
    dest, expected = installed
    result = verify_only(dest, expected)
    assert "needed" not in result
    assert [(c["name"], c["changed"]) for c in result["certificates"]] == [("a.test", False), ("b.test", False)]
    assert result["changed"] is False and result["unlisted"] == []


@pytest.mark.parametrize("tamper", ["one byte of the chain", "one byte of haproxy.pem", "one byte of privkey.pem",
                                    "one byte of cert.pem", "one byte of fullchain.pem", "the key's mode",
                                    "the directory's mode", "a missing file"])
def test_any_difference_makes_the_host_ask_for_that_bundle_and_write_nothing(installed, tamper):
    dest, expected = installed
    cert_dir = dest / "a.test"
    if tamper == "one byte of the chain":
        (cert_dir / "chain.pem").write_bytes((cert_dir / "chain.pem").read_bytes() + b"\n")
    elif tamper.startswith("one byte of "):
        held = cert_dir / tamper.removeprefix("one byte of ")
        mode = os.stat(held).st_mode & 0o777
        os.chmod(held, 0o600)
        held.write_bytes(held.read_bytes() + b"\n")
        os.chmod(held, mode)
    elif tamper == "the key's mode":
        os.chmod(cert_dir / "privkey.pem", 0o644)
    elif tamper == "the directory's mode":
        os.chmod(os.path.realpath(cert_dir), 0o755)
    else:
        os.unlink(cert_dir / "fullchain.pem")
    before = sorted(os.listdir(dest / ".versions" / "a.test"))
    result = verify_only(dest, expected)
    assert result["needed"] == ["a.test"]
    assert result["certificates"] == [] and result["changed"] is False
    assert sorted(os.listdir(dest / ".versions" / "a.test")) == before, "a probe must not write"


def test_the_controller_store_and_the_host_compute_the_same_fingerprint(tmp_path):
    """Otherwise every idempotent run would send every bundle again."""
    store = FileStore(str(tmp_path / "store"))
    pair = bundle("c.test")
    files, keys = pair[0]["files"], pair[1]
    certs = split_pem_chain(files["cert.pem"] + files["chain.pem"])
    store.save("c.test", keys["privkey.pem"].encode("ascii"), certs[0], certs[1:], {"order_url": None})
    stored = store.fingerprints(["c.test", "absent.test"])
    assert stored["absent.test"] is None
    loaded = store.load("c.test")
    assert loaded is not None
    dest = tmp_path / "host"
    run(dict(params(dest), bundles=[{"name": "c.test", "serial": "1", "files": {
        k: v.decode("ascii") for k, v in loaded.files().items() if k not in _host_files.KEY_FILES}}],
        key_material=__import__("json").dumps({"c.test": {
            k: loaded.files()[k].decode("ascii") for k in _host_files.KEY_FILES}})))
    held = _host_files.bundle_fingerprint(_host_files.held_digests(str(dest / "c.test")))
    assert held is not None and held == stored["c.test"].fingerprint
    assert stored["c.test"].summary()["serial"] == loaded.facts.serial
    assert datetime.datetime.fromisoformat(stored["c.test"].summary()["not_after"]) == loaded.facts.not_after


def test_inspect_sends_files_only_for_bundles_that_differ_from_the_store(installed):
    dest, expected = installed
    os.chmod(dest / "b.test" / "cert.pem", 0o600)
    (dest / "stray.test").mkdir()
    for name in ("cert.pem", "privkey.pem"):
        (dest / "stray.test" / name).write_text("x")
    result = run(dict(params(dest), certificates=["a.test", "b.test", "new.test"],
                      expected={"a.test": expected["a.test"], "b.test": expected["b.test"],
                                "new.test": "sha256:" + "0" * 64}), state="inspect")
    held = {h["name"]: h for h in result["held"]}
    assert set(held) == {"a.test", "b.test"}, "new.test is not held"
    assert "files" not in held["a.test"] and held["a.test"]["exact"] is True
    assert "files" not in held["b.test"] and held["b.test"]["exact"] is False, "a mode differs: not exact"
    assert result["unlisted"] == [] and result["unmarked"] == ["stray.test"], "no task marked it: not this scope's"
    # A bundle the store does not know (or knows differently) is sent whole, for adoption.
    different = run(dict(params(dest), certificates=["a.test"], expected={"a.test": expected["b.test"]}),
                    state="inspect")
    assert set(different["held"][0]["files"]) == {"cert.pem", "chain.pem", "privkey.pem"}
    assert different["held"][0]["fingerprint"] == expected["a.test"]


def test_a_bundle_without_key_files_installs_verifies_and_replaces_a_stale_key(tmp_path):
    """A certificate for a key kept elsewhere (csr_src, key_src) has no privkey.pem/haproxy.pem:
    it is installed without them, held exactly when so, and a key file left from an earlier
    bundle with a key makes the host ask for it (the new version holds none)."""
    dest = tmp_path / "certs"
    with_key = bundle("k.test")
    run(params(dest, with_key))
    assert (dest / "k.test" / "privkey.pem").exists()
    keyless = (with_key[0], {})
    expected = {"k.test": store_fingerprint(keyless)}
    assert verify_only(dest, expected)["needed"] == ["k.test"], "the held key files make it differ"
    result = run(params(dest, keyless))
    assert result["certificates"][0]["changed"] is True
    assert sorted(os.listdir(dest / "k.test")) == ["cert.pem", "chain.pem", "fullchain.pem"]
    again = verify_only(dest, expected)
    assert "needed" not in again and again["changed"] is False

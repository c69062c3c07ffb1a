"""Extra files on the host: installed with the bundle, in its version directory, with their
own modes; the host's fingerprint folds in their sources, so a host holding them intact needs
nothing sent, and one whose PKCS#12 changed, lost its mode or is no longer wanted asks again.
The file work is real (a temporary directory); only AnsibleModule's result plumbing is stood in for."""

from __future__ import annotations

import json
import os
import stat

from cryptography.hazmat.primitives.serialization import pkcs12

from ansible_collections.certops.acme.plugins.module_utils import _bundle_formats
from ansible_collections.certops.acme.plugins.module_utils._acme.formats import (
    expected_fingerprint, parse_formats, shipped)
from ansible_collections.certops.acme.plugins.modules import install as install_module

from tests.harness.install_module import FakeModule, bundle, params
from tests.unit.plugins.modules.test_install_fingerprints import store_fingerprint

FORMATS = [{"type": "pkcs12", "passphrase": "changeit-123"}, {"type": "der"}, {"type": "pem_combined", "mode": "0640"}]


def install(dest, pair, formats):
    files, keys = pair
    fingerprint = store_fingerprint(pair)
    specs = parse_formats(formats, "formats")
    extras = shipped(files["name"], specs, keys["privkey.pem"].encode(), files["files"]["cert.pem"],
                     files["files"]["chain.pem"], fingerprint) if specs else {}
    module = FakeModule()
    module_params = params(dest, pair)
    material = json.loads(module_params["key_material"])
    if extras:
        material[files["name"]][".extras"] = extras
    install_module.install(module, dict(module_params, key_material=json.dumps(material), state="present"))
    return module.result, expected_fingerprint(fingerprint, specs)


def probe(dest, name, expected):
    module = FakeModule()
    install_module.install(module, dict(params(dest), bundles=[], key_material="{}", expected={name: expected},
                                        state="present"))
    return module.result.get("needed", [])


def test_extras_are_installed_with_their_modes_and_an_intact_host_needs_nothing(tmp_path):
    dest, pair = tmp_path / "certs", bundle("app.test")
    result, expected = install(dest, pair, FORMATS)
    cert_dir = dest / "app.test"
    assert result["changed_certificates"] == ["app.test"]
    assert {f: stat.S_IMODE(os.stat(cert_dir / f).st_mode) for f in ("certificate.p12", "cert.der", "combined.pem")} \
        == {"certificate.p12": 0o600, "cert.der": 0o644, "combined.pem": 0o640}
    assert os.path.islink(cert_dir), "extras live in the bundle's version directory"
    assert pkcs12.load_pkcs12((cert_dir / "certificate.p12").read_bytes(), b"changeit-123").key is not None
    assert _bundle_formats.held_fingerprint(str(cert_dir)) == expected
    assert probe(dest, "app.test", expected) == []


def test_a_changed_extra_or_its_mode_or_a_changed_wish_makes_the_host_ask(tmp_path):
    dest, pair = tmp_path / "certs", bundle("app.test")
    _result, expected = install(dest, pair, FORMATS)
    p12 = dest / "app.test" / "certificate.p12"
    os.chmod(p12, 0o644)
    assert probe(dest, "app.test", expected) == ["app.test"]
    os.chmod(p12, 0o600)
    assert probe(dest, "app.test", expected) == []
    p12.write_bytes(p12.read_bytes() + b"x")
    assert probe(dest, "app.test", expected) == ["app.test"]
    fewer = expected_fingerprint(store_fingerprint(pair), parse_formats(FORMATS[1:], "f"))
    assert probe(dest, "app.test", fewer) == ["app.test"], "a format dropped must be removed"


def test_dropping_every_format_removes_the_extras_and_the_manifest(tmp_path):
    dest, pair = tmp_path / "certs", bundle("app.test")
    install(dest, pair, FORMATS)
    result, expected = install(dest, pair, [])
    cert_dir = dest / "app.test"
    assert sorted(os.listdir(cert_dir)) == ["cert.pem", "chain.pem", "fullchain.pem", "haproxy.pem", "privkey.pem"]
    assert result["changed_certificates"] == ["app.test"]
    assert _bundle_formats.held_fingerprint(str(cert_dir)) == expected == store_fingerprint(pair)


def test_a_damaged_manifest_counts_as_nothing_held(tmp_path):
    dest, pair = tmp_path / "certs", bundle("app.test")
    _result, expected = install(dest, pair, FORMATS)
    manifest = dest / "app.test" / _bundle_formats.MANIFEST
    for damage in (b"{", b"[]", b'{"../x": {}}', b"x" * (_bundle_formats.MAX_MANIFEST + 1)):
        os.chmod(manifest, 0o600)
        manifest.write_bytes(damage)
        assert _bundle_formats.held_fingerprint(str(dest / "app.test")) is None
        assert probe(dest, "app.test", expected) == ["app.test"]

"""A store record another writer damaged (here: the key file of the current version replaced
with an unrelated key, as a mixed restore would leave it), judged like anything a CA sends:
never installed, replaced under the lock by a new certificate, kept in the store's history,
and never failing its neighbours. Real ansible-playbook runs against Pebble."""

from __future__ import annotations

import json
import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def tasks(store, dest, names, install_first=False):
    certificate = {"name": "Order", "certops.acme.certificate": {
        "store_path": str(store), "certificates": [{"name": n, "domains": [n]} for n in names]},
        "register": "issued", "ignore_errors": True}
    install = {"name": "Install", "certops.acme.install": {
        "store_path": str(store), "dest": str(dest), "certificates": names}, "register": "installed",
        "ignore_errors": True}
    dumps = [{"ansible.builtin.copy": {"content": "{{ %s | default(None) | to_json }}" % var,
                                       "dest": str(dest.parent / f"{var}.json")}, "changed_when": False}
             for var in ("issued", "installed")]
    return ([install, certificate] if install_first else [certificate, install]) + dumps


def damage_key(store, name):
    """Replace the key of the current version with an unrelated one; the version id stays."""
    path = store / "certificates" / name / "current" / "privkey.pem"
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    os.chmod(path, 0o600)
    path.write_bytes(other)
    return os.path.basename(os.readlink(store / "certificates" / name / "current"))


def test_a_damaged_record_is_never_installed_and_the_next_run_replaces_it(controller, pebble_server,
                                                                          http01_responder):
    store, dest = controller.store, controller.work / "host" / "certs"
    names = ["damaged.store.test", "healthy.store.test"]
    first = controller.run(controller.playbook("issue", tasks(store, dest, names)), check=True)
    assert first.total("failed") == 0
    held = (dest / names[0] / "privkey.pem").read_bytes()
    damaged_version = damage_key(store, names[0])
    (dest / names[0] / "cert.pem").write_text("stale on purpose\n")  # the host needs the bundle again

    # Install alone first: the damaged bundle is not shipped, the healthy one still is.
    controller.run(controller.playbook("install", tasks(store, dest, names, install_first=True)[:1] +
                                       tasks(store, dest, names)[2:]))
    installed = json.loads((dest.parent / "installed.json").read_text())
    assert installed["failed"] and installed["damaged"] == [names[0]]
    assert "damaged.store.test' (version" in installed["msg"] and "its key does not fit its certificate" in installed["msg"]
    assert (dest / names[0] / "privkey.pem").read_bytes() == held, "the damaged key reached the host"

    orders_before = pebble_server.new_orders()
    run = controller.run(controller.playbook("again", tasks(store, dest, names)))
    issued = {c["name"]: c for c in json.loads((dest.parent / "issued.json").read_text())["certificates"]}
    assert issued[names[0]]["action"] == "issue" and "damaged" in issued[names[0]]["reason"]
    assert issued[names[1]]["action"] == "keep", "the damaged record failed its neighbour"
    assert pebble_server.new_orders() - orders_before == 1
    assert f"certificate '{names[0]}' (version {damaged_version}) is damaged" in run.stdout + run.stderr
    # The new version is current and installed; the damaged one stays for inspection.
    versions = sorted(p.name for p in (store / "certificates" / names[0] / "versions").iterdir())
    assert damaged_version in versions
    assert os.path.basename(os.readlink(store / "certificates" / names[0] / "current")) != damaged_version
    assert not json.loads((dest.parent / "installed.json").read_text()).get("failed")
    assert (dest / names[0] / "privkey.pem").read_bytes() != held

"""Driving the install module's functions directly: its AnsibleModule stand-in, and bundles as
the install action plugin hands them over (files, and the keys in one no_log string)."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives import serialization

from tests.harness.certs import make_chain


class ModuleFailed(Exception):
    pass


class FakeModule:
    """Stands in for AnsibleModule's result plumbing only; the file work is real."""

    check_mode = False
    _diff = False

    def fail_json(self, **result):
        raise ModuleFailed(result)

    def exit_json(self, **result):
        self.result = result


def bundle(name):
    key_pem, leaf, chain = make_chain()
    cert = leaf.public_bytes(serialization.Encoding.PEM).decode()
    chain_pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain)
    files = {"cert.pem": cert, "chain.pem": chain_pem, "fullchain.pem": cert + chain_pem}
    keys = {"privkey.pem": key_pem.decode(), "haproxy.pem": cert + chain_pem + key_pem.decode()}
    return {"name": name, "serial": format(leaf.serial_number, "x"), "files": files}, keys


def params(dest, *bundles_and_keys):
    return {"dest": str(dest), "owner": None, "group": None, "key_mode": "0600", "cert_mode": "0644",
            "dir_mode": "0700", "remove_unlisted": False, "scope": "default", "bundles": [b for b, _k in bundles_and_keys],
            "key_material": json.dumps({b["name"]: k for b, k in bundles_and_keys})}

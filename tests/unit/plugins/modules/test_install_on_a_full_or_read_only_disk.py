"""The install module on a disk that fills up or is read-only: a clear message naming the path,
the previous bundle intact, no half-written version. The disks are real: small tmpfs mounts
(root only; skipped, saying so, where mounting is not allowed)."""

from __future__ import annotations

import os
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.certops.acme.plugins.modules import install as install_module

from tests.unit.plugins.module_utils._acme.cert_material import make_chain


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
    import json
    return {"dest": str(dest), "owner": None, "group": None, "key_mode": "0600", "cert_mode": "0644",
            "dir_mode": "0700", "remove_unlisted": False, "bundles": [b for b, _k in bundles_and_keys],
            "key_material": json.dumps({b["name"]: k for b, k in bundles_and_keys})}


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip()}): needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_disk_that_fills_up_leaves_the_previous_bundle_and_no_partial_version(tiny_disk):
    dest = tiny_disk / "certs"
    first = bundle("www")
    module = FakeModule()
    install_module.install(module, params(dest, first))
    live = (dest / "www" / "cert.pem").read_text()
    filler = tiny_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while os.write(fd, b"x" * 1024):
            pass
    except OSError:
        pass  # full
    finally:
        os.close(fd)
    os.truncate(filler, os.path.getsize(filler) - 2048)  # leave about 2 KiB: less than one bundle
    with pytest.raises(ModuleFailed) as failed:
        install_module.install(FakeModule(), params(dest, bundle("www")))
    msg = failed.value.args[0]["msg"]
    assert msg.startswith(f"cannot install www under {dest}: No space left on device"), msg
    assert (dest / "www" / "cert.pem").read_text() == live, "the previous bundle was damaged"
    versions = sorted(os.listdir(dest / ".versions" / "www"))
    assert len(versions) == 1, f"a partial version was left behind: {versions}"


def test_a_read_only_destination_is_named_in_the_error(tiny_disk):
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], check=True)
    with pytest.raises(ModuleFailed) as failed:
        install_module.install(FakeModule(), params(tiny_disk / "certs", bundle("www")))
    assert failed.value.args[0]["msg"] == f"cannot install www under {tiny_disk / 'certs'}: Read-only file system; " \
                                          "its previous bundle stays in place"

"""The install module on a disk that fills up or is read-only: a clear message naming the path,
the previous bundle intact, no half-written version. The disks are real: small tmpfs mounts
(root only; skipped, saying so, where mounting is not allowed)."""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.certops.acme.plugins.modules import install as install_module

from tests.harness.install_module import FakeModule, ModuleFailed, bundle, params


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

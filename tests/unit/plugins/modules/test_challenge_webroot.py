"""Webroot http-01 files stay inside the webroot, whatever links sit below it (real files and
links in a temporary directory)."""

from __future__ import annotations

import pytest

from ansible_collections.certops.acme.plugins.modules.challenge import (
    SymlinkRefused, place_webroot_file, remove_webroot_file, webroot_file_digest)


def test_the_challenge_file_is_written_and_removed_inside_the_webroot(tmp_path):
    place_webroot_file(str(tmp_path), "tok", "tok.thumb")
    written = tmp_path / ".well-known" / "acme-challenge" / "tok"
    assert written.read_text() == "tok.thumb" and oct(written.stat().st_mode & 0o777) == "0o644"
    assert webroot_file_digest(str(tmp_path), "tok") is not None
    remove_webroot_file(str(tmp_path), "tok")
    assert not written.exists()


@pytest.mark.parametrize("linked", [".well-known", "acme-challenge"])
def test_a_symlinked_directory_below_the_webroot_is_never_followed(tmp_path, linked):
    webroot, elsewhere = tmp_path / "www", tmp_path / "etc"
    (elsewhere / "acme-challenge").mkdir(parents=True)
    victim = elsewhere / "acme-challenge" / "tok"
    victim.write_text("precious")
    webroot.mkdir()
    if linked == ".well-known":
        (webroot / ".well-known").symlink_to(elsewhere)
    else:
        (webroot / ".well-known").mkdir()
        (webroot / ".well-known" / "acme-challenge").symlink_to(elsewhere / "acme-challenge")
    with pytest.raises(SymlinkRefused, match="symbolic link"):
        place_webroot_file(str(webroot), "tok", "tok.thumb")
    with pytest.raises(SymlinkRefused):
        remove_webroot_file(str(webroot), "tok")
    assert victim.read_text() == "precious"


def test_a_symlinked_challenge_file_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    place_webroot_file(str(tmp_path / "www"), "other", "x.y")
    challenge_dir = tmp_path / "www" / ".well-known" / "acme-challenge"
    (challenge_dir / "tok").symlink_to(victim)
    assert webroot_file_digest(str(tmp_path / "www"), "tok") is None
    place_webroot_file(str(tmp_path / "www"), "tok", "tok.thumb")
    assert victim.read_text() == "precious" and not (challenge_dir / "tok").is_symlink()
    (challenge_dir / "tok").unlink()
    (challenge_dir / "tok").symlink_to(victim)
    remove_webroot_file(str(tmp_path / "www"), "tok")
    assert victim.read_text() == "precious"

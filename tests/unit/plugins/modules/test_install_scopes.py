"""Two plays installing into one dest: each marks its certificate directories with its scope, and
removes (or warns about) only its own unlisted ones, never the other's live keys nor a directory
no task marked. The file work is real (a temporary directory); only AnsibleModule's result
plumbing is stood in for."""

from __future__ import annotations

import shutil

import pytest

from ansible_collections.certops.acme.plugins.modules import install as install_module

from tests.harness.install_module import FakeModule, bundle, params

PAIRS = {name: bundle(name) for name in ("web-a", "web-b", "mail")}


def install(dest, scope, names, remove_unlisted=False, check_mode=False):
    module = FakeModule()
    module.check_mode = check_mode
    install_module.install(module, dict(params(dest, *(PAIRS[n] for n in names)), scope=scope,
                                        remove_unlisted=remove_unlisted, state="present"))
    return module.result


@pytest.fixture
def shared_dest(tmp_path):
    dest = tmp_path / "certs"
    assert install(dest, "web", ["web-a", "web-b"])["scoped"] == ["web-a", "web-b"]
    assert install(dest, "mail", ["mail"])["scoped"] == ["mail"]
    return dest


def test_each_play_sees_only_its_own_unlisted_certificates(shared_dest):
    web = install(shared_dest, "web", ["web-a"])
    assert web["unlisted"] == ["web-b"] and web["unmarked"] == []
    mail = install(shared_dest, "mail", ["mail"])
    assert mail["unlisted"] == [] and mail["changed"] is False and mail["scoped"] == []


def test_remove_unlisted_removes_only_the_plays_own(shared_dest):
    result = install(shared_dest, "web", ["web-a"], remove_unlisted=True)
    assert result["removed"] == ["web-b"]
    assert not (shared_dest / "web-b").exists() and not (shared_dest / ".scopes" / "web-b").exists()
    assert (shared_dest / "mail" / "privkey.pem").is_file(), "another play's live key was removed"
    assert (shared_dest / ".scopes" / "mail").read_text() == "mail\n"


def test_an_unmarked_directory_is_reported_and_never_removed(shared_dest):
    shutil.copytree(shared_dest / "mail", shared_dest / "by-hand")
    result = install(shared_dest, "web", ["web-a", "web-b"], remove_unlisted=True)
    assert result["removed"] == [] and result["unmarked"] == ["by-hand"]
    assert (shared_dest / "by-hand" / "privkey.pem").is_file()


def test_a_listed_directory_is_marked_once_and_check_mode_marks_nothing(tmp_path):
    dest = tmp_path / "certs"
    assert install(dest, "web", ["web-a"], check_mode=True)["scoped"] == ["web-a"]
    assert not (dest / ".scopes").exists()
    first = install(dest, "web", ["web-a"])
    assert first["scoped"] == ["web-a"] and first["changed_certificates"] == ["web-a"]
    # A play taking the directory over (listing it under a new scope) marks it, and nothing
    # about the certificate changed: no reload is called for.
    moved = install(dest, "renamed", ["web-a"])
    assert moved["scoped"] == ["web-a"] and moved["changed"] is True and moved["changed_certificates"] == []


def test_inspect_says_whether_each_held_bundle_is_this_scopes(shared_dest):
    from tests.unit.plugins.modules.test_install_fingerprints import store_fingerprint
    expected = {"web-a": store_fingerprint(PAIRS["web-a"]), "mail": store_fingerprint(PAIRS["mail"])}
    module = FakeModule()
    install_module.inspect(module, dict(params(shared_dest), scope="web", state="inspect",
                                        certificates=["web-a", "mail"], expected=expected))
    held = {h["name"]: h for h in module.result["held"]}
    assert held["web-a"]["scoped"] is True and held["mail"]["scoped"] is False
    assert module.result["unlisted"] == ["web-b"] and module.result["unmarked"] == []


@pytest.mark.parametrize("bad", ["", "../x", "a b", "-a", "x" * 129, "a\nb"])
def test_a_mark_that_is_not_a_scope_counts_as_no_mark(shared_dest, bad):
    (shared_dest / ".scopes" / "web-b").write_text(bad)
    result = install(shared_dest, "web", ["web-a"], remove_unlisted=True)
    assert result["removed"] == [] and result["unmarked"] == ["web-b"]

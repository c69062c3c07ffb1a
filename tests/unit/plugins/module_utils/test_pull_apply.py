"""The pull agent's apply step (module_utils/_pull_apply.py): what it refuses from the store, and
that what it installs is what the install module would have installed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.certops.acme.plugins.module_utils import _host_files, _pull_apply
from tests.harness.certs import make_ca, make_chain, make_leaf

NAME = "www.example.com"


def _pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _record(names=(NAME,), days_left=60, days_total=90, root=None, version="v1"):
    key_pem, leaf, chain = make_chain(names, days_left, days_total, root=root)
    return {"version": version, "cert": _pem(leaf), "chain": "".join(_pem(c) for c in chain),
            "privkey": key_pem.decode("ascii")}


def _config(tmp_path: Path, reload_log: Path | None = None) -> dict:
    (tmp_path / "pull").mkdir(exist_ok=True)
    config = {"rendered": str(tmp_path / "pull" / "bundles.json"), "status": str(tmp_path / "pull" / "status.json"),
              "dest": str(tmp_path / "certs"), "key_mode": "0600", "cert_mode": "0644", "dir_mode": "0700",
              "owner": "", "group": "", "certificates": {NAME: {"domains": [NAME]}}, "proxy": "nginx",
              "haproxy_socket": "", "checks": [], "settle": 0,
              "reload_command": "sh -c 'echo reloaded >> %s'" % reload_log if reload_log else ""}
    return config


def _render(config: dict, records: dict) -> None:
    Path(config["rendered"]).write_text(json.dumps({"certificates": records}))


def test_a_good_record_is_installed_as_the_install_module_installs_it_and_reloads_once(tmp_path):
    reloads = tmp_path / "reloads"
    config = _config(tmp_path, reloads)
    record = _record()
    _render(config, {NAME: record})
    status = _pull_apply.apply(config)
    assert status["problems"] == [] and status["installed"] == [NAME]
    cert_dir = Path(config["dest"]) / NAME
    assert os.path.islink(cert_dir) and (Path(config["dest"]) / ".versions" / NAME).is_dir()
    wanted = _host_files.bundle_files(record["cert"].encode(), record["chain"].encode(), record["privkey"].encode())
    assert _host_files.bundle_fingerprint(_host_files.held_digests(str(cert_dir))) == _host_files.fingerprint_of_files(wanted)
    assert _host_files.meta_as_wanted(str(cert_dir), 0o600, 0o644, 0o700)
    assert oct((cert_dir / "privkey.pem").stat().st_mode & 0o777) == "0o600"
    assert reloads.read_text() == "reloaded\n"
    # Rendered again unchanged (the agent's refresh, or metadata that changed): nothing happens.
    again = _pull_apply.apply(config)
    assert again["installed"] == [] and again["certificates"][NAME]["state"] == "unchanged"
    assert reloads.read_text() == "reloaded\n"
    assert json.loads(Path(config["status"]).read_text())["certificates"][NAME]["state"] == "unchanged"


def _refusal(tmp_path, record, held=None, domains=(NAME,)) -> str:
    config = _config(tmp_path)
    config["certificates"] = {NAME: {"domains": list(domains)}}
    if held is not None:
        _render(config, {NAME: held})
        assert _pull_apply.apply(config)["installed"] == [NAME]
    _render(config, {NAME: record})
    status = _pull_apply.apply(config)
    assert status["installed"] == [] and status["certificates"][NAME]["state"] == "refused"
    assert status["problems"] == [status["certificates"][NAME]["problem"]]
    return status["certificates"][NAME]["problem"]


def test_a_key_that_does_not_belong_to_the_leaf_is_refused(tmp_path):
    record = _record()
    record["privkey"] = _record()["privkey"]
    assert "key does not belong to its leaf" in _refusal(tmp_path, record)


def test_a_leaf_without_the_inventorys_names_is_refused(tmp_path):
    assert "does not cover api.example.com" in _refusal(tmp_path, _record(), domains=(NAME, "api.example.com"))


def test_an_expired_leaf_is_refused(tmp_path):
    assert "expired" in _refusal(tmp_path, _record(days_left=-1, days_total=30))


def test_a_chain_that_does_not_begin_with_the_leafs_issuer_is_refused(tmp_path):
    record = _record()
    record["chain"] = _pem(make_ca("Another Intermediate", issuer=make_ca("Another Root"))[1])
    assert "chain does not begin with the leaf's issuer" in _refusal(tmp_path, record)


def test_a_step_back_to_an_older_leaf_is_refused(tmp_path):
    root = make_ca("Test Root")
    older, newer = _record(days_left=50, root=root, version="v1"), _record(days_left=80, root=root, version="v2")
    assert "older than the one installed" in _refusal(tmp_path, older, held=newer)


@pytest.mark.parametrize("change", [
    {"privkey": "not a key"}, {"cert": "x" * (70 * 1024)}, {"version": "../etc"}, {"cert": 5}, {"chain": "é"},
])
def test_damaged_records_are_refused_and_name_the_field(tmp_path, change):
    problem = _refusal(tmp_path, {**_record(), **change})
    assert problem.startswith(NAME + ": its ")


def test_a_name_missing_from_the_rendered_file_is_refused_and_the_rest_installed(tmp_path):
    config = _config(tmp_path)
    config["certificates"]["api.example.com"] = {"domains": ["api.example.com"]}
    _render(config, {NAME: _record()})
    status = _pull_apply.apply(config)
    assert status["installed"] == [NAME]
    assert "no record was rendered" in status["certificates"]["api.example.com"]["problem"]


def test_a_listener_that_stays_stale_is_reported_after_one_reload(tmp_path):
    reloads = tmp_path / "reloads"
    config = _config(tmp_path, reloads)
    # Nothing listens on this port: the check reports it unreachable, after the heal's reload.
    config["checks"] = [{"certificate": NAME, "server_name": NAME, "address": "127.0.0.1", "port": 9}]
    _render(config, {NAME: _record()})
    status = _pull_apply.apply(config)
    assert any("serves serial (none), but serial" in p for p in status["problems"]), status["problems"]
    assert reloads.read_text() == "reloaded\n"
    # The next apply has nothing new to install, but the listener is still stale: it is healed by
    # one reload (as a playbook run would), checked again, and still reported.
    again = _pull_apply.apply(config)
    assert again["installed"] == [] and any("serves serial (none)" in p for p in again["problems"])
    assert reloads.read_text() == "reloaded\nreloaded\n"


def test_main_exits_non_zero_on_problems_and_on_an_unusable_configuration(tmp_path, capsys):
    config = _config(tmp_path)
    record = _record()
    record["privkey"] = _record()["privkey"]
    _render(config, {NAME: record})
    path = tmp_path / "apply.json"
    path.write_text(json.dumps(config))
    assert _pull_apply.main(["--config", str(path)]) == 1
    assert "key does not belong" in capsys.readouterr().err
    path.write_text("[]")
    assert _pull_apply.main(["--config", str(path)]) == 2


def test_a_leaf_issued_elsewhere_for_the_same_key_is_still_checked_for_names(tmp_path):
    key_pem, leaf = make_leaf(make_ca("Test Intermediate"), ("other.example.com",))
    record = {"version": "v1", "cert": _pem(leaf), "chain": "", "privkey": key_pem.decode("ascii")}
    assert "does not cover www.example.com" in _refusal(tmp_path, record)

"""certops.acme.config_files on real files, through its real AnsibleModule entry point: changed
files are written and validated together; a refusal puts every one back (a new one is removed)
and leaves no backup behind."""

from __future__ import annotations

import io
import json
import os
import sys

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.certops.acme.plugins.modules import config_files


def run(monkeypatch, check_mode=False, diff=False, **args):
    payload = {"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)}
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps(payload)))
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    with pytest.raises(SystemExit):
        config_files.main()
    return json.loads(out.getvalue())


@pytest.fixture
def layout(tmp_path):
    main, extra = tmp_path / "proxy.cfg", tmp_path / "crt-list"
    main.write_text("old main\n")
    os.chmod(main, 0o640)
    return main, extra


def test_changed_files_are_written_with_their_modes_and_an_unchanged_run_validates_nothing(monkeypatch, layout):
    main, extra = layout
    files = [{"dest": str(main), "mode": "0640", "src": "/ignored/template.j2"}, {"dest": str(extra), "mode": "0600"}]
    first = run(monkeypatch, files=files, contents=["new main\n", "a.pem\n"], validate="true")
    assert first["changed"] and first["validated"]
    assert main.read_text() == "new main\n" and extra.read_text() == "a.pem\n"
    assert oct(extra.stat().st_mode & 0o777) == "0o600"
    # The validator would refuse now, but nothing changed: it is not run, nothing fails.
    again = run(monkeypatch, files=files, contents=["new main\n", "a.pem\n"], validate="false")
    assert not again["changed"] and not again["validated"]


def test_a_refused_configuration_is_put_back_and_a_new_file_removed(monkeypatch, layout, tmp_path):
    main, extra = layout
    validator = tmp_path / "validate.sh"
    validator.write_text("#!/bin/sh\necho 'line 3: unknown directive' >&2\nexit 1\n")
    validator.chmod(0o755)
    result = run(monkeypatch, files=[{"dest": str(main)}, {"dest": str(extra)}], contents=["broken\n", "x\n"],
                 validate=str(validator))
    assert result["failed"]
    assert "refused by" in result["msg"] and "unknown directive" in result["msg"] and "not activated" in result["msg"]
    assert main.read_text() == "old main\n" and oct(main.stat().st_mode & 0o777) == "0o640"
    assert not extra.exists(), "a file that did not exist before the refused change is removed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proxy.cfg", "validate.sh"], "no backup or temporary file left"


def test_check_mode_reports_and_diffs_without_writing(monkeypatch, layout):
    main, extra = layout
    result = run(monkeypatch, check_mode=True, diff=True, files=[{"dest": str(main)}], contents=["new main\n"],
                 validate="false")
    assert result["changed"] and not result["validated"]
    assert result["diff"][0]["before"] == "old main\n" and result["diff"][0]["after"] == "new main\n"
    assert main.read_text() == "old main\n"


@pytest.mark.parametrize("files,contents,message", [
    ([{"dest": "relative/path"}], ["x"], "is not an absolute path"),
    ([{"dest": "/tmp/x", "mode": "rw-r"}], ["x"], "is not an octal mode"),
    ([{"dest": "/tmp/x"}], [], "0 texts for 1 files"),
])
def test_bad_input_is_refused_naming_the_field(monkeypatch, files, contents, message):
    result = run(monkeypatch, files=files, contents=contents)
    assert result["failed"] and message in result["msg"]


def test_a_validator_that_cannot_run_refuses_and_restores(monkeypatch, layout):
    main, _extra = layout
    result = run(monkeypatch, files=[{"dest": str(main)}], contents=["new\n"], validate="/nonexistent/validator -c")
    assert result["failed"] and "cannot run it" in result["msg"]
    assert main.read_text() == "old main\n"


def test_a_refused_file_gets_its_old_mode_back_not_the_requested_one(monkeypatch, tmp_path):
    main = tmp_path / "proxy.cfg"
    main.write_text("old main\n")
    os.chmod(main, 0o600)
    result = run(monkeypatch, files=[{"dest": str(main), "mode": "0644"}], contents=["broken\n"], validate="false")
    assert result["failed"]
    assert main.read_text() == "old main\n" and oct(main.stat().st_mode & 0o777) == "0o600"


def test_a_write_that_fails_half_way_puts_back_the_files_already_written(monkeypatch, layout, tmp_path):
    """The second destination cannot be written (its directory is a file): the first file,
    already replaced, is put back, and the task fails saying so."""
    main, _extra = layout
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be\n")
    result = run(monkeypatch, files=[{"dest": str(main)}, {"dest": str(blocker / "crt-list")}],
                 contents=["new main\n", "a.pem\n"], validate="true")
    assert result["failed"] and "cannot write" in result["msg"] and "put back" in result["msg"]
    assert main.read_text() == "old main\n" and oct(main.stat().st_mode & 0o777) == "0o640"
    assert blocker.read_text() == "a file where a directory should be\n"

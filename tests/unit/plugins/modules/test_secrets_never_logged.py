"""Keys sent to a target module are never logged there. AnsibleModule writes each invocation's
arguments to the host's syslog or journal, masking only options declared no_log: the modules
run here through their real entry point (main), with that log captured."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
from ansible.module_utils import basic

from ansible_collections.certops.acme.plugins.modules import challenge as challenge_module
from ansible_collections.certops.acme.plugins.modules import install as install_module

SECRET = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAsentinelKEYBODYthatmustneverbelogged\n-----END PRIVATE KEY-----\n"


def run_main(main: Callable[[], None], args: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> str:
    """Everything the module logs and prints for one invocation."""
    logged: list[str] = []
    monkeypatch.setattr(basic.AnsibleModule, "log",
                        lambda self, msg, log_args=None: logged.append(msg + json.dumps(log_args or {})))
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode())
    monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)  # ansible-core 2.19+
    with pytest.raises(SystemExit):
        main()
    assert logged, "the invocation was not logged at all: the test would prove nothing"
    return "\n".join(logged) + _without_new_secrets(capsys.readouterr().out)


def _without_new_secrets(printed: str) -> str:
    """The module's result without ``_ansible_new_secrets``: from ansible-core 2.22 a module hands
    its no_log values back to the controller there, which takes the field out of the result and
    masks those values in everything it shows (ansible/_internal/_task.py). The field is the
    protocol to the controller, not a log; whatever else is printed is checked."""
    try:
        result = json.loads(printed)
    except ValueError:
        return printed
    if isinstance(result, dict):
        result.pop("_ansible_new_secrets", None)
    return json.dumps(result)


def test_install_never_logs_the_key_material(tmp_path, monkeypatch, capsys):
    output = run_main(install_module.main, {
        "dest": str(tmp_path / "certs"), "bundles": [], "expected": {},
        "key_material": json.dumps({"www": {"privkey.pem": SECRET}})}, monkeypatch, capsys)
    assert "sentinelKEYBODY" not in output
    assert "key_material" in output, "the masked option should still be named in the log"


def test_challenge_never_logs_the_tls_alpn_01_key(tmp_path, monkeypatch, capsys):
    output = run_main(challenge_module.main, {
        "challenges": [], "state": "absent", "responder_dir": str(tmp_path / "alpn"),
        "alpn_material": {"www.example.com": [SECRET, SECRET]}}, monkeypatch, capsys)
    assert "sentinelKEYBODY" not in output

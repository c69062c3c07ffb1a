"""certops.acme.account against a real Pebble: create, idempotence, contacts, check mode, deactivate."""

from __future__ import annotations

import json
import os
import stat

import pytest

pytestmark = pytest.mark.integration


def account_task(key_path, result_file, **options):
    return [{"certops.acme.account": {"account_key_src": str(key_path), **options}, "register": "acct"},
            {"ansible.builtin.copy": {"content": "{{ acct | to_json }}", "dest": str(result_file)},
             "changed_when": False}]


def test_account_lifecycle(controller, pebble_server):
    key = controller.work / "keys" / "new-account.key"
    out = controller.work / "acct.json"

    create = controller.playbook("create", account_task(key, out, account_key_create=True, terms_agreed=True,
                                                        contact=["mailto:ops@example.test"]))
    check = controller.run(create, "--check", check=True)
    assert check.total("changed") == 1 and not key.exists(), "check mode created something"

    first = controller.run(create, check=True)
    result = json.loads(out.read_text())
    assert first.total("changed") == 1 and result["exists"] and result["account_url"].startswith("https://")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert len(result["thumbprint"]) == 43  # base64url SHA-256, no padding
    assert result["contact"] == ["mailto:ops@example.test"]

    again = controller.run(create, check=True)
    assert again.total("changed") == 0
    assert json.loads(out.read_text())["account_url"] == result["account_url"]

    update = controller.playbook("update", account_task(key, out, contact=["mailto:other@example.test"]))
    assert controller.run(update, check=True).total("changed") == 1
    assert json.loads(out.read_text())["contact"] == ["mailto:other@example.test"]

    refused = controller.playbook("refused", account_task(controller.work / "keys" / "fresh.key", out,
                                                          account_key_create=True))
    run = controller.run(refused)
    assert run.returncode != 0 and "terms_agreed" in run.stdout

    remove = controller.playbook("remove", account_task(key, out, state="absent"))
    assert controller.run(remove, check=True).total("changed") == 1
    gone = controller.run(create)  # a deactivated account cannot be used or re-created with this key
    assert gone.returncode != 0 and "deactivated" in gone.stdout.lower()


def test_key_rollover_keeps_the_account_url_and_retires_the_old_key(controller, pebble_server):
    old, new = controller.work / "keys" / "roll-old.key", controller.work / "keys" / "roll-new.key"
    out = controller.work / "roll.json"
    controller.run(controller.playbook("roll-create", account_task(old, out, account_key_create=True,
                                                                   terms_agreed=True)), check=True)
    url = json.loads(out.read_text())["account_url"]

    roll = controller.playbook("roll", account_task(old, out, new_account_key_src=str(new)))
    assert controller.run(roll, "--check", check=True).total("changed") == 1 and not new.exists()
    assert controller.run(roll, check=True).total("changed") == 1
    rolled = json.loads(out.read_text())
    assert rolled["account_url"] == url and rolled["thumbprint"] != rolled["previous_thumbprint"]
    assert controller.run(roll, check=True).total("changed") == 0, "a second rollover was attempted"

    # The CA now knows the account by the new key only.
    find_new = controller.playbook("find-new", account_task(new, out, allow_creation=False))
    controller.run(find_new, check=True)
    assert json.loads(out.read_text())["account_url"] == url
    find_old = controller.playbook("find-old", account_task(old, out, allow_creation=False))
    refused = controller.run(find_old)
    assert refused.returncode != 0 and "allow_creation is false" in refused.stdout

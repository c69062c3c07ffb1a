"""The dns-01 hook is a real process here; its wait is bounded by the batch, not 120 s a call."""

from __future__ import annotations

import time

import pytest

from ansible_collections.certops.acme.plugins.module_utils._acme.challenges.dns01 import Dns01Responder
from ansible_collections.certops.acme.plugins.module_utils._acme.names import Identifier
from ansible_collections.certops.acme.plugins.module_utils._acme.challenges import PendingChallenge
from ansible_collections.certops.acme.plugins.module_utils._acme.waiting import Deadline
from ansible_collections.certops.acme.plugins.plugin_utils._dns_hook import HookProvider


@pytest.fixture
def stuck_hook(tmp_path):
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\necho \"$1 $2\" >> {tmp_path / 'calls'}\nexec sleep 60\n")
    hook.chmod(0o755)
    return hook


def challenge():
    return PendingChallenge(certificate="w", identifier=Identifier("dns", "w.example.com"), type="dns-01",
                            url="https://ca/chall/1", token="tok", key_authorization="tok.thumb",
                            authz_url="https://ca/authz/1")


def test_a_stuck_hook_fails_its_certificate_when_the_batch_deadline_passes(stuck_hook, tmp_path):
    responder = Dns01Responder(HookProvider(str(stuck_hook)), check_servers=[("127.0.0.1", 9)])
    started = time.monotonic()
    failed = responder.deploy([challenge()], Deadline(2, "the certificate batch"))
    assert time.monotonic() - started < 5, "the hook was waited for beyond the batch deadline"
    assert "no answer within 2 s" in failed["w"]
    assert (tmp_path / "calls").read_text().split() == ["add", "_acme-challenge.w.example.com"]

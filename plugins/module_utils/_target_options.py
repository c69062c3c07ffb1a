# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)
"""The user-facing options of the target modules ``install`` and ``challenge``, written once.

Each module and the action plugin in front of it validate the same options (the action plugin
on the controller, the module again on the host), so a default such as ``dest`` is stated
here only. What the action plugin adds for its module alone (bundles, key material, ...) stays
in the module. Standard library only: this file ships to targets.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

#: Where bundles are installed when ``dest`` is not given.
DEFAULT_DEST = "/etc/certops/acme"

INSTALL_OPTIONS = {  # type: dict[str, dict[str, object]]
    "certificates": {"type": "list", "elements": "raw"},
    "dest": {"type": "path", "default": DEFAULT_DEST},
    "state": {"type": "str", "default": "present", "choices": ["present", "inspect"]},
    "owner": {"type": "str"},
    "group": {"type": "str"},
    "key_mode": {"type": "str", "default": "0600", "no_log": False},  # a file mode, not a secret
    "cert_mode": {"type": "str", "default": "0644"},
    "dir_mode": {"type": "str", "default": "0700"},
    "adopt": {"type": "bool", "default": True},
    "adopt_min_days": {"type": "int", "default": 1},
    "adopt_trust_roots": {"type": "list", "elements": "path", "default": []},
    "adopt_system_trust": {"type": "bool", "default": True},
    "remove_unlisted": {"type": "bool", "default": False},
    "inspected": {"type": "dict"},
    # Which task's certificates these are, in a dest several tasks install into (_install_scopes).
    "scope": {"type": "str", "default": "default"},
    # Controller-side (the party whose claim an adopted certificate records); ignored on targets.
    "wanted_by": {"type": "str"},
}

CHALLENGE_OPTIONS = {  # type: dict[str, dict[str, object]]
    "challenges": {"type": "list", "elements": "dict", "required": True},
    "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
    "webroot": {"type": "path"},
    "responder_dir": {"type": "path", "default": "/run/certops-acme/tls-alpn"},
    "responder_address": {"type": "str", "default": "127.0.0.1"},
    "responder_port": {"type": "int", "default": 10443},
    "responder_ttl": {"type": "int", "default": 900},
}


def copied(options):
    """A fresh copy of ``options`` for an argument spec (Ansible may change what it is given)."""
    return dict((name, dict(spec)) for name, spec in options.items())

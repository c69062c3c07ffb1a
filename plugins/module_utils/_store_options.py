# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)
"""The store options, written once (documented in plugins/doc_fragments/acme.py, STORE).

The action plugins read the store on the controller with them (module_utils/_acme/options.py).
The target-side modules behind ``install`` and ``challenge`` accept and ignore them, so that
``module_defaults: {group/certops.acme.store: ...}`` is valid for every member of the group.
Standard library only: this file ships to targets.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

STORE_OPTIONS = {  # type: dict[str, dict[str, object]]
    # file (the default, or $CERTOPS_ACME_STORE_BACKEND) or vault: options.build_store checks it.
    "store": {"type": "str", "choices": ["file", "vault"]},
    "store_path": {"type": "path"},
    "vault_url": {"type": "list", "elements": "str"},
    "vault_token": {"type": "str", "no_log": True},
    "vault_role_id": {"type": "str"},
    "vault_secret_id": {"type": "str", "no_log": True},
    "vault_namespace": {"type": "str"},
    "vault_mount": {"type": "str"},
    "vault_prefix": {"type": "str"},
    "vault_ca_cert": {"type": "path"},
    "vault_validate_certs": {"type": "bool", "default": True},
    "vault_timeout": {"type": "int", "default": 30},
    "vault_lock_lease": {"type": "int", "default": 60},
}


def store_options():
    """A fresh copy of STORE_OPTIONS for an argument spec."""
    copy = {}
    for name, spec in STORE_OPTIONS.items():
        copy[name] = dict(spec)
    return copy

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: store_copy
short_description: Copy certificates, keys and account records from one store into another
version_added: 0.2.0
description:
  - Copies every certificate of the O(source) store (or those in O(certificates)) into the
    task's own store, each as it is (key, certificate, chain, metadata), together with the
    account records, the trust anchors and the ACME account key kept in the store
    (C(account_key_in_store)), each of these only where the target has none. Use it to move
    a file store into a shared store on OpenBao or HashiCorp Vault when a second controller
    joins, and back.
  - Idempotent - a certificate is written only when the target lacks it or holds one that
    expires earlier; one that is newer in the target is left alone and reported. Pending
    orders are not copied.
  - Runs on the controller; it is an action plugin, the documentation lives here.
author: certops.acme maintainers (@certops)
extends_documentation_fragment:
  - certops.acme.acme.STORE
  - certops.acme.attributes
  - certops.acme.attributes.ACTION_GROUP
attributes:
  check_mode:
    support: full
    details: Reports what would be copied; writes nothing.
  diff_mode:
    support: none
  action_group:
    support: full
    membership: [certops.acme.store]
options:
  source:
    description:
      - The store to copy from, with the same options as the task's own store (O(store),
        O(store_path), O(vault_url), ...). It is only read.
    type: dict
    required: true
  certificates:
    description: Names to copy; all of the source's certificates when left out.
    type: list
    elements: str
seealso:
  - module: certops.acme.certificate
"""

EXAMPLES = r"""
- name: Move the controller's file store into the shared store on OpenBao
  certops.acme.store_copy:
    source:
      store: file
      store_path: /var/lib/certops-acme
    store: vault
    vault_url: [https://bao1.example.com:8200, https://bao2.example.com:8200, https://bao3.example.com:8200]
    vault_token: "{{ lookup('ansible.builtin.env', 'VAULT_TOKEN') }}"

- name: And back, for a backup as files
  certops.acme.store_copy:
    source:
      store: vault
    store_path: /var/backups/certops-acme
"""

RETURN = r"""
copied:
  description: Names written into the task's store (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
unchanged:
  description: Names the task's store already held in the same version.
  returned: always
  type: list
  elements: str
newer_in_target:
  description: Names the task's store holds in a version that expires later; left alone.
  returned: always
  type: list
  elements: str
records_copied:
  description: Account records, trust anchors and account keys copied.
  returned: always
  type: int
source:
  description: Which store was read.
  returned: always
  type: str
target:
  description: Which store was written.
  returned: always
  type: str
"""

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pull_access
short_description: Give each proxy host read access to its own certificates in the shared store (pull delivery)
version_added: 0.3.0
description:
  - For pull delivery, where OpenBao/Vault Agent on each proxy host takes that host's certificates
    from the shared store itself (the layouts' C(certops_<layout>_delivery=pull)).
  - For each host in O(hosts), writes an ACL policy named O(name_prefix) followed by the host name,
    which allows C(read) on the store record of each certificate the host serves and nothing else,
    and an AppRole of the same name whose tokens carry that policy. Both are written only where they
    differ from what the inventory says, so a site moved to another host moves its read right too.
  - Returns each host's role id, and a new secret id for each host whose
    O(hosts[].new_secret_id) is set (a host that holds none yet). The task's output is then
    hidden as with C(no_log); the next task writes the secret id to the host.
  - Host and certificate names are checked against anchored patterns without the glob characters
    C(*) and C(+), so no name can widen a policy.
  - Needs O(admin_token), a token that may write policies (C(sys/policy/*)) and AppRoles under
    O(approle_mount); the store's own token is not used. The AppRole auth method must be enabled
    (C(bao auth enable approle)).
  - Runs on the controller; it is an action plugin, the documentation lives here.
author: certops.acme maintainers (@certops)
extends_documentation_fragment:
  - certops.acme.acme.STORE
  - certops.acme.attributes
  - certops.acme.attributes.ACTION_GROUP
attributes:
  check_mode:
    support: full
    details: Reports which hosts' policies or AppRoles would change; writes nothing and makes no secret id.
  diff_mode:
    support: none
  action_group:
    support: full
    membership: [certops.acme.store]
options:
  hosts:
    description: Each proxy host and the certificates it serves.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The inventory host name (1-100 letters, digits, C(.), C(_) or C(-)).
        type: str
        required: true
      certificates:
        description: Names of the certificates in the store that the host serves.
        type: list
        elements: str
        default: []
      new_secret_id:
        description: Make a new secret id for this host (one that holds none yet, or to rotate it).
        type: bool
        default: false
  admin_token:
    description: A token that may write policies and AppRoles.
    type: str
    required: true
  approle_mount:
    description: Where the AppRole auth method is mounted.
    type: str
    default: approle
  name_prefix:
    description: The beginning of each host's policy and AppRole name.
    type: str
    default: certops-pull-
  token_ttl:
    description: Lifetime of the tokens a host's agent logs in for (the agent renews and logs in again).
    type: str
    default: 1h
seealso:
  - module: certops.acme.certificate
"""

EXAMPLES = r"""
- name: One policy and AppRole per proxy host, for the certificates it serves
  certops.acme.pull_access:
    store: vault
    vault_url: [https://bao1.example.net:8200]
    admin_token: "{{ lookup('ansible.builtin.env', 'CERTOPS_PULL_ADMIN_TOKEN') }}"
    hosts:
      - {name: proxy1, certificates: [www.example.com, shop.example.com]}
      - {name: proxy2, certificates: [www.example.com], new_secret_id: true}
  register: access
"""

RETURN = r"""
hosts:
  description: For each host, its AppRole (and policy) name, role id, certificates, and whether anything was written.
  returned: always
  type: dict
  sample: {proxy1: {role: certops-pull-proxy1, role_id: 4f0c..., changed: false, certificates: [www.example.com]}}
secret_ids:
  description: The new secret id of each host with O(hosts[].new_secret_id) (empty in check mode).
  returned: always
  type: dict
store_urls:
  description: The store's addresses, as the task used them.
  returned: always
  type: list
  elements: str
store_mount:
  description: The KV v2 mount of the store, which the policies name.
  returned: always
  type: str
store_prefix:
  description: The store's prefix under its mount, which the policies name.
  returned: always
  type: str
"""

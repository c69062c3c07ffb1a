#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)

# This file only documents the module; the work is done on the controller by the action
# plugin of the same name (plugins/action/account.py).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: account
short_description: Create, update or deactivate an ACME account
version_added: 0.1.0
description:
  - Looks the account up by its key, creates it when missing (optionally creating the key
    too), updates its contacts, or deactivates it.
  - Returns the account URL and the key's JWK thumbprint, which the stateless http-01
    responder of the proxies needs.
  - When an order through the store (the file store at O(store_path), or a shared store on
    OpenBao/Vault, O(store)) has used the account of this key at this CA, the store remembers
    it; while nothing is to change (no rollover, the same O(contact) or none given) this task
    then answers from there without any request to the CA, so an
    idempotent run of the roles sends the CA nothing. Every order asks the CA for the account
    again; if it is gone, what was remembered is forgotten. Deactivation and key rollover
    forget it too.
author: certops.acme maintainers (@certops)
extends_documentation_fragment:
  - certops.acme.acme
  - certops.acme.acme.ACCOUNT_KEY
  - certops.acme.acme.STORE
  - certops.acme.attributes
  - certops.acme.attributes.ACTION_GROUP
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  action_group:
    support: full
    membership: [certops.acme.acme, certops.acme.store]
options:
  state:
    description: V(present) ensures the account exists; V(absent) deactivates it (irreversible).
    type: str
    choices: [present, absent]
    default: present
  account_key_create:
    description: Create the key file at O(account_key_src) (EC P-256, mode 0600) when it does not exist.
    type: bool
    default: false
  allow_creation:
    description: Create the account when none exists for the key.
    type: bool
    default: true
  contact:
    description:
      - Contact URLs such as C(mailto:ops@example.com). When given, the account's contacts are
        made to match.
    type: list
    elements: str
  terms_agreed:
    description: Agree to the CA's terms of service (required by most CAs to create an account).
    type: bool
    default: false
  eab_kid:
    description:
      - External Account Binding key identifier, for CAs that require EAB.
      - Defaults to E(CERTOPS_ACME_EAB_KID).
    type: str
  eab_hmac_key:
    description:
      - External Account Binding MAC key (base64url), as the CA issued it. Never logged.
      - Defaults to E(CERTOPS_ACME_EAB_HMAC_KEY).
    type: str
  eab_alg:
    description: MAC algorithm of the EAB key.
    type: str
    choices: [HS256, HS384, HS512]
    default: HS256
  new_account_key_src:
    description:
      - Roll the account over to this key (RFC 8555 keyChange); the account URL stays the same.
        A missing file is created (EC P-256). Afterwards, use it as O(account_key_src).
      - Idempotent - when the account already answers to the new key, nothing is sent.
    type: path
  new_account_key_content:
    description: The new key as PEM instead of a path, for O(new_account_key_src). Never logged.
    type: str
  fallback_after:
    description:
      - With several CAs in O(acme_directory), about how many seconds each CA's account may take.
        A CA that fails is reported as a warning and the others are still checked; the task
        fails only when every CA does (certificates then fall back to the CAs that answered).
    type: int
    default: 60
seealso:
  - module: certops.acme.certificate
"""

EXAMPLES = r"""
- name: Make sure the ACME account exists (and its key)
  certops.acme.account:
    acme_directory: https://acme-v02.api.letsencrypt.org/directory
    account_key_src: /etc/certops/account.key
    account_key_create: true
    terms_agreed: true
    contact: [mailto:ops@example.com]
  register: acme_account

- name: Deactivate an account
  certops.acme.account:
    acme_directory: https://acme-v02.api.letsencrypt.org/directory
    account_key_src: /etc/certops/old-account.key
    state: absent

- name: Roll an account over to a new key (same account URL, orders and rate limits)
  certops.acme.account:
    acme_directory: https://acme-v02.api.letsencrypt.org/directory
    account_key_src: /etc/certops/team-account.key
    new_account_key_src: /etc/certops/team-account-2027.key
  register: rolled
"""

RETURN = r"""
account_url:
  description: The account URL (C(kid)), or null when no account exists.
  returned: always
  type: str
thumbprint:
  description: Base64url SHA-256 JWK thumbprint of the account key (public; used for stateless http-01).
  returned: always
  type: str
exists:
  description: Whether the account exists after the task.
  returned: always
  type: bool
contact:
  description: The account's contacts as the CA reports them.
  returned: unless the key was rolled over
  type: list
  elements: str
previous_thumbprint:
  description: Thumbprint of the key the account had before a rollover.
  returned: when the key was rolled over
  type: str
accounts:
  description:
    - With a list of CAs in O(acme_directory), one result per CA (the keys above plus C(directory)),
      in the list's order; the keys above then describe the first CA's account.
  returned: when O(acme_directory) is a list of more than one CA
  type: list
  elements: dict
"""

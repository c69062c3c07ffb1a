# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: revoke
short_description: Revoke certificates from the controller store at the ACME CA
version_added: 0.1.0
description:
  - Asks the CA to revoke the current version of each named certificate (RFC 8555 section 7.6),
    signed by the ACME account or by the certificate's own private key.
  - Marks each one revoked in the store, so the next M(certops.acme.certificate) run (or the
    layout roles, or C(certops.acme.renew)) orders a replacement and installs it.
  - Runs on the controller; it is an action plugin, the documentation lives here.
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
    details: Reports what would be revoked; sends nothing.
  diff_mode:
    support: none
  action_group:
    support: full
    membership: [certops.acme.acme, certops.acme.store]
options:
  certificates:
    description: Names of the certificates in the store to revoke.
    type: list
    elements: str
    required: true
  reason:
    description:
      - Why (RFC 5280 reason code). Use V(keyCompromise) when the private key leaked; the CA
        may then refuse new certificates for that key.
    type: str
    choices: [unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation]
    default: unspecified
  revoke_with:
    description:
      - V(account_key) signs with the account that ordered the certificate (needs O(account_key_src)
        or O(account_key_content)).
      - V(certificate_key) signs with the certificate's own key from the store, for when the
        account key is lost.
    type: str
    choices: [account_key, certificate_key]
    default: account_key
notes:
  - Idempotent - a certificate already marked revoked in the store is not sent again, and one the
    CA reports as already revoked counts as done.
seealso:
  - module: certops.acme.certificate
"""

EXAMPLES = r"""
- name: Revoke a certificate whose key leaked
  certops.acme.revoke:
    acme_directory: https://acme-v02.api.letsencrypt.org/directory
    account_key_src: /etc/certops/account.key
    certificates: [www.example.com]
    reason: keyCompromise
  run_once: true

- name: Order the replacement at once (the store marks the old one revoked)
  certops.acme.certificate:
    acme_directory: https://acme-v02.api.letsencrypt.org/directory
    account_key_src: /etc/certops/account.key
    certificates:
      - name: www.example.com
        domains: [www.example.com]
  run_once: true
  register: replaced
"""

RETURN = r"""
certificates:
  description: One entry per certificate, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The certificate's name in the store.
      type: str
    changed:
      description: Whether a revocation was sent and accepted (or would be, in check mode).
      type: bool
    serial:
      description: Serial number (hex) of the revoked certificate.
      type: str
    note:
      description: Why nothing was sent, when nothing was.
      type: str
"""

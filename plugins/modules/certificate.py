#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)

# This file only documents the module; the work is done on the controller by the action
# plugin of the same name (plugins/action/certificate.py).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: certificate
short_description: Obtain and renew a whole batch of ACME certificates on the controller
version_added: 0.1.0
description:
  - Takes a list of certificates and decides for each whether to keep it, issue it or renew it
    (missing; names changed; key type changed; inside the renewal window, by default when a
    third of the lifetime is left, half for certificates living under 10 days).
  - Orders everything that is due in parallel over one HTTPS connection pool, answering
    http-01 statelessly (the proxy answers C(token.thumbprint) itself, as the
    C(certops.acme.edge) role configures it), and stores the results in the controller store.
  - Each certificate is ordered under a per-certificate lock after re-reading the store, so two
    concurrent runs never order the same certificate twice.
  - One failing certificate never loses the others; the task fails after storing every
    success, naming each failure.
  - When nothing is due, no request is sent to the CA at all.
  - Run it once per batch (C(run_once) in a play over many hosts); install the results with
    M(certops.acme.install).
author: certops.acme contributors
extends_documentation_fragment:
  - certops.acme.acme
  - certops.acme.acme.ACCOUNT_KEY
  - certops.acme.acme.STORE
attributes:
  check_mode:
    support: full
    details: Reports what would be issued or renewed; sends nothing to the CA and writes nothing.
  diff_mode:
    support: none
  action_group:
    support: full
    membership: [certops.acme.acme]
options:
  certificates:
    description: The certificates to manage.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Name of the certificate in the store and on hosts (directory name), for example
            C(www.example.com) or C(wildcard.example.com).
        type: str
        required: true
      domains:
        description:
          - DNS names and IP addresses the certificate covers. The first DNS name becomes the
            subject CN. IDNs are converted to punycode, names lower-cased, trailing dots dropped.
        type: list
        elements: str
        required: true
      key_type:
        description: Private key type of the certificate.
        type: str
        choices: [ec256, ec384, rsa2048, rsa3072, rsa4096]
        default: ec256
      challenge:
        description: How names are validated. Only stateless V(http-01) in this version.
        type: str
        choices: [http-01]
        default: http-01
      renew_remaining_days:
        description: Renew when fewer than this many days of validity remain.
        type: float
      renew_remaining_fraction:
        description:
          - Renew when less than this fraction of the lifetime remains.
          - Default 1/3, or 1/2 for lifetimes under 10 days. Mutually exclusive with
            O(certificates[].renew_remaining_days).
        type: float
      force:
        description: Renew even when not due.
        type: bool
        default: false
      reuse_key:
        description: Keep the stored private key on renewal (default is a fresh key each time).
        type: bool
        default: false
      profile:
        description: ACME certificate profile to request, where the CA offers profiles.
        type: str
  workers:
    description: How many orders run in parallel.
    type: int
    default: 4
  timeout:
    description: Seconds the whole batch may take before the remaining orders fail.
    type: int
    default: 600
  lock_timeout:
    description: Seconds to wait for another run that is issuing the same certificate.
    type: int
    default: 300
seealso:
  - module: certops.acme.account
  - module: certops.acme.install
"""

EXAMPLES = r"""
- name: Order or renew everything the proxies serve, once for the whole play
  certops.acme.certificate:
    acme_directory: https://acme-v02.api.letsencrypt.org/directory
    account_key_src: /etc/certops/account.key
    certificates:
      - name: www.example.com
        domains: [www.example.com, example.com]
      - name: api.example.com
        domains: [api.example.com]
        key_type: rsa2048
  run_once: true
  register: issued

- name: Show what happened
  ansible.builtin.debug:
    msg: "{{ issued.certificates | map(attribute='action') | list }}"
"""

RETURN = r"""
certificates:
  description: One result per certificate, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Certificate name.
      type: str
    action:
      description: V(keep), V(issue), V(renew) or V(failed).
      type: str
    changed:
      description: Whether a new certificate was stored (or would be, in check mode).
      type: bool
    reason:
      description: Why this action was chosen.
      type: str
    domains:
      description: Normalised names.
      type: list
      elements: str
    not_after:
      description: Expiry of the stored certificate (ISO 8601), if any.
      type: str
    serial:
      description: Serial number (hex) of the stored certificate, if any.
      type: str
    sha256:
      description: SHA-256 fingerprint of the stored certificate (DER), if any.
      type: str
    error:
      description: Why this certificate failed, if it did.
      type: str
acme_requests:
  description: Requests sent to the ACME server in this task, by kind.
  returned: always
  type: dict
account_url:
  description: The account URL used, when anything was ordered.
  returned: always
  type: str
store_path:
  description: The controller store used.
  returned: always
  type: str
"""

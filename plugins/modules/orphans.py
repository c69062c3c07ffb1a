#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: orphans
short_description: Report and prune certificates in the controller store that no host wants
version_added: 0.2.0
description:
  - Judges the store's certificates as one party sees them, the party (an inventory, a team, or
    the playbooks that call M(certops.acme.certificate) directly) named by O(wanted_by), whose
    wanted certificates are O(wanted). Every run that orders or keeps a certificate records its
    party in the certificate's metadata (a claim), so the store knows who wants what.
  - A certificate the party claims and no longer wants, which another party claims too, is
    released (the party's claim is removed); nothing else happens to it.
  - One the party alone claims and no longer wants is an orphan. Each is marked in the store with
    the time it was first found so (a wanted certificate loses the mark) and reported. Nothing
    renews them. With O(prune), orphans marked for at least O(prune_after_days) are removed from
    the store, keys included, if no other party has claimed them meanwhile. The grace period keeps
    a certificate whose hosts were unreachable for a run. Pruning is refused on a run limited
    with C(--limit).
  - Certificates of other parties are not judged, nor those that record no claims (stored before
    claims were kept, or by hand), which are reported as RV(unclaimed) unless
    O(claim_unclaimed) takes them as the party's own.
  - Revoke orphans first, if you want them revoked, with M(certops.acme.revoke).
  - Runs on the controller; it is an action plugin, the documentation lives here.
author: certops.acme maintainers (@certops)
extends_documentation_fragment:
  - certops.acme.acme.STORE
  - certops.acme.attributes
  - certops.acme.attributes.ACTION_GROUP
attributes:
  check_mode:
    support: full
    details: Reports what would be marked and pruned; writes nothing.
  diff_mode:
    support: none
  action_group:
    support: full
    membership: [certops.acme.store]
options:
  wanted:
    description: Names of every certificate some inventory host still needs.
    type: list
    elements: str
    required: true
  prune:
    description: Remove orphans marked for at least O(prune_after_days).
    type: bool
    default: false
  prune_after_days:
    description: Days a certificate must have been an orphan before O(prune) removes it.
    type: int
    default: 7
  wanted_by:
    description:
      - The party judging, by the name its certificate tasks record (the roles' C(certops_certificates_wanted_by),
        M(certops.acme.certificate)'s O(certops.acme.certificate#module:wanted_by)).
      - Letters, digits and C(._:@/-), at most 128 characters.
    type: str
    default: inventory
    version_added: 0.2.0
  claim_unclaimed:
    description:
      - Judge certificates that record no claims as this party's own. Right for a store only one
        party uses, whose certificates were stored before claims were kept.
    type: bool
    default: false
    version_added: 0.2.0
seealso:
  - module: certops.acme.revoke
"""

EXAMPLES = r"""
- name: Report certificates no host wants any more, and prune those orphaned for a week
  certops.acme.orphans:
    wanted: "{{ groups['all'] | map('extract', hostvars, '_certops_certificates_wanted') | select('defined') | flatten | map(attribute='name') | unique }}"
    wanted_by: inventory
    prune: true

- name: The certificates a playbook orders with certops.acme.certificate directly (party "direct")
  certops.acme.orphans:
    wanted: [www, mail]
    wanted_by: direct
"""

RETURN = r"""
orphans:
  description: The store's certificates that the party alone claims and O(wanted) does not name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Certificate name.
      type: str
    domains:
      description: Its names.
      type: list
      elements: str
    not_after:
      description: Expiry, ISO 8601.
      type: str
    orphaned_since:
      description: When it was first found unwanted.
      type: str
    revoked:
      description: Whether the store records it as revoked.
      type: bool
    pruned:
      description: Whether it was (or, in check mode, would be) removed.
      type: bool
pruned:
  description: Names removed from the store.
  returned: always
  type: list
  elements: str
marked:
  description: Names whose orphan mark this run set or cleared (a write to the store, so the task reports changed).
  returned: always
  type: list
  elements: str
released:
  description:
    - Names this party no longer wants that another party still claims; its claim was removed (a write
      to the store, so the task reports changed).
  returned: always
  type: list
  elements: str
  version_added: 0.2.0
unclaimed:
  description: Names that record no claims and were not judged (see O(claim_unclaimed)).
  returned: always
  type: list
  elements: str
  version_added: 0.2.0
wanted_by:
  description: The party that judged.
  returned: always
  type: str
  version_added: 0.2.0
damaged:
  description:
    - Names whose stored record does not verify (its key does not fit, its chain does not link, a field is
      not text or too large). They are not judged; the next run that wants one replaces it.
  returned: always
  type: list
  elements: str
"""

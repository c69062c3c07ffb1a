# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # What each attribute means; every module states its own support level next to it.
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Whether the task can run with C(--check) and report what it would change without changing it.
  diff_mode:
    description: Whether the task reports what it changed, or would change, with C(--diff).
"""

    # Modules whose options can be set once for the whole play through module_defaults.
    ACTION_GROUP = r"""
attributes:
  action_group:
    description:
      - Takes its defaults from C(module_defaults) set for its groups - C(group/certops.acme.acme) for
        the ACME connection (C(acme_directory), C(ca_path), the account key) and
        C(group/certops.acme.store) for the store (C(store), C(store_path), the C(vault_*) options).
"""

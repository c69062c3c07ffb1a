#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: config_files
short_description: Write a proxy's configuration files together, validate them in place, roll back on refusal
version_added: 0.2.0
description:
  - Writes every file of O(files) whose content or mode differs, each atomically (a temporary
    file given its mode, then renamed over the old one), then runs O(validate). When the
    validator refuses the configuration, every file written is put back as it was (or removed
    when it did not exist) and the task fails quoting the validator; the running server keeps
    its configuration.
  - Proxies can only validate in place (nginx reads the files its main configuration includes),
    so the files are written first and taken back on refusal. All of it is one call on the
    host, with no backup files left behind.
  - The layout roles render their templates on the controller (the C(template) lookup) and pass
    the text in O(contents).
  - Needs only the Python standard library on the host.
author: certops.acme maintainers (@certops)
extends_documentation_fragment:
  - certops.acme.attributes
attributes:
  check_mode:
    support: full
    details: Reports what would change; nothing is written or validated.
  diff_mode:
    support: full
options:
  files:
    description:
      - The files, each a mapping with C(dest) (absolute path) and optionally C(mode) (octal
        string, default V(0640)). Other keys (such as C(src), the template a role rendered) are
        ignored.
    type: list
    elements: dict
    required: true
  contents:
    description: The text of each file of O(files), in the same order.
    type: list
    elements: str
    required: true
  validate:
    description:
      - Command that checks the whole configuration once the files are in place (split like a
        shell would, run without a shell); a non-zero exit refuses it. Not run when nothing
        changed.
    type: str
seealso:
  - module: certops.acme.served
    description: Checks, after the reload, that each listener serves the installed certificate.
"""

EXAMPLES = r"""
- name: Write the HAProxy configuration and its crt-list, validated together
  certops.acme.config_files:
    files:
      - {dest: /etc/haproxy/certops.cfg, mode: "0640"}
      - {dest: /etc/haproxy/certops/crt-list, mode: "0600"}
    contents: "{{ query('ansible.builtin.template', 'haproxy.cfg.j2', 'crt-list.j2') }}"
    validate: haproxy -c -f /etc/haproxy/certops.cfg
  notify: reload haproxy
"""

RETURN = r"""
files:
  description: Each file, whether it changed.
  returned: always
  type: list
  elements: dict
  contains:
    dest:
      description: The path.
      type: str
    changed:
      description: Whether its content or mode differed.
      type: bool
validated:
  description: Whether the validator ran (and accepted the configuration).
  returned: always
  type: bool
"""

import os
import shlex

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certops.acme.plugins.module_utils import _host_files

#: A configuration file larger than this is not read back for comparison (nor written).
MAX_CONFIG = 16 * 1024 * 1024
#: What is quoted of the validator's output.
MAX_QUOTE = 4000


def _held(path):
    """(bytes, stat) of the file at ``path``, or (None, None) when there is none."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG + 1)
            return data, os.fstat(handle.fileno())
    except (IOError, OSError):
        return None, None


def _plan(module, files, contents):
    if len(files) != len(contents):
        module.fail_json(msg="contents: %d texts for %d files; give one text per file, in the same order"
                         % (len(contents), len(files)))
    plan = []
    for index, (item, text) in enumerate(zip(files, contents)):
        dest = item.get("dest")
        if not isinstance(dest, str) or not os.path.isabs(dest):
            module.fail_json(msg="files[%d].dest: %r is not an absolute path" % (index, dest))
        try:
            mode = int(str(item.get("mode") or "0640"), 8)
        except ValueError:
            module.fail_json(msg="files[%d].mode: %r is not an octal mode (write it quoted, e.g. '0640')"
                             % (index, item.get("mode")))
        data = text.encode("utf-8")
        if len(data) > MAX_CONFIG:
            module.fail_json(msg="files[%d]: %s would be larger than %d bytes" % (index, dest, MAX_CONFIG))
        old, held = _held(dest)
        # A replaced file keeps its owner (the template module's behaviour); a new one is the user's.
        plan.append({"dest": dest, "data": data, "mode": mode, "old": old,
                     "old_mode": held.st_mode & 0o7777 if held else None,
                     "uid": held.st_uid if held else None, "gid": held.st_gid if held else None,
                     "changed": old != data or held is None or held.st_mode & 0o7777 != mode})
    return plan


def _restore(written):
    """Put back what ``written`` replaced; returns the paths that could not be restored."""
    failed = []
    for entry in reversed(written):
        try:
            if entry["old"] is None:
                os.unlink(entry["dest"])
            else:
                _host_files.atomic_write(entry["dest"], entry["old"], entry["old_mode"], entry["uid"], entry["gid"])
        except (IOError, OSError) as error:
            failed.append("%s (%s)" % (entry["dest"], error))
    return failed


def _validate(module, command):
    """(accepted, what the validator said)."""
    try:
        argv = shlex.split(command)
    except ValueError as error:
        module.fail_json(msg="validate: %r cannot be split into a command (%s)" % (command, error))
    try:
        rc, out, err = module.run_command(argv, check_rc=False, handle_exceptions=False)
    except OSError as error:
        return False, "cannot run it: %s" % error
    said = (err or out or "").strip()
    return rc == 0, said[-MAX_QUOTE:]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type="list", elements="dict", required=True),
            contents=dict(type="list", elements="str", required=True, no_log=False),
            validate=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    plan = _plan(module, params["files"], params["contents"])
    changed = [entry for entry in plan if entry["changed"]]
    result = {"changed": bool(changed), "validated": False,
              "files": [{"dest": entry["dest"], "changed": entry["changed"]} for entry in plan]}
    if module._diff:
        result["diff"] = [{"before_header": e["dest"], "after_header": e["dest"],
                           "before": (e["old"] or b"").decode("utf-8", "replace"),
                           "after": e["data"].decode("utf-8", "replace")} for e in changed]
    if not changed or module.check_mode:
        module.exit_json(**result)
    written = []
    try:
        for entry in changed:
            directory = os.path.dirname(entry["dest"])
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o755)
            _host_files.atomic_write(entry["dest"], entry["data"], entry["mode"], entry["uid"], entry["gid"])
            written.append(entry)
    except (IOError, OSError) as error:
        unrestored = _restore(written)
        module.fail_json(msg="cannot write %s: %s; the previous configuration was put back%s"
                         % (entry["dest"], error.strerror or error,
                            (" except " + ", ".join(unrestored)) if unrestored else ""))
    if params.get("validate"):
        accepted, said = _validate(module, params["validate"])
        if not accepted:
            unrestored = _restore(written)
            module.fail_json(
                msg="The new configuration was refused by '%s' and was not activated; the previous one stays "
                    "in place%s. Validator said: %s"
                    % (params["validate"], (" (could not restore: " + ", ".join(unrestored) + ")") if unrestored
                       else "", said or "(nothing)"),
                files=result["files"])
        result["validated"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()

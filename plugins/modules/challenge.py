#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: challenge
short_description: Put ACME challenges in place on a host (webroot http-01, tls-alpn-01), and remove them
version_added: 0.1.0
description:
  - Takes the RV(certops.acme.certificate#module:challenges) returned by
    M(certops.acme.certificate) with O(certops.acme.certificate#module:stage=prepare) and makes them
    answerable on this host; O(state=absent) removes exactly what it added.
  - B(http-01 with a webroot) - writes C(WEBROOT/.well-known/acme-challenge/TOKEN) holding the
    key authorization, for web servers this collection does not manage.
  - B(tls-alpn-01) (RFC 8737) - writes each name's challenge certificate (made on the
    controller, shipped from the controller store, never shown) into O(responder_dir) and runs
    a small responder on O(responder_address):O(responder_port) that presents it to clients
    asking for ALPN C(acme-tls/1) with that name as SNI. The proxy routes C(acme-tls/1) there.
    The responder stops by itself after O(responder_ttl) seconds at the latest.
  - Tokens that are not base64url are refused before any path is built.
  - Standard library only on the target.
author: certops.acme maintainers (@certops)
extends_documentation_fragment:
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
    membership: [certops.acme.store]
options:
  challenges:
    description: The challenges to deploy or remove, as M(certops.acme.certificate) returned them.
    type: list
    elements: dict
    required: true
  state:
    description: V(present) deploys; V(absent) removes.
    type: str
    choices: [present, absent]
    default: present
  webroot:
    description: Webroot to use instead of the one each challenge names.
    type: path
  responder_dir:
    description: Directory for tls-alpn-01 challenge certificates and the responder's files (0700).
    type: path
    default: /run/certops-acme/tls-alpn
  responder_address:
    description: Address the tls-alpn-01 responder listens on (the proxy sends C(acme-tls/1) there).
    type: str
    default: 127.0.0.1
  responder_port:
    description: Port of the tls-alpn-01 responder.
    type: int
    default: 10443
  responder_ttl:
    description: Seconds after which the responder exits even if nobody removed it.
    type: int
    default: 900
  alpn_material:
    description: Internal, filled in by the action plugin from the controller store (never logged). Do not set.
    type: dict
seealso:
  - module: certops.acme.certificate
"""

EXAMPLES = r"""
- name: Prepare orders whose challenges are answered on the hosts
  certops.acme.certificate:
    stage: prepare
    certificates:
      - name: intranet.example.com
        domains: [intranet.example.com]
        webroot: /var/www/html
  run_once: true
  register: prepared

- name: Deploy, complete, and always clean up
  block:
    - name: Put the challenges in place on every host behind the name
      certops.acme.challenge:
        challenges: "{{ prepared.challenges }}"

    - name: Let the CA validate and finish the orders
      certops.acme.certificate:
        stage: complete
        certificates:
          - name: intranet.example.com
            domains: [intranet.example.com]
            webroot: /var/www/html
      run_once: true
  always:
    - name: Remove the challenges
      certops.acme.challenge:
        challenges: "{{ prepared.challenges }}"
        state: absent
"""

RETURN = r"""
files:
  description: Challenge files written or removed.
  returned: always
  type: list
  elements: str
responder:
  description: Whether the tls-alpn-01 responder runs after the task (its address and port when it does).
  returned: always
  type: dict
"""

import errno
import hashlib
import inspect
import os
import re
import signal
import sys
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certops.acme.plugins.module_utils import _host_files
from ansible_collections.certops.acme.plugins.module_utils._store_options import store_options
from ansible_collections.certops.acme.plugins.module_utils._target_options import CHALLENGE_OPTIONS, copied
from ansible_collections.certops.acme.plugins.module_utils import _tls_alpn_responder

TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
SNI_NAME = re.compile(r"^(\*\.)?[a-z0-9.-]{1,253}$|^[0-9a-f.:]{2,45}$")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().split(") ", 1)[1][0] != "Z"
    except (IOError, OSError, IndexError):
        return True


def read_pid(path):
    try:
        with open(path) as handle:
            return int(handle.read().strip() or 0)
    except (IOError, OSError, ValueError):
        return 0


def wait_listening(address, port, timeout=20.0):
    import socket
    deadline = time.time() + timeout
    while time.time() < deadline:
        sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
        sock.settimeout(0.2)
        try:
            if sock.connect_ex((address, port)) == 0:
                return True
        finally:
            sock.close()
        time.sleep(0.05)
    return False


def check(module, item):
    token = str(item.get("token", ""))
    if not TOKEN.fullmatch(token):
        module.fail_json(msg="challenges: token %r for %s is not base64url; refusing to build a path from it"
                         % (token[:40], item.get("identifier")))
    if str(item.get("key_authorization", "")).split(".", maxsplit=1)[0] != token:
        module.fail_json(msg="challenges: key authorization of %s does not start with its token" % item.get("identifier"))
    return token


def webroot_files(module, items, webroot_override):
    files = []
    for item in items:
        token = check(module, item)
        root = webroot_override or item.get("webroot")
        if not root:
            module.fail_json(msg="challenges: %s is an http-01 challenge without a webroot; set webroot"
                             % item.get("identifier"))
        files.append((root, token, item["key_authorization"]))
    return files


WEBROOT_SUBDIRS = (".well-known", "acme-challenge")


class SymlinkRefused(OSError):
    """A directory below the webroot is a symbolic link: following it could write or delete
    files anywhere the module may (a symlinked .well-known pointing at /etc, say)."""


def _challenge_dir(root, create):
    """A descriptor of ROOT/.well-known/acme-challenge, walked one directory at a time with
    O_NOFOLLOW so no link below the webroot is followed; None when it does not exist."""
    if create and not os.path.isdir(root):
        os.makedirs(root, 0o755)  # the webroot itself is the user's setting, links and all
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        return None
    try:
        for part in WEBROOT_SUBDIRS:
            if create:
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                os.close(fd)
                return None
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise SymlinkRefused(error.errno, "%s is a symbolic link or not a directory; refusing to "
                                         "follow it out of the webroot" % os.path.join(root, part)) from None
                raise
            os.close(fd)
            fd = child
            root = os.path.join(root, part)
    except BaseException:
        os.close(fd)
        raise
    return fd


def webroot_file_digest(root, token):
    """SHA-256 of the challenge file, or None when there is none (a link counts as none)."""
    fd = _challenge_dir(root, create=False)
    if fd is None:
        return None
    try:
        handle = os.open(token, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    with os.fdopen(handle, "rb") as data:
        return hashlib.sha256(data.read(4096)).hexdigest()


def place_webroot_file(root, token, content):
    """Write the challenge file with a temporary file and a rename inside the directory the
    walk opened: whatever links appear meanwhile, nothing outside the webroot is touched."""
    fd = _challenge_dir(root, create=True)
    temporary = ".%s.%d.tmp" % (token, os.getpid())
    try:
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=fd)
        with os.fdopen(handle, "wb") as data:
            data.write(content.encode("ascii"))
            os.fchmod(data.fileno(), 0o644)
        os.rename(temporary, token, src_dir_fd=fd, dst_dir_fd=fd)
    finally:
        os.close(fd)


def remove_webroot_file(root, token):
    fd = _challenge_dir(root, create=False)
    if fd is None:
        return
    try:
        os.unlink(token, dir_fd=fd)  # removes a link itself, never what it points to
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            copied(CHALLENGE_OPTIONS),
            alpn_material=dict(type="dict", no_log=True),
            # Controller-side store options (module_defaults for group/certops.acme.store): ignored here.
            **store_options()
        ),
        supports_check_mode=True,
    )
    params = module.params
    present = params["state"] == "present"
    http_items = [c for c in params["challenges"] if c.get("type") == "http-01"]
    alpn_items = [c for c in params["challenges"] if c.get("type") == "tls-alpn-01"]
    changed, touched = False, []

    for root, token, content in webroot_files(module, http_items, params["webroot"]):
        path = os.path.join(root, ".well-known", "acme-challenge", token)
        try:
            if present:
                if webroot_file_digest(root, token) != _sha256(content):
                    changed = True
                    touched.append(path)
                    if not module.check_mode:
                        place_webroot_file(root, token, content)
            elif webroot_file_digest(root, token) is not None:
                changed = True
                touched.append(path)
                if not module.check_mode:
                    remove_webroot_file(root, token)
        except (IOError, OSError) as error:
            module.fail_json(msg="challenges: cannot %s %s: %s" % ("write" if present else "remove", path, error))

    responder = {"running": False}
    directory = params["responder_dir"]
    pidfile = os.path.join(directory, "responder.pid")
    if alpn_items:
        material = params.get("alpn_material") or {}
        for item in alpn_items:
            check(module, item)
            name = str(item["identifier"]).lower()
            if not SNI_NAME.fullmatch(name) or name.startswith("*."):
                module.fail_json(msg="challenges: %r cannot be validated by tls-alpn-01" % name)
            base = os.path.join(directory, name)
            if present:
                if name not in material:
                    module.fail_json(msg="challenges: no tls-alpn-01 certificate for %s in the controller store "
                                         "(was the order prepared with this store_path?)" % name)
                changed = True
                touched.append(base + ".crt")
                if not module.check_mode:
                    _host_files.ensure_directory(directory, 0o700)
                    _host_files.atomic_write(base + ".key", material[name][1].encode("ascii"), 0o600)
                    _host_files.atomic_write(base + ".crt", material[name][0].encode("ascii"), 0o600)
            else:
                for suffix in (".crt", ".key"):
                    if os.path.exists(base + suffix):
                        changed = True
                        touched.append(base + suffix)
                        if not module.check_mode:
                            os.unlink(base + suffix)
        if not module.check_mode:
            responder = manage_responder(module, params, directory, pidfile, present)
    module.exit_json(changed=changed, files=touched, responder=responder)


def _sha256(text):
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def manage_responder(module, params, directory, pidfile, present):
    pid = read_pid(pidfile)
    remaining = [n for n in os.listdir(directory) if n.endswith(".crt")] if os.path.isdir(directory) else []
    if present:
        if pid and pid_alive(pid):
            return {"running": True, "address": params["responder_address"], "port": params["responder_port"]}
        script = os.path.join(directory, "responder.py")
        # The responder's own source, as shipped: a real file that linters and tests see.
        _host_files.atomic_write(script, inspect.getsource(_tls_alpn_responder).encode("utf-8"), 0o600)
        # The shell starts the responder in the background with its output in the log and
        # prints its PID, so run_command returns at once; the responder calls setsid() first
        # thing, which detaches it from this module and from the SSH session.
        rc, out, err = module.run_command(
            ["/bin/sh", "-c", '"$@" </dev/null >>"$CERTOPS_RESPONDER_LOG" 2>&1 & echo $!', "sh",
             sys.executable, script, params["responder_address"], str(params["responder_port"]),
             directory, str(params["responder_ttl"])],
            environ_update={"CERTOPS_RESPONDER_LOG": os.path.join(directory, "responder.log")})
        if rc != 0 or not out.strip().isdigit():
            module.fail_json(msg="could not start the tls-alpn-01 responder: %s" % (err or out).strip())
        _host_files.atomic_write(pidfile, out.strip().encode("ascii"), 0o600)
        if not wait_listening(params["responder_address"], params["responder_port"]):
            module.fail_json(msg="the tls-alpn-01 responder did not start on %s:%s; see %s"
                             % (params["responder_address"], params["responder_port"],
                                os.path.join(directory, "responder.log")))
        return {"running": True, "address": params["responder_address"], "port": params["responder_port"]}
    if not remaining:
        if pid and pid_alive(pid):
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        for leftover in ("responder.pid", "responder.py"):
            try:
                os.unlink(os.path.join(directory, leftover))
            except OSError:
                pass
        return {"running": False}
    return {"running": bool(pid and pid_alive(pid))}


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: install
short_description: Install certificate bundles from the controller store on a host, or inspect what it holds
version_added: 0.1.0
description:
  - Installs a whole list of certificates on the target in one call. For each certificate a
    directory O(dest)/NAME receives C(cert.pem), C(chain.pem), C(fullchain.pem),
    C(privkey.pem) and C(haproxy.pem) (full chain followed by the key, the form HAProxy loads).
  - A changed bundle is written whole into a new version directory
    (O(dest)/.versions/NAME/...) and O(dest)/NAME, a symlink, is switched to it with one atomic
    rename, so a proxy (or a run killed half way) never sees a key beside the certificate of
    another; files are created 0600 and then given their mode, whatever the umask. The
    previous bundle is kept for rollback.
  - Reports C(changed) per certificate, only when content, mode or owner differ.
  - With O(state=inspect) nothing is written; the action plugin reads what the host holds and,
    when the controller store lacks a valid certificate the host has, adopts it into the store
    (so a fresh AWX container does not order again what the hosts already serve).
  - The action plugin runs on the controller and reads the store; the module that runs on the
    target needs only the Python standard library.
author: certops.acme maintainers (@certops)
extends_documentation_fragment:
  - certops.acme.acme.STORE
  - certops.acme.attributes
  - certops.acme.attributes.ACTION_GROUP
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: Shows SHA-256 fingerprints per file, never key material.
  action_group:
    support: full
    membership: [certops.acme.store]
options:
  certificates:
    description:
      - Certificates to install (or inspect), by their name in the store. Each element is a
        name or a mapping with C(name) and, for O(state=inspect), C(domains) (a held
        certificate is adopted only when it covers them).
      - With O(state=inspect), leave it out to inspect every certificate under O(dest).
      - A mapping may also list C(formats), extra files built on the controller and installed in
        the certificate's directory with the bundle. Each has a C(type) - V(pkcs12) (with
        C(passphrase), required, and C(encryption), V(modern) for AES-256-CBC with PBKDF2 and a
        SHA-256 MAC, the default, or V(legacy) for 3DES with SHA-1, for old Java and Windows),
        V(der) (the certificate alone) or V(pem_combined) (the key, then the certificate and its
        chain) - and optionally C(file) (default C(certificate.p12), C(cert.der),
        C(combined.pem)), C(mode) (default C(0600), C(0644) for V(der)), C(owner) and C(group)
        (default O(owner), O(group)). The passphrase is never logged.
      - A PKCS#12 file is encrypted anew each time it is built, so it is compared by what it is
        built from; a host holding every extra file intact is sent nothing, and a renewal, a
        changed passphrase or option rebuilds it.
    type: list
    elements: raw
  dest:
    description: Directory on the target under which each certificate gets its own directory.
    type: path
    default: /etc/certops/acme
  state:
    description:
      - V(present) installs; V(inspect) only reports (and adopts, see O(adopt)).
    type: str
    choices: [present, inspect]
    default: present
  owner:
    description: Owner of the files and directories (by default the connecting user).
    type: str
  group:
    description: Group of the files and directories.
    type: str
  key_mode:
    description: Mode of C(privkey.pem) and C(haproxy.pem). Use C(0640) with O(group) only where a non-root service reads the key.
    type: str
    default: '0600'
  cert_mode:
    description: Mode of the certificate files.
    type: str
    default: '0644'
  dir_mode:
    description: Mode of each certificate's directory.
    type: str
    default: '0700'
  adopt:
    description:
      - With O(state=inspect), copy a valid certificate (and its key) from the host into the
        controller store when the store has none for that name or an older one.
      - The certificate is adopted only when its key matches, it is not self-signed, its chain
        verifies as a TLS server path to a trust anchor (see O(adopt_trust_roots)), it covers
        every name the certificate is wanted for (when O(certificates) gives C(domains)), at
        least O(adopt_min_days) of validity remain, and, when the store already has the
        certificate, it is newer and from the same issuer.
      - Refused bundles are listed in RV(rejected) and as warnings; they are never adopted, so
        never installed on other hosts.
    type: bool
    default: true
  adopt_trust_roots:
    description:
      - PEM files on the controller with CA certificates that adopted certificates may chain
        to, besides the chain tops the store has seen its CA issue through and (with
        O(adopt_system_trust)) the controller's trusted roots. Give the root of a private or
        test CA here.
    type: list
    elements: path
    default: []
  adopt_system_trust:
    description: Accept certificates that chain to the controller's system trust store.
    type: bool
    default: true
  adopt_min_days:
    description: Minimum remaining validity, in days, for a held certificate to be adopted.
    type: int
    default: 1
  remove_unlisted:
    description:
      - With O(state=present), remove every certificate directory under O(dest) that
        O(certificates) does not name and that a task of the same O(scope) installed. Only
        directories holding a C(cert.pem) and a C(privkey.pem) are touched, so other files in
        O(dest) are safe, and so are the certificates other scopes installed.
      - A directory that no task marked (installed before scopes were kept, or by hand) is never
        removed; it is reported in RV(unmarked).
    type: bool
    default: false
  scope:
    description:
      - Which task's certificates these are, where several tasks (plays, roles) install into one
        O(dest). Each certificate directory the task installs or finds in place is marked with it
        (O(dest)/.scopes/NAME); O(remove_unlisted) and the warnings about unlisted certificates
        only concern directories of the same scope, never another task's live keys.
      - Give each play that installs into a shared O(dest) a scope of its own (the roles use their
        own name by default, see C(certops_certificates_install_scope)).
      - Letters, digits and C(._:@/-), at most 128 characters.
    type: str
    default: default
    version_added: 0.2.0
  wanted_by:
    description:
      - The party whose claim a certificate adopted by O(state=inspect) records in the store, as
        M(certops.acme.certificate)'s O(certops.acme.certificate#module:wanted_by) does for the
        certificates it orders. Without it, an adopted certificate keeps the claims of the version it
        replaces.
    type: str
    version_added: 0.2.0
  bundles:
    description: Internal, filled in by the action plugin from the store (public files). Do not set.
    type: list
    elements: dict
  key_material:
    description: Internal, filled in by the action plugin from the store (keys as one JSON document,
      never logged). Do not set.
    type: str
  expected:
    description:
      - Internal, filled in by the action plugin (the store's bundle fingerprint per certificate
        it did not ship). The host checks what it holds against it and asks only for the bundles
        that differ. Do not set.
    type: dict
  inspected:
    description:
      - With O(state=present), the registered result of an O(state=inspect) task of the same run
        for this host (same O(dest), O(owner), O(group) and modes). Bundles the host did not
        hold then are sent at once; when it held every one exactly (content, modes, owner) and
        nothing is to be removed, the host is not contacted again.
      - Without it, the host is asked first which bundles differ (one more call when
        some do).
    type: dict
seealso:
  - module: certops.acme.certificate
"""

EXAMPLES = r"""
- name: Adopt what the proxies already hold (fresh AWX container, empty store)
  certops.acme.install:
    state: inspect
    certificates: [app.example.com, api.example.com]

- name: Install the certificates this host serves
  certops.acme.install:
    certificates: [app.example.com, api.example.com]
    dest: /etc/haproxy/certs
  notify: reload haproxy
"""

RETURN = r"""
certificates:
  description: One entry per certificate, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Certificate name.
      type: str
    changed:
      description: Whether any of its files changed.
      type: bool
    changed_files:
      description: File names written.
      type: list
      elements: str
    path:
      description: The certificate's directory on the target.
      type: str
    serial:
      description: Serial number (hex) of the installed certificate (with O(state=present)).
      type: str
removed:
  description: Certificate directories removed by O(remove_unlisted).
  returned: always
  type: list
  elements: str
unlisted:
  description:
    - Without O(remove_unlisted), certificate directories under O(dest) (with a key) of this
      O(scope) that O(certificates) does not name; the action plugin warns about each, since they
      keep a private key no site uses. With O(state=inspect), the same for the names inspected.
  returned: always
  type: list
  elements: str
unmarked:
  description:
    - Certificate directories under O(dest) (with a key) that O(certificates) does not name and no
      task marked with a scope (installed before scopes were kept, or by hand). Reported with a
      warning; never removed.
  returned: always
  type: list
  elements: str
  version_added: 0.2.0
scoped:
  description:
    - With O(state=present), the certificates whose directory this task marked with its O(scope)
      (a write, so the task reports changed; no certificate changed, nothing to reload).
  returned: always
  type: list
  elements: str
  version_added: 0.2.0
host_calls:
  description:
    - With O(state=present), how many times the target was called (0 when O(inspected) showed
      every bundle held exactly; 2 when the host first had to say which bundles differ).
  returned: with O(state=present)
  type: int
bundles_sent:
  description: With O(state=present), how many bundles were sent to the target (in its last call).
  returned: with O(state=present)
  type: int
changed_certificates:
  description: Names of the certificates whose files changed (handy for handlers).
  returned: always
  type: list
  elements: str
rejected:
  description: With O(state=inspect), held certificates that were not adopted, and why.
  returned: when state is inspect
  type: list
  elements: dict
  contains:
    host:
      description: Inventory host holding it.
      type: str
    name:
      description: Certificate name.
      type: str
    why:
      description: The reason it was refused.
      type: str
held:
  description:
    - With O(state=inspect), what the host holds, without key material.
  returned: when state is inspect
  type: list
  elements: dict
  contains:
    name:
      description: Certificate name.
      type: str
    serial:
      description: Serial number (hex).
      type: str
    not_after:
      description: Expiry, ISO 8601.
      type: str
    domains:
      description: Names in the certificate.
      type: list
      elements: str
    adopted:
      description: Whether it was copied into the controller store by this task.
      type: bool
    fingerprint:
      description:
        - SHA-256 over the digests of the held bundle files (null when one is missing); give
          the whole result to O(inspected) of the install task that follows.
      type: str
    exact:
      description:
        - Whether the host holds the store's bundle with the wanted modes and owner (present
          only for bundles equal to the store's).
      type: bool
    scoped:
      description:
        - Whether its directory is marked with this task's O(scope) (present only for bundles
          equal to the store's).
      type: bool
    problem:
      description: Why it was not adopted, if it was not usable.
      type: str
"""

import base64
import binascii
import hashlib
import json
import os
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certops.acme.plugins.module_utils import _bundle_formats, _host_files, _install_scopes
from ansible_collections.certops.acme.plugins.module_utils._store_options import store_options
from ansible_collections.certops.acme.plugins.module_utils._target_options import INSTALL_OPTIONS, copied

KEY_FILES = _host_files.KEY_FILES
BUNDLE_FILES = _host_files.BUNDLE_FILES
INSPECT_FILES = ("cert.pem", "chain.pem", "privkey.pem")


def _mode(module, value, field):
    try:
        return int(str(value), 8)
    except ValueError:
        module.fail_json(msg="%s: %r is not an octal mode (write it quoted, e.g. '0600')" % (field, value))


def _fingerprint(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _extras(module, name, shipped, uid, gid):
    """The extra files (PKCS#12, DER, combined PEM) the controller built for ``name``, as
    ({file: (bytes, mode)}, {file: (uid, gid)}), with their manifest (_bundle_formats)."""
    wanted, owners, described = {}, {}, {}
    for filename, entry in sorted((shipped or {}).items()):
        try:
            data = base64.b64decode(entry["data"], validate=True)
            file_uid = _host_files.resolve_uid(entry.get("owner")) if entry.get("owner") else uid
            file_gid = _host_files.resolve_gid(entry.get("group")) if entry.get("group") else gid
            mode, source = int(entry["mode"]), str(entry["source"])
        except (KeyError, TypeError, ValueError, binascii.Error) as error:
            module.fail_json(msg="%s: extra file %s: %s" % (name, filename, error))
        if not _bundle_formats.usable_file_name(filename):
            module.fail_json(msg="%s: %r is not a usable extra file name" % (name, filename))
        wanted[filename] = (data, mode)
        owners[filename] = (file_uid, file_gid)
        described[filename] = (data, mode, file_uid, file_gid, source)
    if described:
        wanted[_bundle_formats.MANIFEST] = (_bundle_formats.manifest_bytes(described), 0o600)
    return wanted, owners


def install(module, params):
    dest = params["dest"]
    key_mode, cert_mode, dir_mode, uid, gid = wanted_meta = _wanted_meta(module, params)
    try:
        secrets = json.loads(params.get("key_material") or "{}")
    except ValueError:
        module.fail_json(msg="key_material: not JSON (internal: the action plugin fills it)")
    # Fingerprints first: certificates the action plugin did not ship are checked against the
    # store's fingerprint. If any differs (or its mode or owner does), nothing is done and the
    # action plugin is told which bundles to send (a second call).
    verified, needed = verify_held(dest, params.get("expected") or {}, wanted_meta)
    if needed:
        module.exit_json(changed=False, needed=needed, certificates=[], changed_certificates=[], removed=[],
                         unlisted=[], unmarked=[], scoped=[])
        return
    results = []  # type: list[dict]
    before = []  # type: list[str]
    after = []  # type: list[str]
    for bundle in params.get("bundles") or []:
        name = bundle["name"]
        if not _usable_name(name):
            module.fail_json(msg="bundles: %r is not a usable certificate name" % name)
        cert_dir = os.path.join(dest, name)
        files = dict(bundle.get("files") or {})
        files.update(secrets.get(name) or {})
        extra_wanted, owners = _extras(module, name, files.pop(".extras", None), uid, gid)
        wanted = {}
        # A certificate for a key kept elsewhere (csr_src, key_src) comes without the key files.
        keyless = not any(f in files for f in KEY_FILES)
        for filename in BUNDLE_FILES:
            if filename not in files:
                if keyless and filename in KEY_FILES:
                    continue
                module.fail_json(msg="bundles: %s lacks %s (internal: the action plugin fills these)"
                                 % (name, filename))
            wanted[filename] = (files[filename].encode("ascii"), key_mode if filename in KEY_FILES else cert_mode)
        wanted.update(extra_wanted)
        # Each held file is hashed once: comparing, and the diff's "before", use the same digest.
        held_digest = {f: _host_files.sha256_of_file(os.path.join(cert_dir, f)) for f in wanted}
        content_changed = [f for f, (data, _ignored) in wanted.items() if held_digest[f] != hashlib.sha256(data).hexdigest()]
        meta_changed = [f for f, (_ignored, mode) in wanted.items() if f not in content_changed and
                        _host_files.file_meta_differs(os.path.join(cert_dir, f), mode, *owners.get(f, (uid, gid)))]
        # Key files left from a bundle with a key go with the new version (which has none).
        stale_keys = [f for f in KEY_FILES if f not in wanted and os.path.lexists(os.path.join(cert_dir, f))]
        # So are extra files no longer wanted (the manifest of what is held names them).
        stale_keys += [f for f in sorted(_bundle_formats.read_manifest(cert_dir) or {}) if f not in wanted]
        if _bundle_formats.MANIFEST not in wanted and os.path.lexists(os.path.join(cert_dir, _bundle_formats.MANIFEST)):
            stale_keys.append(_bundle_formats.MANIFEST)
        for filename in content_changed + meta_changed:
            old = held_digest[filename]
            data, mode = wanted[filename]
            before.append("%s/%s: %s" % (name, filename, "sha256:" + old if old else "(absent)"))
            after.append("%s/%s: %s mode %04o" % (name, filename, _fingerprint(data), mode))
        for filename in stale_keys:
            before.append("%s/%s: (present)" % (name, filename))
            after.append("%s/%s: (removed)" % (name, filename))
        content_changed += stale_keys
        if not module.check_mode:
            try:
                if not os.path.isdir(dest):
                    os.makedirs(dest, 0o755)
                if content_changed:
                    _host_files.swap_in_bundle(dest, name, wanted, uid, gid, dir_mode, owners)
                else:
                    for filename in meta_changed:
                        data, mode = wanted[filename]
                        _host_files.atomic_write(os.path.join(cert_dir, filename), data, mode,
                                                 *owners.get(filename, (uid, gid)))
                    if os.path.isdir(cert_dir):
                        _host_files.ensure_directory(os.path.realpath(cert_dir), dir_mode, uid, gid)
            except (IOError, OSError) as error:
                done = [r["name"] for r in results if r["changed"]]
                module.fail_json(
                    msg="cannot install %s under %s: %s; its previous bundle stays in place%s"
                        % (name, dest, error.strerror or error,
                           (" (installed before it: %s)" % ", ".join(done)) if done else ""),
                    certificates=results, changed=bool(done))
        changed_files = content_changed + meta_changed
        results.append({"name": name, "path": cert_dir, "changed": bool(changed_files),
                        "changed_files": changed_files, "serial": bundle.get("serial")})
    results.extend(verified)
    listed = [r["name"] for r in results]
    scope = params["scope"]
    try:
        # Each listed directory is this task's scope's, so that no other task removes it.
        scoped = _install_scopes.mark(dest, listed, scope, dir_mode, uid, gid, module.check_mode) if listed else []
    except (IOError, OSError) as error:
        module.fail_json(msg="cannot mark the certificates under %s as scope %s's: %s"
                             % (dest, scope, error.strerror or error), certificates=results,
                         changed=any(r["changed"] for r in results))
    own, unmarked = _install_scopes.sort_unlisted(dest, unlisted_certificates(dest, listed), scope)
    removed = remove_unlisted(module, dest, own) if params["remove_unlisted"] else []
    changed = [r["name"] for r in results if r["changed"]]
    # A new mark changes no certificate (nothing to reload), but it is a write: changed.
    result = {"changed": bool(changed) or bool(removed) or bool(scoped), "certificates": results,
              "changed_certificates": changed, "removed": removed, "scoped": scoped,
              "unlisted": [] if params["remove_unlisted"] else own, "unmarked": unmarked}
    after.extend("%s: scope %s" % (name, scope) for name in scoped)
    if removed:
        before.extend("%s/ (present)" % name for name in removed)
        after.extend("%s/ (removed)" % name for name in removed)
    if module._diff:
        result["diff"] = {"before": "\n".join(before) + ("\n" if before else ""),
                          "after": "\n".join(after) + ("\n" if after else ""),
                          "before_header": dest, "after_header": dest}
    module.exit_json(**result)


def _usable_name(name):
    """A certificate name that is one directory under dest (no path, no hidden entry)."""
    return isinstance(name, str) and name != "" and "/" not in name and not name.startswith(".")


def held_exactly(cert_dir, fingerprint, wanted_meta):
    """True when ``cert_dir`` holds the bundle with this fingerprint, each file and the directory
    with the wanted mode and owner (``wanted_meta``: key_mode, cert_mode, dir_mode, uid, gid)."""
    return (fingerprint is not None and _bundle_formats.held_fingerprint(cert_dir) == fingerprint
            and meta_as_wanted(cert_dir, wanted_meta))


def meta_as_wanted(cert_dir, wanted_meta):
    """True when each bundle file and the directory have the wanted mode and owner."""
    return _host_files.meta_as_wanted(cert_dir, *wanted_meta)


def verify_held(dest, expected, wanted_meta):
    """Split ``expected`` ({name: store fingerprint}) into the certificates the host holds exactly
    so (content, modes and owner), as unchanged results, and the names whose bundle must be sent."""
    verified, needed = [], []
    for name in sorted(expected):
        cert_dir = os.path.join(dest, name)
        if _usable_name(name) and held_exactly(cert_dir, expected[name], wanted_meta):
            verified.append({"name": name, "path": cert_dir, "changed": False, "changed_files": [], "serial": None})
        else:
            needed.append(name)
    return verified, needed


def unlisted_certificates(dest, keep):
    """Certificate directories under ``dest`` (holding a cert.pem and a privkey.pem) that
    ``keep`` does not name: keys of certificates no site uses any more."""
    try:
        entries = sorted(os.listdir(dest))
    except OSError:
        return []
    found = []
    for name in entries:
        path = os.path.join(dest, name)
        if name in keep or name.startswith(".") or not os.path.isdir(path):
            continue
        if os.path.isfile(os.path.join(path, "cert.pem")) and os.path.isfile(os.path.join(path, "privkey.pem")):
            found.append(name)
    return found


def remove_unlisted(module, dest, names):
    """Remove the certificate directories ``names`` (this scope's, no longer listed)."""
    removed = []
    for name in names:
        path = os.path.join(dest, name)
        removed.append(name)
        if not module.check_mode:
            if os.path.islink(path):
                os.unlink(path)
            else:
                shutil.rmtree(path)
            shutil.rmtree(os.path.join(dest, ".versions", name), ignore_errors=True)
            _install_scopes.forget(dest, name)
    return removed


def inspect(module, params):
    dest = params["dest"]
    names = params.get("certificates")
    if names is None:
        try:
            names = sorted(n for n in os.listdir(dest)
                           if not n.startswith(".") and os.path.isdir(os.path.join(dest, n)))
        except OSError:
            names = []
    expected = params.get("expected") or {}
    wanted_meta = _wanted_meta(module, params)
    held = []
    for name in names:
        cert_dir = os.path.join(dest, str(name))
        fingerprint = _bundle_formats.held_fingerprint(cert_dir)
        if fingerprint is not None and fingerprint == expected.get(name):
            # The store's very bundle: its facts are the store's, nothing to send or adopt.
            # "exact": modes and owner are as wanted too, so installing it would change nothing.
            held.append({"name": name, "path": cert_dir, "fingerprint": fingerprint,
                         "exact": meta_as_wanted(cert_dir, wanted_meta),
                         "scoped": _install_scopes.scope_of(dest, name) == params["scope"]})
            continue
        files = {}
        for filename in INSPECT_FILES:
            try:
                with open(os.path.join(cert_dir, filename), "rb") as handle:
                    files[filename] = handle.read(1024 * 1024).decode("ascii", "replace")
            except (IOError, OSError):
                pass
        if "cert.pem" in files and "privkey.pem" in files:
            held.append({"name": name, "path": cert_dir, "files": files, "fingerprint": fingerprint})
    # The action plugin parses these on the controller and strips key material before any
    # result is shown; the module itself only reads.
    listed = params.get("certificates")
    own, unmarked = _install_scopes.sort_unlisted(
        dest, unlisted_certificates(dest, listed) if listed is not None else [], params["scope"])
    module.exit_json(changed=False, held=held, certificates=[], changed_certificates=[], removed=[],
                     unlisted=own, unmarked=unmarked)


def _wanted_meta(module, params):
    """(key_mode, cert_mode, dir_mode, uid, gid) from the options, failing on bad ones."""
    try:
        uid = _host_files.resolve_uid(params.get("owner"))
        gid = _host_files.resolve_gid(params.get("group"))
    except ValueError as error:
        module.fail_json(msg=str(error))
    return (_mode(module, params["key_mode"], "key_mode"), _mode(module, params["cert_mode"], "cert_mode"),
            _mode(module, params["dir_mode"], "dir_mode"), uid, gid)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            copied(INSTALL_OPTIONS),
            # Controller-side store options (module_defaults for group/certops.acme.store): ignored here.
            **store_options(),
            bundles=dict(type="list", elements="dict"),
            expected=dict(type="dict"),
            # One string, not a dict of keys: Ansible masks every no_log value in every string of
            # the result, so 1000 keys cost 1000 replace() calls per result string (6 s for 1000
            # certificates); one value masks the same secrets in one pass.
            key_material=dict(type="str", no_log=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not _install_scopes.usable_scope(params["scope"]):
        module.fail_json(msg="scope: %r is not a scope name; give 1 to 128 characters from letters, digits and "
                             "._:@/- starting with a letter or digit" % (params["scope"],))
    if params["state"] == "inspect":
        inspect(module, params)
    else:
        install(module, params)


if __name__ == "__main__":
    main()

# -*- coding: utf-8 -*-
# Copyright: certops.acme contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt)
"""Pull delivery, on the host: what OpenBao/Vault Agent runs after it rendered this host's bundles.

The agent (configured by the certificates role's pull_delivery.yml) reads this host's
certificates from the shared store with a token that may read nothing else, and renders them
into one JSON file. It then runs ``certops-pull-apply --config apply.json``, which calls main()
here. For each certificate the host serves, the rendered record is checked as anything from
another writer is (the store is shared): sizes, PEM shape, the names the inventory gave, the
validity dates, the chain's first link, the key fitting the leaf, and no step back to a leaf
older than the one held (a store rolled back, or a writer that should not have). Only then is it
installed exactly as the install module installs it (same files, modes, version directories:
_host_files.swap_in_bundle), so the next playbook run finds nothing to do. Renewed certificates
are swapped into HAProxy through its runtime API, else the proxy is reloaded; every listener is
then asked what it serves (_served_probe). The outcome is written to a status file, and the exit
status is non-zero when anything stays wrong, so the agent's log shows it.

Standard library only: this file ships to targets (beside the files it imports).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import _ssl  # the C module behind ssl: its certificate decoder has no public name
import argparse
import fcntl
import json
import os
import re
import shlex
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

from ansible_collections.certops.acme.plugins.module_utils import _host_files
from ansible_collections.certops.acme.plugins.module_utils._haproxy_runtime import RuntimeRefused, swap_certificate
from ansible_collections.certops.acme.plugins.module_utils._served_probe import check_settled

#: Bounds on what is read: the role's configuration, the rendered file, each PEM field.
MAX_CONFIG = 1024 * 1024
MAX_RENDERED = 32 * 1024 * 1024
MAX_FIELD = {"cert": 64 * 1024, "chain": 256 * 1024, "privkey": 64 * 1024}
VERSION = re.compile(r"^[A-Za-z0-9._:+-]{1,128}\Z")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")  # as the store allows (store/__init__.py)
PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----")
#: How far ahead of this host's clock a new leaf's notBefore may be (clocks disagree a little).
CLOCK_SKEW = 300
RELOAD_TIMEOUT = 60


class Refused(Exception):
    """A rendered record that is not installed; the message says why."""


def load_json(path, limit, what):
    """A JSON object from ``path``, at most ``limit`` bytes."""
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError("%s %s is larger than %d bytes" % (what, path, limit))
    value = json.loads(data.decode("utf-8"))
    if not isinstance(value, dict):
        raise ValueError("%s %s is not a JSON object" % (what, path))
    return value


def _scratch_file(scratch, data):
    """A new file (0600, mkstemp's mode) in the private scratch directory holding ``data``."""
    fd, path = tempfile.mkstemp(dir=scratch, suffix=".pem")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def decode_certificate(pem, scratch):
    """The fields Python's ssl module decodes from one PEM certificate (subject, issuer, dates,
    serial, subjectAltName). The standard library has no public parser; this is the one behind
    ssl.SSLSocket.getpeercert(), given a file."""
    path = _scratch_file(scratch, pem.encode("utf-8"))
    try:
        return _ssl._test_decode_cert(path)  # type: ignore[attr-defined]  # pylint: disable=protected-access
    except (ssl.SSLError, ValueError) as error:
        raise Refused("a certificate does not decode (%s)" % error) from None
    finally:
        os.unlink(path)


def _names_of(decoded):
    return set(value.lower() for kind, value in decoded.get("subjectAltName", ()) if kind in ("DNS", "IP Address"))


def checked_files(name, record, domains, held_cert, scratch, now):
    """The bundle files ({file: bytes}) for a rendered ``record``, after every check; Refused
    names the first that fails."""
    if not isinstance(record, dict):
        raise Refused("no record was rendered (missing from the store, or unreadable with this host's token)")
    for field, limit in MAX_FIELD.items():
        value = record.get(field)
        if not isinstance(value, str) or not value.isascii():
            raise Refused("its %s is not ASCII text" % field)
        if len(value) > limit:
            raise Refused("its %s is larger than %d bytes" % (field, limit))
    if not isinstance(record.get("version"), str) or not VERSION.match(record["version"]):
        raise Refused("its version is not a version name")
    cert, chain, key = record["cert"], record["chain"], record["privkey"]
    leaves, links = PEM_CERTIFICATE.findall(cert), PEM_CERTIFICATE.findall(chain)
    if len(leaves) != 1 or "PRIVATE KEY-----" not in key:
        raise Refused("its cert is not one PEM certificate, or its privkey is not a PEM key")
    leaf = decode_certificate(leaves[0] + "\n", scratch)
    missing = [d for d in domains if d.lower() not in _names_of(leaf)]
    if missing:
        raise Refused("its leaf does not cover %s (the inventory's names)" % ", ".join(missing))
    not_before, not_after = ssl.cert_time_to_seconds(leaf["notBefore"]), ssl.cert_time_to_seconds(leaf["notAfter"])
    if not_after <= now:
        raise Refused("its leaf expired (%s)" % leaf["notAfter"])
    if not_before > now + CLOCK_SKEW:
        raise Refused("its leaf is not valid before %s" % leaf["notBefore"])
    if links and decode_certificate(links[0] + "\n", scratch).get("subject") != leaf.get("issuer"):
        raise Refused("its chain does not begin with the leaf's issuer")
    if held_cert:
        held = decode_certificate(held_cert, scratch)
        if ssl.cert_time_to_seconds(held["notBefore"]) > not_before:
            raise Refused("its leaf (serial %s, from %s) is older than the one installed (serial %s, from %s): "
                          "a store rolled back? A playbook run installs it if that is meant"
                          % (leaf.get("serialNumber"), leaf["notBefore"], held.get("serialNumber"), held["notBefore"]))
    files = _host_files.bundle_files(cert.encode("ascii"), chain.encode("ascii"), key.encode("ascii"))
    full_path, key_path = _scratch_file(scratch, files["fullchain.pem"]), _scratch_file(scratch, files["privkey.pem"])
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(full_path, key_path)
    except ssl.SSLError as error:
        raise Refused("its key does not belong to its leaf (%s)" % (error.reason or error)) from None
    finally:
        os.unlink(full_path)
        os.unlink(key_path)
    return files, leaf.get("serialNumber", "").lower()


def _read_text(path, limit):
    try:
        with open(path, "r") as handle:
            return handle.read(limit)
    except (IOError, OSError, UnicodeDecodeError):
        return ""


def install_rendered(config, rendered, scratch, now):
    """Install what differs; ({name: outcome}, [names installed])."""
    dest = config["dest"]
    key_mode, cert_mode, dir_mode = (int(config[k], 8) for k in ("key_mode", "cert_mode", "dir_mode"))
    uid, gid = _host_files.resolve_uid(config.get("owner")), _host_files.resolve_gid(config.get("group"))
    outcomes, installed = {}, []
    for name, wanted in sorted(config["certificates"].items()):
        if not NAME.match(name):
            raise ValueError("certificates: %r is not a certificate name" % name)
        cert_dir = os.path.join(dest, name)
        record = rendered.get(name)
        version = record.get("version") if isinstance(record, dict) else None
        try:
            if os.path.lexists(os.path.join(cert_dir, ".formats.json")):
                raise Refused("its directory holds extra formats, which only a playbook run builds")
            if isinstance(record, dict) and all(isinstance(record.get(f), str) for f in MAX_FIELD):
                quick = _host_files.bundle_files(*(record[f].encode("utf-8") for f in ("cert", "chain", "privkey")))
                if (_host_files.bundle_fingerprint(_host_files.held_digests(cert_dir))
                        == _host_files.fingerprint_of_files(quick)
                        and _host_files.meta_as_wanted(cert_dir, key_mode, cert_mode, dir_mode, uid, gid)):
                    outcomes[name] = {"state": "unchanged", "version": version}
                    continue
            files, serial = checked_files(name, record, wanted.get("domains") or [],
                                          _read_text(os.path.join(cert_dir, "cert.pem"), MAX_FIELD["cert"]),
                                          scratch, now)
        except Refused as error:
            outcomes[name] = {"state": "refused", "version": version, "problem": "%s: %s" % (name, error)}
            continue
        modes = dict((f, (data, key_mode if f in _host_files.KEY_FILES else cert_mode)) for f, data in files.items())
        _host_files.swap_in_bundle(dest, name, modes, uid, gid, dir_mode)
        outcomes[name] = {"state": "installed", "version": version, "serial": serial}
        installed.append(name)
    return outcomes, installed


def run_reload(command_line):
    """'' when the reload command succeeded, else what it said (bounded). The command runs
    without a shell, split as Ansible's command module splits it."""
    command = shlex.split(command_line)
    try:
        # Not AnsibleModule.run_command: the agent runs this, no Ansible module is around.
        done = subprocess.run(  # pylint: disable=ansible-bad-function
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            timeout=RELOAD_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return "reload command %s: %s" % (" ".join(command), error)
    if done.returncode != 0:
        said = done.stdout.decode("utf-8", "replace").strip()[-500:]
        return "reload command %s exited %d: %s" % (" ".join(command), done.returncode, said)
    return ""


def activate(config, names):
    """Bring the renewed ``names`` into the running proxy: HAProxy's runtime API where it knows
    the file, else the reload command. Returns the problems."""
    problems, reload_needed = [], not (config.get("proxy") == "haproxy" and config.get("haproxy_socket"))
    if not reload_needed:
        for name in names:
            try:
                if not swap_certificate(config["haproxy_socket"], os.path.join(config["dest"], name, "haproxy.pem"), 10):
                    reload_needed = True
            except (RuntimeRefused, IOError, OSError):
                reload_needed = True  # the reload below loads the file from disk
    if reload_needed and names and config.get("reload_command"):
        problem = run_reload(config["reload_command"])
        if problem:
            problems.append(problem)
    return problems


def apply(config, now=None):
    """One apply run; the status (also written to config's status file)."""
    now = time.time() if now is None else now
    scratch = tempfile.mkdtemp(prefix=".apply-", dir=os.path.dirname(os.path.abspath(config["status"])))
    try:
        try:
            rendered = load_json(config["rendered"], MAX_RENDERED, "rendered file")
        except (IOError, OSError, ValueError) as error:
            rendered, problems = {}, ["the rendered file is unusable: %s" % error]
        else:
            problems = []
        outcomes, installed = install_rendered(config, rendered.get("certificates") or {}, scratch, now)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    problems += [o["problem"] for o in outcomes.values() if o.get("problem")]
    problems += activate(config, installed)
    checks = config.get("checks") or []
    served = check_settled(checks, config["dest"], 5, config.get("settle", 10) if installed else 0) if checks else []
    if any(r["state"] != "match" for r in served) and not installed and config.get("reload_command"):
        # A listener that missed an earlier change (a failed reload): heal it once, as the play would.
        problem = run_reload(config["reload_command"])
        served = check_settled(checks, config["dest"], 5, config.get("settle", 10))
        if problem:
            problems.append(problem)
    problems += ["%s (SNI %s at %s:%s) serves serial %s, but serial %s is installed"
                 % (r["certificate"], r["server_name"], r["address"], r["port"], r["served_serial"] or "(none)",
                    r["installed_serial"]) for r in served if r["state"] != "match"]
    status = {"applied_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), "certificates": outcomes,
              "installed": installed, "served": served, "problems": problems}
    _host_files.atomic_write(config["status"], json.dumps(status, indent=1, sort_keys=True).encode("ascii"), 0o644)
    return status


def main(argv=None):
    parser = argparse.ArgumentParser(prog="certops-pull-apply", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--config", required=True, help="the apply configuration the certificates role wrote")
    args = parser.parse_args(argv)
    try:
        config = load_json(args.config, MAX_CONFIG, "configuration")
        with open(config["status"] + ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one apply at a time (an agent restart may overlap one)
            status = apply(config)
    except (IOError, OSError, ValueError, KeyError, TypeError) as error:
        sys.stderr.write("certops-pull-apply: %s\n" % error)
        return 2
    for name, outcome in sorted(status["certificates"].items()):
        if outcome["state"] != "unchanged":
            sys.stderr.write("certops-pull-apply: %s %s (version %s)\n" % (name, outcome["state"], outcome["version"]))
    for problem in status["problems"]:
        sys.stderr.write("certops-pull-apply: %s\n" % problem)
    return 1 if status["problems"] else 0

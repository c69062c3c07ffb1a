# -*- coding: utf-8 -*-
"""Action plugin behind certops.acme.install: ships bundles from the controller store to the
target module, and turns what a host holds into store adoptions (``state: inspect``)."""

from __future__ import annotations

import datetime
import json
from typing import Any, Optional

from ansible.utils.display import Display

from ansible_collections.certops.acme.plugins.module_utils._acme import options
from ansible_collections.certops.acme.plugins.module_utils._acme.adoption import AdoptionPolicy, adopt_held
from ansible_collections.certops.acme.plugins.module_utils._acme.claims import check_party
from ansible_collections.certops.acme.plugins.module_utils._acme.crypto import load_pem_bundle, system_trust
from ansible_collections.certops.acme.plugins.module_utils._acme import formats as extra_formats
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import InputError
from ansible_collections.certops.acme.plugins.module_utils._acme.names import normalize_names
from ansible_collections.certops.acme.plugins.module_utils._acme.store import check_certificate_name
from ansible_collections.certops.acme.plugins.module_utils._host_files import KEY_FILES, fingerprint_of_files
from ansible_collections.certops.acme.plugins.module_utils._target_options import DEFAULT_DEST, INSTALL_OPTIONS
from ansible_collections.certops.acme.plugins.plugin_utils._action_base import CertopsAction

display = Display()
MODULE = "certops.acme.install"

PASSED_THROUGH = ("dest", "owner", "group", "key_mode", "cert_mode", "dir_mode", "scope")


def _inspected_fingerprints(raw: Any) -> Optional[dict[str, Optional[str]]]:
    """{name: fingerprint, or None unless held exactly} from an inspect task's result, or None
    when none was given."""
    if raw is None or (isinstance(raw, dict) and raw.get("skipped")):
        return None
    held = raw.get("held") if isinstance(raw, dict) else None
    if not isinstance(held, list):
        raise InputError("inspected", "has no 'held' list",
                         "give the registered result of an install task with state=inspect for the same host")
    found: dict[str, Optional[str]] = {}
    for index, item in enumerate(held):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InputError(f"inspected.held[{index}]", "has no name",
                             "give the registered result of an install task with state=inspect")
        fingerprint = item.get("fingerprint")
        found[item["name"]] = fingerprint if isinstance(fingerprint, str) and item.get("exact") is True else None
    return found


def _all_scoped(inspected: Any, names: list[str]) -> bool:
    """Whether the inspect result found each of ``names`` marked with this task's scope."""
    held = inspected.get("held") if isinstance(inspected, dict) else None
    scoped = {item.get("name") for item in held or [] if isinstance(item, dict) and item.get("scoped") is True}
    return all(name in scoped for name in names)


def _names(raw: Any) -> list[str]:
    names = []
    for index, item in enumerate(raw or []):
        name = item.get("name") if isinstance(item, dict) else item
        names.append(check_certificate_name(name, f"certificates[{index}]"))
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise InputError("certificates", f"lists {', '.join(dupes)} more than once", "list each once")
    return names


def _formats(raw: Any, owner: Optional[str], group: Optional[str]) -> dict[str, list[extra_formats.ExtraFormat]]:
    """{name: its extra formats} of the certificates given as mappings with ``formats``."""
    found = {}
    for index, item in enumerate(raw or []):
        if isinstance(item, dict) and item.get("formats"):
            found[str(item.get("name"))] = extra_formats.parse_formats(
                item["formats"], f"certificates[{index}].formats", owner, group)
    return found


class ActionModule(CertopsAction):
    ARGUMENT_SPEC = options.merged_spec(options.STORE_SPEC, INSTALL_OPTIONS)

    def task_secrets(self, args: dict[str, Any]) -> set[str]:
        # PKCS#12 passphrases come inside the certificates list, which is not no_log as a whole.
        try:
            return extra_formats.passphrases(_formats(args.get("certificates"), None, None))
        except InputError:
            return {str(item["passphrase"]) for entry in args.get("certificates") or [] if isinstance(entry, dict)
                    for item in entry.get("formats") or [] if isinstance(item, dict)
                    and isinstance(item.get("passphrase"), str)}

    def run_action(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        store = self.open_store(args)
        module_args = {k: args[k] for k in PASSED_THROUGH if args.get(k) is not None}
        if args["state"] == "inspect":
            return self._inspect(args, store, module_args, task_vars)
        if args.get("certificates") is None:
            raise InputError("certificates", "is required with state=present", "list the names to install")
        names = _names(args["certificates"])
        fmts = _formats(args["certificates"], args.get("owner"), args.get("group"))
        found = store.fingerprints(names)
        missing = [name for name in names if found[name] is None]
        stored = {name: print_ for name, print_ in found.items() if print_ is not None}
        # What a host holding each bundle (with its extra files) exactly so reports.
        wanted = {n: extra_formats.expected_fingerprint(p.fingerprint, fmts.get(n, [])) for n, p in stored.items()}
        if missing and not self.check_mode:
            raise InputError("certificates", f"not in the controller store ({store.describe()}): "
                                             f"{', '.join(missing)}",
                             "order them first with certops.acme.certificate, or check store_path")
        present = [name for name in names if name in stored]
        dest = module_args.get("dest") or DEFAULT_DEST
        held = _inspected_fingerprints(args.get("inspected"))
        # Fingerprints first: ship at once what the host did not hold exactly when inspected;
        # the host checks the rest against the store's fingerprints and asks for those that differ.
        ship = [] if held is None else [n for n in present if held.get(n) != wanted[n]]
        if held is not None and not ship and not missing and _all_scoped(args["inspected"], names):
            unlisted = [str(n) for n in (args["inspected"].get("unlisted") or []) if n not in names]
            if not (args["remove_unlisted"] and unlisted):
                # Inspected moments ago in this run: every bundle is the store's, with the wanted
                # modes, owner and scope, and nothing is to be removed. Nothing to send or ask.
                unmarked = [str(n) for n in (args["inspected"].get("unmarked") or []) if n not in names]
                return self._unchanged(names, stored, unlisted, unmarked, dest, task_vars)
        module_args.update(state="present", remove_unlisted=args["remove_unlisted"])
        damaged: dict[str, str] = {}
        for calls in range(1, 4):
            module_args.update(self._bundles(store, ship, damaged, fmts))
            # A damaged record is never shipped, nor asked for: the others are installed.
            present = [n for n in present if n not in damaged]
            ship = [n for n in ship if n not in damaged]
            module_args["expected"] = {n: wanted[n] for n in present if n not in ship}
            result = self.run_target_module(MODULE, module_args, task_vars)
            result.update(host_calls=calls, bundles_sent=len(ship))
            needed = set(result.pop("needed", None) or [])
            if result.get("failed") or not needed:
                break
            ship = [n for n in present if n in needed or n in ship]
        else:
            raise InputError("certificates", "the bundles on the host kept changing while they were installed",
                             "find what else writes under dest, and run again")
        for entry in result.get("certificates") or []:
            if entry.get("serial") is None and entry.get("name") in stored:
                entry["serial"] = stored[entry["name"]].meta.get("serial")
        position = {name: index for index, name in enumerate(names)}
        result["certificates"] = sorted(result.get("certificates") or [],
                                        key=lambda entry: position.get(entry.get("name"), len(position)))
        self._warn_unlisted(result.get("unlisted") or [], result.get("unmarked") or [], dest, task_vars)
        if missing and not result.get("failed"):
            result.update(self._would_install(result, names, missing, dest))
        if damaged and not result.get("failed"):
            result.update(failed=True, damaged=sorted(damaged),
                          msg="not installed, the store's records being damaged (the others were installed): "
                              + "; ".join(damaged[name] for name in sorted(damaged)))
        return result

    def _unchanged(self, names: list[str], stored: dict[str, Any], unlisted: list[str], unmarked: list[str],
                   dest: str, task_vars: dict[str, Any]) -> dict[str, Any]:
        self._warn_unlisted(unlisted, unmarked, dest, task_vars)
        return {"changed": False, "removed": [], "unlisted": unlisted, "unmarked": unmarked, "scoped": [],
                "changed_certificates": [], "host_calls": 0, "bundles_sent": 0,
                "certificates": [{"name": name, "path": f"{dest}/{name}", "changed": False, "changed_files": [],
                                  "serial": stored[name].meta.get("serial")} for name in names]}

    @staticmethod
    def _warn_unlisted(unlisted: list[str], unmarked: list[str], dest: str, task_vars: dict[str, Any]) -> None:
        host = str(task_vars.get("inventory_hostname", "?"))
        # Displayed, not appended to the module's own "warnings": ansible-core 2.20+ keeps
        # those as objects by the time the result gets here.
        for name in unlisted:
            display.warning(f"{host}: {dest}/{name} still holds the key of a certificate this task's scope "
                            "installed and no longer lists; remove it with remove_unlisted: true (the roles' "
                            "*_remove_unlisted)")
        if unmarked:
            # Installed before scopes were kept, or by hand: it may be another play's live key.
            display.warning(f"{host}: {len(unmarked)} certificate director{'y' if len(unmarked) == 1 else 'ies'} "
                            f"under {dest} no task here lists and no install task marked as its own: "
                            f"{', '.join(unmarked[:20])}{', ...' if len(unmarked) > 20 else ''}. The play that "
                            "installs one marks it on its next run; one that no play installs any more is yours "
                            "to delete by hand (remove_unlisted never removes an unmarked directory)")

    @staticmethod
    def _bundles(store: Any, names: list[str], damaged: dict[str, str],
                 fmts: dict[str, list[extra_formats.ExtraFormat]]) -> dict[str, Any]:
        """The module options carrying the bundles of ``names``: public files in ``bundles``,
        keys (and the extra files built from them) in the one no_log string ``key_material``.
        A damaged record is left out, and recorded in ``damaged`` with why."""
        bundles, key_material = [], {}
        readings = store.read_many(names) if names else {}
        for name in names:
            if readings[name].damaged is not None:
                damaged[name] = str(readings[name].damaged)
                continue
            current = readings[name].stored
            if current is None:
                raise InputError("certificates", f"{name} left the controller store ({store.describe()}) during "
                                                 "this task", "run again")
            raw = current.files()
            files = {k: v.decode("ascii") for k, v in raw.items()}
            # Keys travel in their own no_log option so Ansible masks them (and only them).
            key_material[name] = {k: files.pop(k) for k in KEY_FILES if k in files}
            if fmts.get(name):
                key_material[name][".extras"] = extra_formats.shipped(
                    name, fmts[name], current.key_pem, current.cert_pem, current.chain_pem, fingerprint_of_files(raw))
            bundles.append({"name": name, "serial": current.facts.serial, "files": files})
        return {"bundles": bundles, "key_material": json.dumps(key_material)}

    def _would_install(self, result: dict[str, Any], names: list[str], missing: list[str],
                       dest: str) -> dict[str, Any]:
        """Check mode before the first order: what the certificate task would issue is not in the
        store yet, so it cannot be compared; it would be installed."""
        entries = {c["name"]: c for c in result.get("certificates") or []}
        for name in missing:
            entries[name] = {"name": name, "path": f"{dest}/{name}", "changed": True, "changed_files": [],
                             "serial": None, "note": "would install (new certificate)"}
        order = [n for n in names if n in entries]
        changed = [n for n in order if entries[n]["changed"]]
        update: dict[str, Any] = {"certificates": [entries[n] for n in order], "changed_certificates": changed,
                                  "changed": True}
        if self._play_context.diff:
            diff = dict(result.get("diff") or {"before": "", "after": "", "before_header": dest, "after_header": dest})
            diff["before"] += "".join(f"{name}/ (absent)\n" for name in missing)
            diff["after"] += "".join(f"{name}/ would install (new certificate)\n" for name in missing)
            update["diff"] = diff
        return update

    def _inspect(self, args: dict[str, Any], store: Any, module_args: dict[str, Any],
                 task_vars: dict[str, Any]) -> dict[str, Any]:
        module_args["state"] = "inspect"
        stored: dict[str, Any] = {}
        if args.get("certificates") is not None:
            module_args["certificates"] = _names(args["certificates"])
            # The host sends the files only of bundles that differ from the store's.
            stored = {n: p for n, p in store.fingerprints(module_args["certificates"]).items() if p is not None}
            fmts = _formats(args["certificates"], args.get("owner"), args.get("group"))
            module_args["expected"] = {name: extra_formats.expected_fingerprint(found.fingerprint, fmts.get(name, []))
                                       for name, found in stored.items()}
        result = self.run_target_module(MODULE, module_args, task_vars)
        if result.get("failed"):
            result.pop("held", None)
            return result
        host = str(task_vars.get("inventory_hostname", "?"))
        reported = result.pop("held", []) or []
        to_judge = [item for item in reported if "files" in item]
        policy = self._policy(args, store, {str(item.get("name")) for item in to_judge})
        party = check_party(args["wanted_by"]) if args.get("wanted_by") is not None else None
        judged = iter(adopt_held(store, to_judge, host, policy, adopt=args["adopt"] and not self.check_mode,
                                 party=party))
        held = []
        for item in reported:
            if "files" in item:
                entry = next(judged)
            elif item.get("name") in stored:
                entry = {"name": item["name"], "path": item.get("path"), "adopted": False,
                         **stored[item["name"]].summary()}
            else:  # a fingerprint the store never gave: not from this module
                continue
            entry["fingerprint"] = item.get("fingerprint")
            entry["exact"] = item.get("exact") is True
            entry["scoped"] = item.get("scoped") is True
            held.append(entry)
        adopted = [h["name"] for h in held if h.get("adopted")]
        rejected = [h for h in held if h.get("problem")]
        out: dict[str, Any] = {"changed": False, "held": held, "adopted": adopted,
                               "rejected": [{"host": host, "name": h["name"], "why": h["problem"]} for h in rejected],
                               "certificates": [], "changed_certificates": [], "removed": [],
                               "unlisted": result.get("unlisted") or [], "unmarked": result.get("unmarked") or []}
        if rejected:
            out["warnings"] = [f"{host}: {h['name']}: not adopted, {h['problem']}" for h in rejected]
        return out

    @staticmethod
    def _policy(args: dict[str, Any], store: Any, judged: set[str]) -> AdoptionPolicy:
        """Trust anchors (configured ones read now, so a bad path is an error on every run; the
        store's and the system's only if something is to be verified) and the names each
        certificate in ``judged`` is wanted for (IDNA takes time: an idempotent run of hundreds
        of certificates judges none)."""
        anchors = []
        for index, path in enumerate(args["adopt_trust_roots"]):
            try:
                roots = load_pem_bundle(path)
            except OSError as error:
                raise InputError(f"adopt_trust_roots[{index}]", f"cannot read {path}: {error.strerror}",
                                 "give the path of a PEM file on the controller") from None
            if not roots:
                raise InputError(f"adopt_trust_roots[{index}]", f"{path} holds no PEM certificate",
                                 "give a PEM file of CA certificates")
            anchors.extend(roots)

        def more_anchors() -> list[Any]:
            return [*store.anchors(), *(system_trust() if args["adopt_system_trust"] else ())]
        wanted = {}
        for index, item in enumerate(args.get("certificates") or []):
            if isinstance(item, dict) and item.get("domains") and item.get("name") in judged:
                wanted[item["name"]] = normalize_names(item["domains"], f"certificates[{index}].domains")
        return AdoptionPolicy(anchors=anchors, min_remaining=datetime.timedelta(days=args["adopt_min_days"]),
                              wanted=wanted, more_anchors=more_anchors)

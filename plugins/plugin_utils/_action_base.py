# -*- coding: utf-8 -*-
"""Shared glue for certops.acme action plugins: argument validation and error translation."""

from __future__ import annotations

from typing import Any, Optional

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.certops.acme.plugins.module_utils._acme.dependencies import require_controller_libraries
from ansible_collections.certops.acme.plugins.module_utils._acme import masking, options
from ansible_collections.certops.acme.plugins.module_utils._acme.errors import CertopsError
from ansible_collections.certops.acme.plugins.module_utils._acme.store import CertificateStore

#: Argument-spec keys that Ansible's validator understands besides the spec itself.
_VALIDATOR_KEYS = ("mutually_exclusive", "required_one_of", "required_if", "required_together")


class CertopsAction(ActionBase):
    """Subclasses set ``ARGUMENT_SPEC`` and implement ``run_action(args, task_vars)``."""

    ARGUMENT_SPEC: dict[str, dict[str, Any]] = {}
    VALIDATION: dict[str, Any] = {}
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp: Optional[str] = None, task_vars: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp
        self._stores: list[CertificateStore] = []
        args: dict[str, Any] = dict(self._task.args)
        try:
            require_controller_libraries()
            _ignored, args = self.validate_argument_spec(
                argument_spec=self.ARGUMENT_SPEC,
                **{k: v for k, v in self.VALIDATION.items() if k in _VALIDATOR_KEYS})
            args = options.apply_environment(args)
            result.update(self.run_action(args, task_vars or {}))
        except CertopsError as error:
            result.update(failed=True, msg=str(error))
        except AnsibleActionFail as error:
            result.update(failed=True, msg=str(error))
        finally:
            for store in self._stores:
                store.close()
        # Whatever route a secret came by (option, environment, URL) and wherever a library
        # echoed it, it leaves this task masked.
        return masking.masked(result, masking.secret_values(args, self.ARGUMENT_SPEC) | {
            secret for secret in self.task_secrets(args) if isinstance(secret, str) and len(secret) >= masking.MIN_SECRET})

    def open_store(self, args: dict[str, Any], write: bool = False) -> CertificateStore:
        """The store the task names (read only in check mode unless ``write``), closed when the
        action ends (a shared store's connections and lock renewals)."""
        store = options.build_store(args, self.check_mode and not write)
        self._stores.append(store)
        return store

    def run_action(self, args: dict[str, Any], task_vars: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def task_secrets(self, args: dict[str, Any]) -> set[str]:
        """Secrets an action's options carry where no ``no_log`` spec reaches (masked too)."""
        del args
        return set()

    def run_target_module(self, name: str, module_args: dict[str, Any],
                          task_vars: dict[str, Any]) -> dict[str, Any]:
        """Run the target-side module; drop its ``invocation`` (the arguments, which carry
        bundles and, masked, keys) so only the module's own results are returned."""
        result = self._execute_module(module_name=name, module_args=module_args, task_vars=task_vars)
        result.pop("invocation", None)
        return result

    @property
    def check_mode(self) -> bool:
        return bool(self._task.check_mode)

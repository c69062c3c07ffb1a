"""Python dns-01 providers used by the tests through certops.acme's provider interface
(``dns_provider: tests.harness.dns_providers:ClassName``)."""

from __future__ import annotations

from ansible_collections.certops.acme.plugins.module_utils._acme.challenges.dns01 import Rfc2136Provider


class CorruptingRfc2136(Rfc2136Provider):
    """Publishes a wrong TXT value (so the CA's validation really fails) and removes exactly
    that value again: proves cleanup after a failed validation."""

    def add_txt(self, record_name: str, value: str) -> None:
        super().add_txt(record_name, "wrong-" + value)

    def delete_txt(self, record_name: str, value: str) -> None:
        super().delete_txt(record_name, "wrong-" + value)

    def authoritative_servers(self, record_name: str) -> list[tuple[str, int]]:
        # No propagation wait (it would wait for the right value forever): let the CA look.
        del record_name
        return []

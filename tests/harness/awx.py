"""AWX's side of a job: the environment a credential type's injectors give it, rendered as AWX
renders them (Jinja2 in a sandbox), from the credential types the collection ships."""

from __future__ import annotations

from pathlib import Path

import jinja2.sandbox
import yaml

from tests.harness.ansible import REPO

CREDENTIAL_TYPES = REPO / "docs" / "awx" / "credential-types"


def injected_environment(credential_type: str, inputs: dict[str, str], files_dir: Path | None = None,
                         files_seen_at: Path | None = None) -> dict[str, str]:
    """The environment AWX gives a job for one credential of this type (file injectors are
    written into ``files_dir`` and named by ``tower.filename.ID``, as AWX does; a job in a
    container sees ``files_dir`` at ``files_seen_at``)."""
    definition = yaml.safe_load((CREDENTIAL_TYPES / credential_type).read_text())
    fields = {f["id"]: f for f in definition["inputs"]["fields"]}
    assert set(definition["inputs"].get("required", [])) <= set(inputs), "test gives every required input"
    values: dict[str, object] = {name: inputs.get(name, field.get("default", "")) for name, field in fields.items()}
    environment = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    filenames = {}
    for key, template in (definition["injectors"].get("file") or {}).items():
        assert files_dir is not None, f"{credential_type} injects files: give files_dir"
        path = files_dir / f"awx-{key.split('.', 1)[1]}"
        path.write_text(environment.from_string(template).render(**values))
        filenames[key.split(".", 1)[1]] = str((files_seen_at or files_dir) / path.name)
    values["tower"] = {"filename": filenames}
    return {name: environment.from_string(template).render(**values)
            for name, template in definition["injectors"]["env"].items()}

"""The base every kubetune model shares: unknown fields rejected, fields self-documenting.

Attribute names are the wire names (camelCase, as Kubernetes APIs spell them), so a
validation error's path is exactly what the user wrote in YAML.

Field docstrings become schema descriptions (`use_attribute_docstrings`), so the CRD that is
generated from these models documents every field for `kubectl explain`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from kubetune_api.k8s_syntax import ConfigMapKey, DNSSubdomain


class Model(BaseModel):
    """Base for spec and config models."""

    model_config = ConfigDict(
        extra="forbid",
        use_attribute_docstrings=True,
        validate_default=True,
    )

    def to_wire(self) -> dict[str, object]:
        """The form that goes into YAML, without unset optional fields."""
        return self.model_dump(mode="json", exclude_none=True)


class SecretKeyRef(Model):
    """A key of a Secret in the job's namespace. Secrets only ever travel by reference."""

    name: DNSSubdomain
    """Name of the Secret."""
    key: ConfigMapKey
    """Key inside the Secret."""

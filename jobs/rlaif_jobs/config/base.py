"""The pydantic base every config and API model shares: camelCase on the wire, unknown fields rejected.

Both the workloads' config files and the Kubernetes resources use this base, so one manifest field has
one spelling everywhere (``learningRate`` in YAML, ``learning_rate`` in Python).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    """Base model: camelCase aliases, population by either name, unknown fields are errors.

    Unknown fields are errors (not silently dropped) because a typo such as ``learningrate`` must
    not train with the default learning rate without a word.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_default=True,
    )

    def to_wire(self) -> dict:
        """Returns the model as a JSON-ready dict with camelCase keys, leaving out unset optionals."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def field_path(loc: tuple, root: str = "") -> str:
    """Joins a pydantic error location into a dotted path: ('spec', 'nodes', 0) -> 'spec.nodes[0]'."""
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("function-after", "function-before", "function-wrap") or str(part).startswith(
            ("function-", "tagged-union[")
        ):
            continue
        else:
            path = f"{path}.{part}" if path else str(part)
    return path or "(document)"


def describe_errors(err: ValidationError, root: str = "") -> list[str]:
    """Turns a pydantic ValidationError into one line per problem, each naming its field path.

    Input: the error and an optional path prefix (e.g. ``spec``). Output: lines such as
    ``spec.training.learningRate: Input should be greater than 0``.
    """
    lines = []
    for e in err.errors():
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field (check its spelling against the API reference)"
        elif e["type"] == "missing":
            msg = "required field is missing"
        msg = msg.removeprefix("Value error, ")
        where = field_path(tuple(e["loc"]), root)
        if where == "(document)" and msg.startswith(("spec.", "metadata.", "kind", "apiVersion")):
            lines.append(msg)  # the validator already named the field
        else:
            lines.append(f"{where}: {msg}")
    return lines

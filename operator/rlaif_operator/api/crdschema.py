"""Validates an object against a CRD's structural schema the way the API server does.

It checks types, enums, bounds, lengths, patterns, required fields, unknown fields (as
``kubectl apply`` with strict field validation rejects them) and the CEL rules in
``x-kubernetes-validations``, including transition rules that compare ``self`` with ``oldSelf``.
Messages follow the API server's shape: ``spec.training.learningRate: Invalid value: 0: ...``.

Used by ``rlaif validate``, by the test API server, and by the tests of examples/ and crds/.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

_MISSING = object()
_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
}


@lru_cache(maxsize=512)
def _cel_program(rule: str) -> Any:
    import celpy  # imported lazily: only CEL rules need it

    env = celpy.Environment()
    return env.program(env.compile(rule), functions={"_==_": _cel_eq, "_!=_": _cel_ne})


def _cel_equal(a: Any, b: Any) -> bool:
    """CEL's heterogeneous equality, as the API server's cel-go evaluates it: numbers compare by value
    across int, uint and double (``1 == 1.0``), values of different types are unequal (never an error),
    lists and maps compare element by element. cel-python raises "no such overload" on int == double."""
    from celpy import celtypes

    numbers = (celtypes.IntType, celtypes.UintType, celtypes.DoubleType)
    if isinstance(a, celtypes.BoolType) or isinstance(b, celtypes.BoolType):  # BoolType is an int in Python
        return isinstance(a, celtypes.BoolType) and isinstance(b, celtypes.BoolType) and bool(a) == bool(b)
    if isinstance(a, numbers) and isinstance(b, numbers):
        return (float(a) if isinstance(a, celtypes.DoubleType) else int(a)) == (
            float(b) if isinstance(b, celtypes.DoubleType) else int(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_cel_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_cel_equal(a[k], b[k]) for k in a)
    if a is None or b is None:
        return a is None and b is None
    if not (isinstance(a, type(b)) or isinstance(b, type(a))):
        return False
    return bool(a == b)


def _cel_eq(a: Any, b: Any) -> Any:
    from celpy import celtypes

    if isinstance(a, Exception) or isinstance(b, Exception):
        return a if isinstance(a, Exception) else b  # an error operand stays an error
    return celtypes.BoolType(_cel_equal(a, b))


def _cel_ne(a: Any, b: Any) -> Any:
    from celpy import celtypes

    result = _cel_eq(a, b)
    return result if isinstance(result, Exception) else celtypes.BoolType(not result)


def _to_cel(schema: dict[str, Any] | None, value: Any) -> Any:
    """The CEL value the API server builds for ``value``: typed by the schema, so a ``type: number``
    field is a double even when written as ``3`` and an integral ``3.0`` in a ``type: integer`` field is
    an int; untyped parts (preserve-unknown-fields) convert as JSON does."""
    import celpy
    from celpy import celtypes

    kind = (schema or {}).get("type")
    if value is None or isinstance(value, bool) or not schema:
        return celpy.json_to_cel(value)
    if kind == "number" and isinstance(value, (int, float)):
        return celtypes.DoubleType(value)
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return celtypes.IntType(int(value))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return celtypes.MapType({celtypes.StringType(k): _to_cel(props.get(k, extra if isinstance(extra, dict)
                                                                          else None), v)
                                 for k, v in value.items()})
    if isinstance(value, list):
        return celtypes.ListType([_to_cel(schema.get("items"), v) for v in value])
    return celpy.json_to_cel(value)


def _failed_rules(schema: dict[str, Any], rules: list[dict[str, str]], value: Any, old: Any) -> list[dict[str, str]]:
    """The rules that do not hold; ``self`` (and ``oldSelf``) are converted to CEL once per node."""
    activation = {"self": _to_cel(schema, value)}
    failed = []
    for rule in rules:
        if "oldSelf" in rule["rule"]:
            if old is _MISSING:
                continue  # transition rules only apply to updates
            if "oldSelf" not in activation:
                activation["oldSelf"] = _to_cel(schema, old)
        result = _cel_program(rule["rule"]).evaluate(activation)
        if isinstance(result, Exception) or not bool(result):
            failed.append(rule)
    return failed


def _type_ok(expected: str, value: Any) -> bool:
    if expected == "integer":  # go-openapi accepts a JSON number with an integral value (3.0)
        return (isinstance(value, int) or (isinstance(value, float) and value.is_integer())) and not isinstance(
            value, bool)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[expected])


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def validate(schema: dict[str, Any], value: Any, path: str = "", old: Any = _MISSING) -> list[str]:
    """Returns the API server's complaints about ``value`` (empty when valid).

    Inputs: a structural schema node, the value, its dotted path, and the old value for updates.
    """
    errors: list[str] = []
    where = path or "<root>"
    expected = schema.get("type")
    if value is None:
        if schema.get("nullable"):
            return errors
        return [f"{where}: Invalid value: \"null\": {where} in body must be of type {expected}"]
    if expected and not _type_ok(expected, value):
        return [f"{where}: Invalid value: {_show(value)}: {where} in body must be of type {expected}"]

    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(_show(v) for v in schema["enum"])
        errors.append(f"{where}: Unsupported value: {_show(value)}: supported values: {allowed}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema:
            low, excl = schema["minimum"], schema.get("exclusiveMinimum", False)
            if value < low or (excl and value == low):
                word = "greater than" if excl else "greater than or equal to"
                errors.append(f"{where}: Invalid value: {value}: {where} in body should be {word} {low}")
        if "maximum" in schema:
            high, excl = schema["maximum"], schema.get("exclusiveMaximum", False)
            if value > high or (excl and value == high):
                word = "less than" if excl else "less than or equal to"
                errors.append(f"{where}: Invalid value: {value}: {where} in body should be {word} {high}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{where}: Invalid value: {_show(value)}: {where} in body should be at least"
                          f" {schema['minLength']} chars long")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: Too long: may not be more than {schema['maxLength']} bytes")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: Invalid value: {_show(value)}: {where} in body should match"
                          f" '{schema['pattern']}'")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{where}: Invalid value: {len(value)}: {where} in body should have at least"
                          f" {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{where}: Too many: {len(value)}: must have at most {schema['maxItems']} items")
        item_schema = schema.get("items")
        if item_schema:
            for i, item in enumerate(value):
                old_item = old[i] if isinstance(old, list) and i < len(old) else _MISSING
                errors += validate(item_schema, item, f"{path}[{i}]", old_item)
    if isinstance(value, dict):
        errors += _validate_object(schema, value, path, old)

    rules = schema.get("x-kubernetes-validations")
    if rules and not errors:
        for rule in _failed_rules(schema, rules, value, old):
            errors.append(f"{where}: Invalid value: \"object\": {rule.get('message', rule['rule'])}")
    return errors


def _validate_object(schema: dict[str, Any], value: dict, path: str, old: Any) -> list[str]:
    errors = []
    props = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            sub = f"{path}.{name}" if path else name
            errors.append(f"{sub}: Required value")
    extra = schema.get("additionalProperties")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
    for key, item in value.items():
        sub = f"{path}.{key}" if path else key
        old_item = old.get(key, _MISSING) if isinstance(old, dict) else _MISSING
        if key in props:
            errors += validate(props[key], item, sub, old_item)
        elif isinstance(extra, dict):
            errors += validate(extra, item, sub, old_item)
        elif not preserve and not (path == "metadata" or (not path and key in ("apiVersion", "kind", "metadata"))):
            errors.append(f"{sub}: unknown field \"{sub}\"")
    return errors


def crd_schema(crd: dict[str, Any], version: str | None = None) -> dict[str, Any]:
    """The openAPIV3Schema of a CRD manifest's served version (the storage one by default)."""
    versions = crd["spec"]["versions"]
    chosen = next(v for v in versions if (v["name"] == version if version else v.get("storage")))
    return chosen["schema"]["openAPIV3Schema"]

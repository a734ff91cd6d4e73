"""Partial responses: the ``fields`` selector (``nextPageToken,chromeosdevices(deviceId,serialNumber)``).

The selector is checked against the method's response schema from the discovery document, so a
misspelt field is the same 400 Google answers instead of a silently empty response.
"""

from __future__ import annotations

from typing import Any

from google_emulator.errors import ApiError

Selection = dict[str, "Selection | None"]  # None: the whole value


def _invalid(selector: str) -> ApiError:
    return ApiError(400, f"Invalid field selection {selector}", "invalidParameter", "fields", "parameter")


def parse(selector: str) -> Selection:
    selection, position = _parse_list(selector, 0)
    if position != len(selector):
        raise _invalid(selector)
    return selection


def _parse_list(text: str, position: int) -> tuple[Selection, int]:
    selection: Selection = {}
    while True:
        path: list[str] = []
        name = ""
        while position < len(text) and text[position] not in ",()":
            char = text[position]
            if char == "/":
                if not name:
                    raise _invalid(text)
                path.append(name)
                name = ""
            elif not char.isspace():
                name += char
            position += 1
        if not name:
            raise _invalid(text)
        path.append(name)
        child: Selection | None = None
        if position < len(text) and text[position] == "(":
            child, position = _parse_list(text, position + 1)
            if position >= len(text) or text[position] != ")":
                raise _invalid(text)
            position += 1
        _merge(selection, path, child)
        if position < len(text) and text[position] == ",":
            position += 1
            continue
        return selection, position


def _merge(selection: Selection, path: list[str], leaf: Selection | None) -> None:
    node = selection
    for name in path[:-1]:
        existing = node.get(name, {})
        if existing is None:  # already selected whole
            return
        node[name] = existing
        node = existing
    last = path[-1]
    if last in node and (node[last] is None or leaf is None):
        node[last] = None
    elif last in node and leaf is not None:
        current = node[last]
        assert current is not None
        current.update(leaf)
    else:
        node[last] = leaf


def validate(selection: Selection, schema: dict[str, Any], schemas: dict[str, Any], selector: str) -> None:
    schema = _resolve(schema, schemas)
    if schema.get("type") == "array":
        validate(selection, schema.get("items", {}), schemas, selector)
        return
    properties = schema.get("properties")
    for name, child in selection.items():
        if name == "*":
            continue
        if properties is not None and name not in properties:
            raise _invalid(selector)
        if child is not None:
            sub = (
                properties.get(name, {}) if properties is not None else schema.get("additionalProperties", {})
            )
            validate(child, sub, schemas, selector)


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = schemas[schema["$ref"]]
    return schema


def apply(value: Any, selection: Selection | None) -> Any:
    if selection is None:
        return value
    if isinstance(value, list):
        return [apply(item, selection) for item in value]
    if not isinstance(value, dict):
        return value
    if "*" in selection:
        wildcard = selection["*"]
        return {k: apply(v, selection.get(k, wildcard)) for k, v in value.items()}
    return {k: apply(value[k], child) for k, child in selection.items() if k in value}

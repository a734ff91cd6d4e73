"""Discovery-document schemas as JSON Schema, strict: the emulator's responses are checked against them.

``additionalProperties: false`` everywhere a discovery schema lists its properties, so a field
name Google does not have (or a typo) fails validation; int64 must be a decimal string, as the
JSON mapping of protobuf sends it; enums are closed.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jsonschema import Draft7Validator

from google_emulator import discovery

INT64_FORMATS = {"int64", "uint64"}


def convert(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return {"$ref": f"#/definitions/{schema['$ref']}"}
    kind = schema.get("type")
    if kind == "any" or (kind is None and "properties" not in schema):
        return {}
    if kind == "array":
        return {"type": "array", "items": convert(schema.get("items", {}))}
    if kind == "object" or "properties" in schema:
        result: dict[str, Any] = {"type": "object"}
        if "properties" in schema:
            result["properties"] = {name: convert(sub) for name, sub in schema["properties"].items()}
            result["additionalProperties"] = False
        if "additionalProperties" in schema:
            result["additionalProperties"] = convert(schema["additionalProperties"])
        return result
    if kind == "string":
        result = {"type": "string"}
        if schema.get("format") in INT64_FORMATS:
            result["pattern"] = r"^-?\d+$"
        if "enum" in schema:
            result["enum"] = schema["enum"]
        return result
    if kind == "integer":
        return {"type": "integer"}
    if kind == "number":
        return {"type": "number"}
    if kind == "boolean":
        return {"type": "boolean"}
    raise ValueError(f"unsupported discovery type {kind!r}")


@cache
def json_schema(api: str, schema_name: str) -> dict[str, Any]:
    document = discovery.load_document(api)
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {name: convert(body) for name, body in document["schemas"].items()},
        "$ref": f"#/definitions/{schema_name}",
    }


@cache
def validator(api: str, schema_name: str) -> Draft7Validator:
    return Draft7Validator(json_schema(api, schema_name))


def response_errors(method_id: str, body: Any) -> list[str]:
    """Every way ``body`` departs from the method's response schema (empty: it conforms)."""
    spec = discovery.method(method_id)
    if spec.response_schema is None:
        return (
            [] if body in (None, b"", "") else [f"{method_id} has no response schema but returned {body!r}"]
        )
    found = validator(spec.api, spec.response_schema).iter_errors(body)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found]

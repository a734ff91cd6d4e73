"""The discovery documents shipped with google-api-python-client are the emulator's contract.

Routes, parameter types, enum values, bounds and the scopes each method needs are all read from
them, so the emulator accepts exactly what the real client sends and nothing it would not.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import googleapiclient

from google_emulator.errors import ApiError, invalid

DOCUMENTS_DIR = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"
DOCUMENTS = {"admin": "admin.directory_v1.json", "chromepolicy": "chromepolicy.v1.json"}

# Bounds Google enforces but the discovery document only states in prose
# ("Value should not exceed 300."). Checked server-side like any other bound.
EXTRA_MAXIMUMS = {("directory.chromeosdevices.list", "maxResults"): 300}


@cache
def load_document(api: str) -> dict[str, Any]:
    return json.loads((DOCUMENTS_DIR / DOCUMENTS[api]).read_text())


@dataclass(frozen=True)
class MethodSpec:
    """One REST method as the discovery document describes it."""

    id: str
    api: str
    http_method: str
    path: str
    parameters: dict[str, dict[str, Any]]
    scopes: frozenset[str]
    request_schema: str | None
    response_schema: str | None
    pattern: re.Pattern[str]
    literal_length: int

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else None


def _path_regex(path: str, parameters: dict[str, dict[str, Any]]) -> tuple[re.Pattern[str], int]:
    """Turn a discovery path template (``{x}`` / ``{+x}``) into a regex.

    ``{+x}`` is RFC 6570 reserved expansion: the value may contain slashes. Its ``pattern``
    (e.g. ``^customers/[^/]+$``) is used when the document gives one, so that
    ``v1/{+customer}/policies:resolve`` and ``v1/{+name}`` do not swallow each other.
    """
    regex = ""
    literal_length = 0
    position = 0
    for found in re.finditer(r"\{(\+?)([^}]+)\}", path):
        literal = path[position : found.start()]
        regex += re.escape(literal)
        literal_length += len(literal)
        reserved, name = found.groups()
        if reserved:
            pattern = parameters.get(name, {}).get("pattern", "^.+$")
            regex += f"(?P<{name}>{pattern.lstrip('^').rstrip('$')})"
        else:
            regex += f"(?P<{name}>[^/]+)"
        position = found.end()
    regex += re.escape(path[position:])
    literal_length += len(path) - position
    return re.compile(regex), literal_length


def _walk_methods(api: str, resources: dict[str, Any]) -> list[MethodSpec]:
    specs = []
    for resource in resources.values():
        for method in resource.get("methods", {}).values():
            parameters = method.get("parameters", {})
            pattern, literal_length = _path_regex(method["path"], parameters)
            specs.append(
                MethodSpec(
                    id=method["id"],
                    api=api,
                    http_method=method["httpMethod"],
                    path=method["path"],
                    parameters=parameters,
                    scopes=frozenset(method.get("scopes", [])),
                    request_schema=method.get("request", {}).get("$ref"),
                    response_schema=method.get("response", {}).get("$ref"),
                    pattern=pattern,
                    literal_length=literal_length,
                )
            )
        specs.extend(_walk_methods(api, resource.get("resources", {})))
    return specs


@cache
def all_methods() -> dict[str, MethodSpec]:
    return {
        spec.id: spec for api in DOCUMENTS for spec in _walk_methods(api, load_document(api)["resources"])
    }


def method(method_id: str) -> MethodSpec:
    return all_methods()[method_id]


@cache
def global_parameters(api: str) -> dict[str, dict[str, Any]]:
    return load_document(api)["parameters"]


class Router:
    """Finds the discovery method for an HTTP request, among the methods the emulator serves."""

    def __init__(self, method_ids: list[str]) -> None:
        # Most literal characters first: "chromeos:batchChangeStatus" beats "chromeos/{deviceId}".
        self.specs = sorted((method(m) for m in method_ids), key=lambda s: -s.literal_length)

    def resolve(self, http_method: str, path: str) -> tuple[MethodSpec, dict[str, str]] | None:
        relative = path.lstrip("/")
        for spec in self.specs:
            if spec.http_method != http_method:
                continue
            path_params = spec.match(relative)
            if path_params is not None:
                return spec, path_params
        return None


def _convert(spec: MethodSpec, name: str, schema: dict[str, Any], raw: str) -> Any:
    kind = schema.get("type", "string")
    if kind == "integer":
        try:
            value = int(raw)
        except ValueError:
            raise invalid(f"Invalid value '{raw}'. Values must be an integer.", name) from None
        minimum = int(schema["minimum"]) if "minimum" in schema else None
        maximum = schema.get("maximum") or EXTRA_MAXIMUMS.get((spec.id, name))
        maximum = int(maximum) if maximum is not None else None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            low = minimum if minimum is not None else "-inf"
            high = maximum if maximum is not None else "inf"
            raise invalid(f"Invalid value '{raw}'. Values must be within the range: [{low}, {high}]", name)
        return value
    if kind == "boolean":
        if raw.lower() not in ("true", "false"):
            raise invalid(f"Invalid value '{raw}'. Values must be a boolean.", name)
        return raw.lower() == "true"
    if "enum" in schema and raw not in schema["enum"]:
        raise invalid(f"Invalid value at '{name}', \"{raw}\"", name)
    return raw


def parse_parameters(
    spec: MethodSpec, path_params: dict[str, str], query: dict[str, list[str]]
) -> dict[str, Any]:
    """Validate path and query parameters against the discovery document, as Google does."""
    known_globals = global_parameters(spec.api)
    values: dict[str, Any] = {}
    for name, raw_values in query.items():
        schema = spec.parameters.get(name) or known_globals.get(name)
        if schema is None or schema.get("location") == "path":
            raise ApiError(
                400,
                f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query parameter. '
                f"Field '{name}' could not be found in request message.",
                "invalid",
            )
        if len(raw_values) > 1 and not schema.get("repeated"):
            raise invalid(f"Parameter '{name}' cannot be repeated.", name)
        converted = [_convert(spec, name, schema, raw) for raw in raw_values]
        values[name] = converted if schema.get("repeated") else converted[0]
    for name, raw in path_params.items():
        values[name] = raw
    for name, schema in spec.parameters.items():
        if schema.get("required") and name not in values:
            raise invalid(f"Required parameter: {name}", name)
        if name not in values and "default" in schema and schema.get("type") != "string":
            values[name] = _convert(spec, name, schema, schema["default"])
    return values

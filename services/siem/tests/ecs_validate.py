#!/usr/bin/env python3
"""Validate ECS documents against ECS's own field definitions.

Usage: ecs_validate.py ECS_FLAT_YML [FILE]   (NDJSON; stdin if no FILE)

ECS_FLAT_YML is ECS's generated `ecs_flat.yml` (here v9.4.0). Every leaf
of every document must be an ECS field (or sit inside an ECS `object` /
`flattened` field), its value must fit the field's type (arrays only where
ECS normalizes the field to an array), values must be among the field's
`allowed_values` and match its `pattern`, required fields must be present,
and every `event.type` must be one ECS lists under each `event.category`
of the document (`expected_event_types`).

Exits 1 naming every failing document (line, event.id) and its errors;
exits 1 on empty input too.  Needs: pip install pyyaml
"""

import ipaddress
import re
import sys

from ndjson_check import check_lines
from datetime import datetime

import yaml

STRINGS = {"keyword", "constant_keyword", "wildcard", "match_only_text", "text"}
INTEGERS = {"long", "integer", "short", "byte", "unsigned_long"}
FLOATS = {"float", "double", "scaled_float", "half_float"}
CONTAINERS = {"object", "flattened", "nested"}


def load_fields(path):
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=loader)


def type_error(ftype, value):
    """Why `value` does not fit ECS type `ftype`, or None."""
    if ftype in STRINGS:
        return None if isinstance(value, str) else "expected a string"
    if ftype == "ip":
        try:
            ipaddress.ip_address(value)
            return None
        except (ValueError, TypeError):
            return "expected an IP address"
    if ftype == "date":
        if isinstance(value, int) and not isinstance(value, bool):
            return None
        if isinstance(value, str):
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
                return None
            except ValueError:
                pass
        return "expected an ISO 8601 date or epoch millis"
    if ftype in INTEGERS:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else "expected an integer"
    if ftype in FLOATS:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "expected a number"
    if ftype == "boolean":
        return None if isinstance(value, bool) else "expected a boolean"
    if ftype == "geo_point":
        return None if isinstance(value, (dict, str, list)) else "expected a geo_point"
    return f"unsupported ECS type {ftype}"


class Checker:
    def __init__(self, fields):
        self.fields = fields
        self.required = [n for n, f in fields.items() if f.get("required")]
        self.allowed = {
            n: {v["name"]: v for v in f["allowed_values"]}
            for n, f in fields.items()
            if f.get("allowed_values")
        }

    def errors(self, doc):
        if not isinstance(doc, dict):
            return ["not a JSON object"]
        out = []
        flat = {}
        self.walk("", doc, flat, out)
        for name in self.required:
            if name not in flat:
                out.append(f"{name}: required by ECS, missing")
        for name, value in flat.items():
            field = self.fields[name]
            values = value if isinstance(value, list) else [value]
            if isinstance(value, list) and "array" not in field.get("normalize", []):
                out.append(f"{name}: ECS does not normalize this field to an array")
            for v in values:
                if field["type"] in CONTAINERS:
                    continue
                err = type_error(field["type"], v)
                if err:
                    out.append(f"{name}: {err} ({field['type']}), got {v!r}")
                    continue
                if name in self.allowed and v not in self.allowed[name]:
                    out.append(f"{name}: {v!r} is not an allowed value")
                pattern = field.get("pattern")
                if pattern and isinstance(v, str) and not re.fullmatch(pattern, v):
                    out.append(f"{name}: {v!r} does not match {pattern}")
        categories = flat.get("event.category", [])
        types = flat.get("event.type", [])
        for cat in categories if isinstance(categories, list) else [categories]:
            expected = self.allowed.get("event.category", {}).get(cat, {}).get(
                "expected_event_types", []
            )
            for t in types if isinstance(types, list) else [types]:
                if t not in expected:
                    out.append(
                        f"event.type {t!r} is not expected for event.category {cat!r} "
                        f"(ECS lists {expected})"
                    )
        return out

    def walk(self, prefix, value, flat, out):
        field = self.fields.get(prefix) if prefix else None
        if field is not None:
            if field["type"] in CONTAINERS:
                if field["type"] == "nested":
                    ok = isinstance(value, list) and all(isinstance(v, dict) for v in value)
                else:
                    ok = isinstance(value, dict)
                if not ok:
                    out.append(f"{prefix}: expected {field['type']}")
                self.check_object_leaves(prefix, field, value, out)
                flat[prefix] = value
                return
            if isinstance(value, dict):
                out.append(f"{prefix}: ECS field of type {field['type']} given an object")
                return
            flat[prefix] = value
            return
        if isinstance(value, dict):
            for k, v in value.items():
                self.walk(f"{prefix}.{k}" if prefix else k, v, flat, out)
            return
        out.append(f"{prefix}: not an ECS field")

    @staticmethod
    def check_object_leaves(prefix, field, value, out):
        """`labels` and friends: flat keys with values of `object_type`."""
        object_type = field.get("object_type")
        if not object_type or not isinstance(value, dict):
            return
        for k, v in value.items():
            if isinstance(v, dict):
                out.append(f"{prefix}.{k}: ECS {prefix} must not contain nested objects")
                continue
            err = type_error(object_type, v)
            if err:
                out.append(f"{prefix}.{k}: {err} ({object_type}), got {v!r}")


def describe_ecs(doc):
    event = doc.get("event", {}) if isinstance(doc, dict) else {}
    return f"{event.get('code', '?')} id={event.get('id', '?')}"


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    checker = Checker(load_fields(argv[1]))
    src = open(argv[2], encoding="utf-8") if len(argv) > 2 else sys.stdin
    return check_lines(src, checker.errors, describe_ecs, "documents", "ECS")


if __name__ == "__main__":
    sys.exit(main(sys.argv))

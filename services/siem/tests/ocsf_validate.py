#!/usr/bin/env python3
"""Validate OCSF 1.8.0 records against the real OCSF schema.

Usage: ocsf_validate.py [FILE]    (NDJSON, one record per line; stdin if no FILE)

Each record is checked against the JSON Schema of its class (from
`class_uid`), built by the PyPI package `ocsf-json-schema` with the
profiles the record declares in `metadata.profiles`; that schema rejects
missing required attributes and unknown ones. The package does not check
the derived ids, so this script also checks `type_uid = class_uid * 100 +
activity_id`, `category_uid` against the class's category, the captions
(`class_name`, `category_name`, `activity_name`) and `metadata.version`.

Exits 1 naming every failing record (line, event code, uid) and its
errors; exits 1 on empty input too, so a broken producer cannot pass.
Needs: pip install ocsf-json-schema jsonschema
"""

import sys

from ndjson_check import check_lines

from jsonschema import Draft202012Validator
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

VERSION = "1.8.0"


class Checker:
    def __init__(self):
        self.raw = get_ocsf_schema(VERSION)
        self.ocsf = OcsfJsonSchemaEmbedded(self.raw)
        self.categories = self.raw["categories"]["attributes"]
        self.validators = {}

    def validator(self, class_name, profiles):
        key = (class_name, tuple(profiles))
        if key not in self.validators:
            schema = self.ocsf.get_class_schema(class_name, list(profiles))
            self.validators[key] = Draft202012Validator(
                schema, format_checker=Draft202012Validator.FORMAT_CHECKER
            )
        return self.validators[key]

    def errors(self, rec):
        """Every problem with one record, as strings."""
        if not isinstance(rec, dict):
            return ["not a JSON object"]
        out = []
        class_uid = rec.get("class_uid")
        activity_id = rec.get("activity_id")
        try:
            class_name = self.ocsf.lookup_class_name_from_uid(class_uid)
        except (ValueError, TypeError):
            return [f"unknown class_uid {class_uid!r}"]
        cls = self.raw["classes"][class_name]

        if not isinstance(activity_id, int) or not isinstance(rec.get("type_uid"), int):
            out.append("activity_id and type_uid must be integers")
        elif rec["type_uid"] != class_uid * 100 + activity_id:
            out.append(
                f"type_uid {rec['type_uid']} != class_uid {class_uid} * 100 + activity_id {activity_id}"
            )
        category = self.categories.get(cls.get("category"), {})
        if rec.get("category_uid") != category.get("uid"):
            out.append(
                f"category_uid {rec.get('category_uid')!r} is not {class_name}'s category "
                f"{cls.get('category')} ({category.get('uid')})"
            )
        if "category_name" in rec and rec["category_name"] != category.get("caption"):
            out.append(f"category_name {rec['category_name']!r} != {category.get('caption')!r}")
        if "class_name" in rec and rec["class_name"] != cls.get("caption"):
            out.append(f"class_name {rec['class_name']!r} != {cls.get('caption')!r}")
        activities = cls["attributes"]["activity_id"].get("enum", {})
        caption = activities.get(str(activity_id), {}).get("caption")
        # Other (99) lets the producer name its own activity.
        if activity_id != 99 and "activity_name" in rec and rec["activity_name"] != caption:
            out.append(f"activity_name {rec['activity_name']!r} != {caption!r} for activity_id {activity_id}")

        metadata = rec.get("metadata") if isinstance(rec.get("metadata"), dict) else {}
        if metadata.get("version") != VERSION:
            out.append(f"metadata.version {metadata.get('version')!r} != {VERSION!r}")
        profiles = metadata.get("profiles", [])
        for p in profiles:
            if p not in cls.get("profiles", []):
                out.append(f"profile {p!r} does not apply to {class_name}")
        if out:
            return out

        for err in sorted(self.validator(class_name, profiles).iter_errors(rec), key=str):
            path = "/".join(str(p) for p in err.absolute_path) or "(record)"
            out.append(f"{path}: {err.message}")
        return out


def describe_ocsf(rec):
    if not isinstance(rec, dict):
        return "? uid=? class_uid=?"
    md = rec.get("metadata", {})
    return f"{md.get('event_code', '?')} uid={md.get('uid', '?')} class_uid={rec.get('class_uid')}"


def main(argv):
    src = open(argv[1], encoding="utf-8") if len(argv) > 1 else sys.stdin
    checker = Checker()
    return check_lines(src, checker.errors, describe_ocsf, "records", f"OCSF {VERSION}")


if __name__ == "__main__":
    sys.exit(main(sys.argv))

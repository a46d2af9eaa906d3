"""The loop both validators share: read NDJSON, check each record, report.

`check_lines(src, errors, describe, noun, against)` calls `errors(record)` for every
non-blank line (a list of messages, empty when valid) and `describe(record)`
to name a failing record; it prints one FAIL line per message and returns
the process exit code (1 when any record failed or there were none).
"""

import json
import sys


def check_lines(src, errors, describe, noun, against):
    count = failed = 0
    for lineno, line in enumerate(src, 1):
        if not line.strip():
            continue
        count += 1
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            print(f"FAIL line {lineno}: not JSON: {e}", file=sys.stderr)
            failed += 1
            continue
        found = errors(rec)
        if found:
            failed += 1
            name = f"line {lineno} ({describe(rec)})"
            for e in found:
                print(f"FAIL {name}: {e}", file=sys.stderr)
    if count == 0:
        print(f"FAIL: no {noun}", file=sys.stderr)
        return 1
    if failed:
        print(f"{failed} of {count} {noun} invalid against {against}", file=sys.stderr)
        return 1
    print(f"ok: {count} {noun} valid against {against}")
    return 0

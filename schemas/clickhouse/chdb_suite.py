#!/usr/bin/env python3
"""Runs every ClickHouse DDL file and every query file on a current ClickHouse
(chdb-core, the ClickHouse 26.x engine in process) and checks the results.

The Rust store runs the same files against the real 18.16 server
(services/store/tests/conformance.rs); this proves the 26.x side. Placeholders
are `{{name}}`, substituted exactly as `regwatch_store::sql::render` does.

    pip install chdb-core
    python3 schemas/clickhouse/chdb_suite.py

Exits non-zero on any failure; the last line is `N passed, M failed`.
"""

import glob
import json
import os
import re
import shutil
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
QUERIES = os.path.join(HERE, "queries")
RUST_BACKEND = os.path.join(HERE, "..", "..", "services", "store", "src", "clickhouse", "schema.rs")


class Ident(str):
    """A database name: spliced unquoted, like Lit::Ident."""


class Raw(str):
    """A pre-rendered SQL fragment (only for the {{rows}} of insert mirrors)."""


def quote(s):
    out = s.replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0")
    out = out.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return "'" + out + "'"


def literal(v):
    if isinstance(v, Ident):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", v):
            raise ValueError("bad identifier %r" % v)
        return str(v)
    if isinstance(v, Raw):
        return str(v)
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        raise TypeError("no booleans")
    if isinstance(v, int):
        if v < 0:
            raise ValueError("unsigned only")
        return str(v)
    if isinstance(v, str):
        return quote(v)
    if isinstance(v, (list, tuple)):
        return ", ".join(quote(x) for x in v) if v else "''"
    raise TypeError(type(v))


def template(text):
    lines = [l for l in text.splitlines() if not l.lstrip().startswith("--")]
    return "\n".join(lines).strip()


def render(text, **values):
    used = set()

    def sub(m):
        name = m.group(1).strip()
        if name not in values:
            raise KeyError("no value for {{%s}}" % name)
        used.add(name)
        return literal(values[name])

    out = re.sub(r"\{\{([^}]*)\}\}", sub, template(text))
    unused = set(values) - used
    if unused:
        raise KeyError("not in the query file: %s" % sorted(unused))
    return out


def statements(text):
    return [s.strip() for s in template(text).split(";") if s.strip()]


class Suite:
    def __init__(self, session, database):
        self.s = session
        self.db = database
        self.passed = 0
        self.failed = 0
        self.used = set()

    def q(self, _query_file, **values):
        """Runs queries/<name>.sql; returns rows as dicts (SELECTs)."""
        self.used.add(_query_file + ".sql")
        with open(os.path.join(QUERIES, _query_file + ".sql")) as f:
            sql = render(f.read(), **values)
        return self.sql(sql)

    def sql(self, sql):
        res = self.s.query(sql, "JSONEachRow")
        text = res.bytes().decode() if hasattr(res, "bytes") else str(res)
        return [json.loads(l) for l in text.splitlines() if l.strip()]

    def check(self, name, fn):
        try:
            fn()
            self.passed += 1
            print("ok      %s" % name)
        except Exception:  # noqa: BLE001 - a test report, every failure counts
            self.failed += 1
            print("FAILED  %s" % name)
            traceback.print_exc(limit=3)


def eq(got, want, what=""):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def event_row(eid, etype, ms, client):
    raw = json.dumps({"event_id": eid, "event_type": etype, "client_id": client})
    return "(%s)" % ", ".join(
        [
            quote(eid), quote(etype), "1", "toDateTime(%d, 'UTC')" % (ms // 1000), str(ms),
            quote("https://as.example"), quote(client) if client else "NULL", quote("client"),
            "NULL", quote("203.0.113.7"), "NULL", "NULL", quote(raw),
        ]
    )


def alert_row(aid, status, created_ms, updated_ms, kind="redirect_drift", client="c-1"):
    raw = json.dumps({"alert_id": aid, "status": status, "updated_ms": updated_ms})
    return "(%s)" % ", ".join(
        [
            quote(aid), quote(kind), quote("high"), "0.8", quote(client), quote(status),
            quote("k:" + aid), "toDateTime(%d, 'UTC')" % (created_ms // 1000), str(created_ms),
            "toDateTime(%d, 'UTC')" % (updated_ms // 1000), str(updated_ms),
            "['e1']", "[]", quote("summary"), quote(raw),
        ]
    )


def expected_columns():
    """EXPECTED_COLUMNS from the Rust backend: the types check_schema wants."""
    with open(RUST_BACKEND) as f:
        src = f.read()
    block = src[src.index("pub const EXPECTED_COLUMNS"):]
    block = block[: block.index("\n];")]
    tables = {}
    for m in re.finditer(r'\(\s*"(\w+)",\s*&\[(.*?)\],?\s*\)', block, re.S):
        tables[m.group(1)] = dict(re.findall(r'\("(\w+)",\s*"([^"]+)"\)', m.group(2)))
    return tables


# 2026-11-22T10:00:00Z and neighbours.
T0 = 1795341600000
DAY = 86_400_000
IDS = ["0190f0a2-0000-7000-8000-%012d" % i for i in range(8)]


def main():
    from chdb import session

    tmp = tempfile.mkdtemp(prefix="regwatch-chdb-")
    s = session.Session(tmp)
    db = "rw_chdb_suite"
    suite = Suite(s, db)
    version = suite.sql("SELECT version() AS v")[0]["v"]
    print("chdb ClickHouse %s in %s" % (version, tmp))

    def migrate():
        suite.q("database_create", database=Ident(db))
        s.query("USE %s" % db)
        suite.q("migrations_create")
        ddl = sorted(glob.glob(os.path.join(HERE, "[0-9][0-9][0-9][0-9]_*.sql")))
        eq(len(ddl) >= 5, True, "ddl files")
        for path in ddl:
            name = os.path.basename(path)[:-4]
            with open(path) as f:
                for st in statements(f.read()):
                    s.query(st)
            suite.q("migrations_record", version=int(name[:4]), name=name)
        applied = suite.q("migrations_applied")
        eq([int(r["version"]) for r in applied], list(range(1, len(ddl) + 1)), "ledger")
        # Recording twice (two instances migrating at once) still reads once.
        suite.q("migrations_record", version=1, name="0001_events")
        eq(len(suite.q("migrations_applied")), len(ddl), "ledger after a repeat")

    suite.check("ddl applies in order and the ledger records it", migrate)
    if suite.failed:
        print("%d passed, %d failed" % (suite.passed, suite.failed))
        return 1

    suite.check("ping", lambda: eq(suite.q("ping"), [{"ok": 1}], "ping"))

    def schema():
        rows = suite.q("schema_columns", database=db)
        live = {}
        for r in rows:
            live.setdefault(r["table"], {})[r["name"]] = r["type"]
        want = expected_columns()
        eq(sorted(want) != [], True, "parsed EXPECTED_COLUMNS")
        for table, cols in want.items():
            for col, ty in cols.items():
                got = live.get(table, {}).get(col)
                eq(got.replace(" ", "") if got else got, ty.replace(" ", ""), "%s.%s" % (table, col))

    suite.check("system.columns matches what check_schema expects", schema)

    rows = [
        (IDS[0], "tool.called", T0, "c-1"),
        (IDS[1], "tool.called", T0, "c-2"),  # same ms as IDS[0]
        (IDS[2], "client.deleted", T0 + 61_000, "c-1"),
        (IDS[3], "tool.called", T0 + 62_000, None),
        (IDS[4], "tool.called", T0 - 10 * DAY, "c-1"),
    ]

    def insert_and_dedup():
        suite.q("events_insert", rows=Raw(", ".join(event_row(*r) for r in rows[:3])))
        existing = suite.q(
            "events_existing", min_ms=T0 - 10 * DAY, max_ms=T0 + 62_000,
            event_ids=[r[0] for r in rows],
        )
        eq(sorted(r["event_id"] for r in existing), IDS[:3], "existing ids")
        # An empty id list renders as [''] and matches nothing.
        none = suite.q("events_existing", min_ms=0, max_ms=2**32 * 1000, event_ids=[])
        eq(none, [], "existing ids of an empty list")
        fresh = [r for r in rows if r[0] not in {e["event_id"] for e in existing}]
        suite.q("events_insert", rows=Raw(", ".join(event_row(*r) for r in fresh)))
        eq([int(r["events"]) for r in suite.q("events_count")], [5], "count")

    suite.check("insert, existing-id check, count", insert_and_dedup)

    def page(**over):
        values = dict(
            since_ms=0, until_ms=2**32 * 1000, any_event_type=1, event_type="",
            any_client_id=1, client_id="", after_ms=0, after_id="", limit=101,
        )
        values.update(over)
        return [(r["event_id"], int(r["occurred_at_ms"])) for r in suite.q("events_page", **values)]

    def pages():
        eq([i for i, _ in page()], [IDS[4], IDS[0], IDS[1], IDS[2], IDS[3]], "order")
        eq([i for i, _ in page(limit=2)], [IDS[4], IDS[0]], "limit")
        eq([i for i, _ in page(after_ms=T0, after_id=IDS[0])], [IDS[1], IDS[2], IDS[3]], "cursor")
        eq([i for i, _ in page(any_event_type=0, event_type="client.deleted")], [IDS[2]], "type")
        eq([i for i, _ in page(any_client_id=0, client_id="c-1")], [IDS[4], IDS[0], IDS[2]], "client")
        eq([i for i, _ in page(since_ms=T0, until_ms=T0 + 62_000)], [IDS[0], IDS[1], IDS[2]], "bounds")

    suite.check("events_page: order, cursor, filters, bounds", pages)

    def next_ms(**over):
        values = dict(
            from_ms=0, until_ms=2**32 * 1000, any_event_type=1, event_type="",
            any_client_id=1, client_id="",
        )
        values.update(over)
        r = suite.q("events_span", **values)[0]
        return int(r["events"]), int(r["first_ms"])

    def next_event():
        eq(next_ms(), (5, T0 - 10 * DAY), "earliest of all")
        eq(next_ms(from_ms=T0 - 10 * DAY + 1), (4, T0), "after the old one")
        eq(next_ms(from_ms=T0 + 1), (2, T0 + 61_000), "after T0")
        eq(next_ms(from_ms=T0 + 1, any_event_type=0, event_type="client.deleted"),
           (1, T0 + 61_000), "type filter")
        eq(next_ms(from_ms=T0 + 1, until_ms=T0 + 61_000)[0], 0, "nothing in range")

    suite.check("events_span: count and first key of a window", next_event)

    def rollup():
        got = suite.q("events_by_minute", since_s=(T0 - 11 * DAY) // 1000, until_s=(T0 + DAY) // 1000)
        got = [(r["event_type"], int(r["minute_s"]), int(r["events"])) for r in got]
        m0 = T0 // 1000
        eq(got, [
            ("tool.called", (T0 - 10 * DAY) // 1000, 1),
            ("tool.called", m0, 2),
            ("client.deleted", m0 + 60, 1),
            ("tool.called", m0 + 60, 1),
        ], "rollup")

    suite.check("rollup exact when duplicates are filtered first", rollup)

    def final_hides_duplicates():
        # What the race would do: a duplicate inserted anyway. FINAL reads
        # it once; the rollup counts it (why the store filters first).
        suite.q("events_insert", rows=Raw(event_row(*rows[0])))
        eq([int(r["events"]) for r in suite.q("events_count")], [5], "count with FINAL")
        eq(len(page()), 5, "page with FINAL")
        got = suite.q("events_by_minute", since_s=T0 // 1000, until_s=T0 // 1000 + 60)
        eq([int(r["events"]) for r in got], [3], "rollup counts the raw duplicate")

    suite.check("FINAL dedups a raw duplicate (and the rollup does not)", final_hides_duplicates)

    def alerts():
        a, b = IDS[5], IDS[6]
        suite.q("alerts_insert", rows=Raw(alert_row(a, "open", T0, T0)))
        suite.q("alerts_insert", rows=Raw(alert_row(a, "acknowledged", T0, T0 + 30_000)))
        suite.q("alerts_insert", rows=Raw(alert_row(a, "resolved", T0, T0 + 10_000)))
        suite.q("alerts_insert", rows=Raw(alert_row(b, "open", T0 + 1000, T0 + 1000, "registration_burst", "c-9")))

        def ap(**over):
            values = dict(
                since_ms=0, until_ms=2**32 * 1000, any_kind=1, kind="", any_client_id=1,
                client_id="", after_ms=0, after_id="", any_status=1, status="", limit=101,
            )
            values.update(over)
            keys = [(r["alert_id"], int(r["created_at_ms"])) for r in suite.q("alerts_page", **values)]
            if not keys:
                return []
            got = suite.q("alerts_raw", first_ms=keys[0][1], last_ms=keys[-1][1], ids=[k[0] for k in keys])
            eq([r["alert_id"] for r in got], [k[0] for k in keys], "raw follows the page's order")
            return [(r["alert_id"], json.loads(r["raw"])["status"]) for r in got]

        eq(ap(), [(a, "acknowledged"), (b, "open")], "latest wins")
        eq(ap(any_status=0, status="resolved"), [], "status judges the latest")
        eq(ap(any_status=0, status="open"), [(b, "open")], "status open")
        eq(ap(any_kind=0, kind="redirect_drift"), [(a, "acknowledged")], "kind")
        eq(ap(any_client_id=0, client_id="c-9"), [(b, "open")], "client")
        eq(ap(after_ms=T0, after_id=a), [(b, "open")], "cursor")
        eq(ap(limit=1), [(a, "acknowledged")], "limit")
        eq(ap(since_ms=T0 + 1, until_ms=T0 + 1001), [(b, "open")], "window bounds")

        def span(**over):
            values = dict(from_ms=0, until_ms=2**32 * 1000, any_kind=1, kind="", any_client_id=1, client_id="")
            values.update(over)
            r = suite.q("alerts_span", **values)[0]
            return int(r["events"]), int(r["first_ms"])

        eq(span(), (4, T0), "span counts every version")
        eq(span(any_kind=0, kind="registration_burst"), (1, T0 + 1000), "span kind")
        eq(span(from_ms=T0 + 1)[0], 1, "span from")
        eq(span(until_ms=T0)[0], 0, "span until is exclusive")

    suite.check("alerts: latest updated_at wins, filters, cursor", alerts)

    def upgrade():
        # A database an older release made (DDL before 0006) with alerts in
        # it; 0006 runs once up to its copy (a run that stopped there), then
        # whole, as the store's migrate repeats it.
        old_db = "rw_chdb_upgrade"
        s.query("CREATE DATABASE IF NOT EXISTS %s" % old_db)
        s.query("USE %s" % old_db)
        try:
            ddl = sorted(glob.glob(os.path.join(HERE, "[0-9][0-9][0-9][0-9]_*.sql")))
            move = [p for p in ddl if os.path.basename(p).startswith("0006_")]
            eq(len(move), 1, "0006 file")
            for path in ddl:
                if path == move[0]:
                    break
                with open(path) as f:
                    for st in statements(f.read()):
                        s.query(st)
            a, b = IDS[5], IDS[6]
            s.query("INSERT INTO alerts VALUES %s, %s, %s" % (
                alert_row(a, "open", T0, T0),
                alert_row(a, "resolved", T0, T0 + 5000),
                alert_row(b, "open", T0 + 1000, T0 + 1000),
            ))
            with open(move[0]) as f:
                steps = statements(f.read())
            for st in steps[:-1]:
                s.query(st)
            for st in steps:
                s.query(st)
            eq(suite.sql("EXISTS TABLE alerts"), [{"result": 0}], "old table dropped")
            keys = suite.q(
                "alerts_page", since_ms=0, until_ms=2**32 * 1000, any_kind=1, kind="",
                any_client_id=1, client_id="", after_ms=0, after_id="", any_status=1, status="",
                limit=10,
            )
            got = suite.q("alerts_raw", first_ms=T0, last_ms=T0 + 1000, ids=[r["alert_id"] for r in keys])
            eq([(r["alert_id"], json.loads(r["raw"])["status"]) for r in got],
               [(a, "resolved"), (b, "open")], "moved, latest wins, once")
        finally:
            s.query("USE %s" % db)
            s.query("DROP DATABASE IF EXISTS %s" % old_db)

    suite.check("0006 moves an older release's alerts, repeatable", upgrade)

    def retention():
        old_day = "20261112"
        parts = [r["partition_id"] for r in suite.q("partitions_list", database=db, before="20261115")]
        eq(parts, [old_day], "old partitions")
        suite.q("partition_drop", partition_id=old_day)
        eq(suite.q("partitions_list", database=db, before="20261115"), [], "after drop")
        eq([int(r["events"]) for r in suite.q("events_count")], [4], "count after drop")

    suite.check("retention lists and drops an old day partition", retention)

    def coverage():
        files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(QUERIES, "*.sql")))
        missing = [f for f in files if f not in suite.used]
        eq(missing, [], "query files never run")

    suite.check("every query file ran", coverage)

    try:
        s.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (suite.passed, suite.failed))
    return 1 if suite.failed else 0


if __name__ == "__main__":
    try:
        code = main()
    except Exception:  # noqa: BLE001 - setup failure still ends with the count line
        traceback.print_exc()
        print("0 passed, 1 failed")
        code = 1
    sys.exit(code)

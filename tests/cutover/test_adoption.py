"""Adopting the legacy transactional database in place (`nxt db adopt`), on a database built
from the real legacy migrations with the legacy-shaped data of tests/legacy/: what it refuses,
that it loses and changes no row, that it can be run again, and that nothing goes back on it.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from migrations.guards import AdoptedDatabase
from nxt_cli import census, migrate
from nxt_cli.adopt import adopt, transactional_plane
from tests.legacy import dataset
from tests.support.legacy_support import (
    adopt_json,
    build_transactional,
    drop,
    legacy_database,
    nxt,
    require_legacy_server,
    rows,
)

pytestmark = [pytest.mark.db, pytest.mark.legacy]


@pytest.fixture(scope="module")
def pristine() -> Iterator[str]:
    """A legacy database with its data, never adopted (tests only read it)."""
    require_legacy_server()
    with legacy_database("legacy_pristine") as url:
        yield url


class Adopted:
    def __init__(self, url: str) -> None:
        self.url = url
        with psycopg.connect(url) as conn:
            self.columns = census.table_columns(conn)
            self.before = census.table_states(conn, self.columns)
            self.objects_before = census.objects(conn)
        self.report = adopt_json(url)[0]
        with psycopg.connect(url) as conn:
            self.after = census.table_states(conn, self.columns)
            self.objects_after = census.objects(conn)


@pytest.fixture(scope="module")
def adopted() -> Iterator[Adopted]:
    require_legacy_server()
    url = build_transactional("legacy_adopted")
    try:
        yield Adopted(url)
    finally:
        drop(url)


def _snapshot(url: str) -> tuple[dict[str, census.TableState], set[str]]:
    with psycopg.connect(url) as conn:
        return census.table_states(conn), census.objects(conn)


def test_the_data_is_what_the_data_set_says(pristine: str) -> None:
    """The control: the database under test holds the legacy data set."""
    states, _ = _snapshot(pristine)
    for table, count in dataset.ROW_COUNTS.items():
        name = table if "." in table else f"public.{table}"
        assert states[name].count == count, table


def test_migrate_refuses_an_unadopted_legacy_database_before_writing(pristine: str) -> None:
    before = _snapshot(pristine)
    done = nxt(["db", "migrate"], pristine)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "nxt db adopt" in done.stderr and "nothing was changed" in done.stderr
    assert _snapshot(pristine) == before
    with pytest.raises(migrate.LegacyDatabase):
        migrate.migrate(pristine)
    assert _snapshot(pristine) == before


def test_adopt_refuses_a_database_that_differs_from_the_baseline() -> None:
    require_legacy_server()
    with legacy_database("legacy_drifted", data=False) as url:
        with psycopg.connect(url) as conn:
            conn.execute("alter table public.orders alter column amount type numeric")
            conn.execute("alter table public.grids alter column timezone drop default")
            conn.execute("drop index public.idx_customer_grid_id")
            conn.execute("alter table public.api_keys drop column is_locked")
        before = _snapshot(url)
        done = nxt(["db", "adopt", "--yes"], url)
        assert done.returncode == 1, done.stdout + done.stderr
        for expected in ("different: column orders.amount (type numeric, baseline double"
                         " precision)",
                         "different: column grids.timezone (default none,",
                         "missing: index on customers (grid_id)",
                         "missing: column api_keys.is_locked",
                         "nothing was changed"):
            assert expected in done.stderr, (expected, done.stderr)
        assert _snapshot(url) == before


def test_adoption_loses_and_changes_no_row(adopted: Adopted) -> None:
    report = adopted.report
    assert report["status"] == "adopted" and report["recognised"] == "legacy"
    assert report["stamped"] == "0002"
    assert [r.split()[0] for r in report["applied"]] == [
        f"{n:04d}" for n in range(3, int(migrate.head_revision()) + 1)]
    assert report["changes"] == [] and report["removed"] == []
    assert report["rows_before"] == report["rows_after"]
    # Every table of the database, counted and checksummed independently of the report.
    assert adopted.after == adopted.before
    assert len(adopted.before) == report["tables"] > 60
    for table, count in dataset.ROW_COUNTS.items():
        name = table if "." in table else f"public.{table}"
        assert adopted.after[name].count == count, table


def test_adoption_only_adds(adopted: Adopted) -> None:
    """Legacy policies, triggers, functions, views, columns: all still there."""
    assert adopted.objects_before <= adopted.objects_after
    added = adopted.objects_after - adopted.objects_before
    assert set(adopted.report["added"]) == added
    assert "column public.api_keys.key_hash" in added
    assert "policy public.orders nxt_orders_read" in added
    assert all(not a.startswith("table public.") or a == "table public.alembic_version"
               for a in added), added


def test_every_legacy_key_is_hashed_in_place(adopted: Adopted) -> None:
    keys = rows(adopted.url, "select id, key, key_hash = sha256(convert_to(key, 'UTF8'))"
                             " from public.api_keys order by id")
    assert {i: k for i, k, _ in keys} == {i: k for i, (k, _, _) in dataset.API_KEYS.items()}
    assert all(ok for _, key, ok in keys if key is not None)
    assert adopted.report["keys_hashed"] == sum(1 for k, _, _ in dataset.API_KEYS.values() if k)


def test_adopting_again_changes_nothing(adopted: Adopted) -> None:
    before = _snapshot(adopted.url)
    [report] = adopt_json(adopted.url)
    assert report["status"] == "already adopted" and report["planned"] == []
    assert _snapshot(adopted.url) == before
    done = nxt(["db", "migrate"], adopted.url)
    assert done.returncode == 0 and "up to date" in done.stdout, done.stderr


def test_without_apply_adoption_only_plans(pristine: str) -> None:
    """What `nxt db adopt` does against a database that is not local without --yes."""
    before = _snapshot(pristine)
    report = adopt(pristine, transactional_plane(), apply=False)
    assert report.status == "planned (nothing changed)"
    assert [r.split()[0] for r in report.planned][:2] == ["0003", "0004"]
    assert report.rows_before and not report.rows_after
    assert _snapshot(pristine) == before


def test_downgrades_and_resets_refuse_on_an_adopted_database(adopted: Adopted) -> None:
    before = _snapshot(adopted.url)
    for target in ("0007", "base"):
        with pytest.raises(AdoptedDatabase):
            migrate.downgrade(adopted.url, target)
    with pytest.raises(PermissionError, match="adopted"):
        migrate.reset(adopted.url)
    done = nxt(["db", "reset"], adopted.url)
    assert done.returncode == 1 and "adopted" in done.stderr
    assert _snapshot(adopted.url) == before


def test_the_adoption_is_recorded(adopted: Adopted) -> None:
    [(baseline, legacy, report)] = rows(adopted.url, "select baseline, legacy_migration, report"
                                                     " from app.adoption")
    assert baseline == "0002" and legacy == adopted.report["legacy_migration"]
    assert report["rows_after"] == adopted.report["rows_after"]
    assert rows(adopted.url, "select operator_organization_id from app.settings") == [
        (dataset.OPERATOR_ORG_ID,)]


def test_finishing_the_keys_removes_the_plaintext_and_keeps_them_working() -> None:
    require_legacy_server()
    with legacy_database("legacy_keys") as url:
        adopt_json(url)
        hashes = rows(url, "select id, key_hash from public.api_keys order by id")
        done = nxt(["db", "adopt", "--finish-keys"], url)
        assert done.returncode == 0 and "removed" in done.stdout, done.stderr
        assert rows(url, "select count(*) from public.api_keys where key is not null") == [(0,)]
        assert rows(url, "select id, key_hash from public.api_keys order by id") == hashes
        # A key a legacy writer still issues is hashed, and its plaintext not kept.
        with psycopg.connect(url) as conn:
            conn.execute("insert into public.api_keys (key, account_id) values (%s, %s)",
                         ("legacy-issued-after-finish", 307))
        assert rows(url, "select key, key_hash = sha256('legacy-issued-after-finish')"
                         " from public.api_keys where account_id = 307 and id > 19") == [
            (None, True)]


def test_legacy_writers_keep_writing_during_adoption_and_their_rows_are_explained() -> None:
    """The legacy services keep running during adoption: none of their writes may fail (a
    revision holding one table's lock while waiting for another's could deadlock a writer
    whose trigger joins the two), and the rows they add are reported with their cause."""
    import threading
    import time

    require_legacy_server()
    with legacy_database("legacy_busy") as url:
        stop = threading.Event()
        written: list[str] = []
        failed: list[BaseException] = []
        writes = {
            # the legacy trigger on notes joins customers and grids
            "note": ("insert into public.notes (message, customer_id) values"
                     " ('written by the legacy while adopting', %s)", (dataset.CUSTOMER_IDS[0],)),
            "order": ("update public.orders set updated_at = updated_at where id = %s",
                      (dataset.FIRST_ORDER_ID,)),
            "wallet": ("update public.wallets set balance_updated_at = now() where id = %s",
                       (dataset.OPERATOR_WALLET_ID,)),
        }

        def legacy_writer(name: str) -> None:
            sql, params = writes[name]
            try:
                while not stop.is_set():
                    # A connection per write: its statistics are flushed when it closes.
                    with psycopg.connect(url) as conn:
                        conn.execute(sql, params)
                    written.append(name)
                    time.sleep(0.01)
            except BaseException as exc:
                failed.append(exc)

        writers = [threading.Thread(target=legacy_writer, args=(n,)) for n in writes]
        for writer in writers:
            writer.start()
        try:
            while len(set(written)) < len(writes) and not failed:
                time.sleep(0.01)
            [report] = adopt_json(url)
        finally:
            stop.set()
            for writer in writers:
                writer.join()
        assert failed == []
        # New notes, wallets whose balance_updated_at moved; orders rewritten with the same
        # values are not a change.
        changed = {c["table"]: c for c in report["changes"]}
        assert set(changed) == {"public.notes", "public.wallets"}, report["changes"]
        assert changed["public.notes"]["after"] > changed["public.notes"]["before"]
        assert changed["public.wallets"]["after"] == changed["public.wallets"]["before"]
        for change in changed.values():
            assert change["why"].startswith("written by other sessions while adopting"), change
        assert all(r.split(":")[0] in ("DeadlockDetected", "LockNotAvailable")
                   for r in report["retries"]), report["retries"]


def test_status_and_plan_of_a_legacy_database_before_and_after_adoption(
        pristine: str, adopted: Adopted) -> None:
    import json

    waiting = nxt(["db", "status", "--json"], pristine)
    assert waiting.returncode == 1, waiting.stdout + waiting.stderr
    tx = json.loads(waiting.stdout)[0]
    assert (tx["state"], tx["current"]) == ("legacy", None)
    # What adoption applies after stamping the baseline: never the baseline itself.
    revisions = [p["revision"] for p in tx["pending"]]
    assert (revisions[0], revisions[-1]) == ("0003", migrate.head_revision())
    text = nxt(["db", "status"], pristine).stdout
    assert "legacy, not adopted: run `nxt db adopt`" in text
    plan = nxt(["db", "plan"], pristine)
    assert plan.returncode == 1 and "`nxt db adopt` takes it over" in plan.stdout
    planned = json.loads(nxt(["db", "plan", "--json"], pristine).stdout)[0]
    assert planned["refused"] and planned["revisions"] == []  # nothing planned before adoption

    done = nxt(["db", "status", "--json"], adopted.url)
    assert done.returncode == 0, done.stdout + done.stderr
    tx = json.loads(done.stdout)[0]
    assert (tx["state"], tx["current"], tx["pending"]) == ("adopted", migrate.head_revision(), [])
    assert "adopted from the legacy system" in nxt(["db", "status"], adopted.url).stdout
    assert nxt(["db", "plan"], adopted.url).returncode == 0


def test_diff_of_an_adopted_database_finds_no_drift_and_lists_the_legacy_objects(
        adopted: Adopted) -> None:
    import json

    done = nxt(["db", "diff", "--json", "--scratch", adopted.url], adopted.url)
    assert done.returncode == 0, done.stdout + done.stderr
    tx = json.loads(done.stdout)[0]
    assert (tx["adopted"], tx["drift"]) == (True, [])
    legacy = {(d["category"], d["name"]) for d in tx["legacy_only"]}
    # The legacy baseline tables' legacy columns (PostGIS) and a legacy table not ours.
    assert any(category == "column" for category, _ in legacy)
    assert any(category == "table" for category, _ in legacy)
    assert any(category == "policy" for category, _ in legacy)
    text = nxt(["db", "diff", "--scratch", adopted.url], adopted.url).stdout
    assert "no drift" in text and "legacy-only, left alone (adopted)" in text

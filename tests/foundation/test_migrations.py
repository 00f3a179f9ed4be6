"""Transactional-plane migrations on a real, empty database: up, down, up again."""

from __future__ import annotations

import psycopg
import pytest

from nxt_cli import migrate

pytestmark = pytest.mark.db


def _objects(url: str) -> dict[str, set[str]]:
    with psycopg.connect(url) as conn:
        tables = {r[0] for r in conn.execute(
            "select schemaname || '.' || tablename from pg_tables"
            " where schemaname in ('public', 'auth', 'app')")}
        types = {r[0] for r in conn.execute(
            "select t.typname from pg_type t join pg_namespace n on n.oid = t.typnamespace"
            " where n.nspname = 'public' and t.typtype = 'e'")}
        policies = {r[0] for r in conn.execute("select policyname from pg_policies")}
        functions = {r[0] for r in conn.execute(
            "select n.nspname || '.' || p.proname from pg_proc p"
            " join pg_namespace n on n.oid = p.pronamespace"
            " where n.nspname in ('public', 'auth', 'app')")}
    return {"tables": tables, "types": types, "policies": policies, "functions": functions}


def test_up_down_up_on_an_empty_database(empty_db: str) -> None:
    assert migrate.current_revision(empty_db) is None
    before, after = migrate.migrate(empty_db)
    assert (before, after) == (None, migrate.head_revision())
    first = _objects(empty_db)
    expected_tables = {"public.organizations", "public.orders", "public.api_keys", "auth.users"}
    assert expected_tables <= first["tables"]
    assert {"order_status_enum", "order_type_enum", "organization_type_enum",
            "currency_enum"} <= first["types"]
    assert "nxt_customers_read" in first["policies"]
    expected_functions = {"auth.uid", "auth.jwt", "auth.role", "public.custom_access_token_hook"}
    assert expected_functions <= first["functions"]

    migrate.downgrade(empty_db, "base")
    assert migrate.current_revision(empty_db) is None
    down = _objects(empty_db)
    assert down["tables"] <= {"public.alembic_version"}, down["tables"]
    assert not down["types"] and not down["policies"] and not down["functions"]

    migrate.migrate(empty_db)
    assert _objects(empty_db) == first


def test_migrate_twice_changes_nothing(empty_db: str) -> None:
    migrate.migrate(empty_db)
    snapshot = _objects(empty_db)
    before, after = migrate.migrate(empty_db)
    assert before == after == migrate.head_revision()
    assert _objects(empty_db) == snapshot


def test_bootstrap_keeps_an_existing_supabase_auth_schema(empty_db: str) -> None:
    """On a real Supabase database auth already exists; the bootstrap must leave it alone."""
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("create schema auth")
        conn.execute("create table auth.users (id uuid primary key, email text,"
                     " instance_id uuid, raw_app_meta_data jsonb)")
        conn.execute("create function auth.uid() returns uuid language sql stable"
                     " as $$ select '00000000-0000-0000-0000-0000000000aa'::uuid $$")
    migrate.migrate(empty_db)
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select auth.uid()::text").fetchone() == (
            "00000000-0000-0000-0000-0000000000aa",)
        cols = {r[0] for r in conn.execute(
            "select column_name from information_schema.columns"
            " where table_schema = 'auth' and table_name = 'users'")}
        assert "instance_id" in cols  # Supabase's table, not ours
    migrate.downgrade(empty_db, "base")
    with psycopg.connect(empty_db) as conn:
        # Not created by the bootstrap, so the downgrade keeps it.
        assert conn.execute("select to_regclass('auth.users') is not null").fetchone() == (True,)


def test_reset_refuses_a_remote_database() -> None:
    with pytest.raises(PermissionError, match="not local"):
        migrate.reset("postgresql://postgres@db.example.com:5432/postgres")


def test_reset_drops_data_and_reapplies(empty_db: str) -> None:
    migrate.migrate(empty_db)
    with psycopg.connect(empty_db) as conn:
        conn.execute("insert into public.organizations (name) values ('to be dropped')")
    migrate.reset(empty_db)
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select count(*) from public.organizations").fetchone() == (0,)
    assert migrate.current_revision(empty_db) == migrate.head_revision()


def test_the_leakproof_step_is_skipped_with_a_notice_for_a_role_that_is_not_superuser(
        empty_db: str) -> None:
    # Revision 0011 marks enum equality leakproof, which only a superuser may do. Supabase's
    # `postgres` is not one: there the step must say so and change nothing, not fail the
    # migration (the rest of 0011 still applies).
    from alembic.script import ScriptDirectory
    from psycopg import sql

    migrate.migrate(empty_db)
    revision = ScriptDirectory.from_config(migrate.alembic_config(empty_db)).get_revision("0011")
    assert revision is not None
    statement = revision.module._leakproof("not leakproof")
    leakproof = ("select proleakproof from pg_proc"
                 " where oid = 'pg_catalog.enum_eq(anyenum, anyenum)'::regprocedure")
    role = "nxt_probe_not_super"
    with psycopg.connect(empty_db, autocommit=True) as admin:
        assert admin.execute(leakproof).fetchone() == (True,)  # migrated here by a superuser
        admin.execute(sql.SQL("drop role if exists {}").format(sql.Identifier(role)))
        admin.execute(sql.SQL("create role {} login").format(sql.Identifier(role)))
        try:
            with psycopg.connect(empty_db, user=role, autocommit=True) as conn:
                notices: list[str] = []
                conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
                conn.execute(statement)
            assert any("not a superuser" in n for n in notices), notices
            assert admin.execute(leakproof).fetchone() == (True,)  # unchanged
        finally:
            admin.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))

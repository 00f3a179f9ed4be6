"""Legacy databases for the adoption tests: built from the real legacy migrations
(../shared/legacy) with the legacy-shaped data of tests/legacy/, on the machine's PostgreSQL 15
(the builders need PostGIS, which the embedded server lacks).

Where no such server answers, the tests skip and say why; under CI they fail instead, since CI
installs PostGIS and must run them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from nxt_cli.harness import ROOT
from nxt_cli.stack import TIMESERIES_SUFFIX
from nxt_cli.tokens import mint_token
from tests.conftest import TEST_JWT_SECRET


def find_legacy() -> Path:
    """The folder of the legacy builders (`shared/legacy`, beside the checkout in the workplace;
    never part of this repository): NXT_LEGACY_DIR, else `shared/legacy` beside the checkout or
    beside any folder above it, else the workplace's own (CI clones the repository elsewhere)."""
    explicit = os.environ.get("NXT_LEGACY_DIR")
    candidates = [Path(explicit)] if explicit else []
    candidates += [parent / "shared" / "legacy" for parent in ROOT.parents]
    candidates.append(Path("/work/shared/legacy"))
    for candidate in candidates:
        if (candidate / "build-legacy-db.sh").is_file():
            return candidate
    return candidates[0]


LEGACY = find_legacy()
DATA = ROOT / "tests" / "legacy" / "data"
# The legacy builders take PGHOST/PGPORT/PGUSER; NXT_LEGACY_PG_URL overrides the default.
ADMIN_URL = os.environ.get("NXT_LEGACY_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def require_legacy_server() -> str:
    """The admin URL of a PostgreSQL the legacy databases can be built on; skip (or, under CI,
    fail) when there is none."""
    reason = None
    if not (LEGACY / "build-legacy-db.sh").is_file():
        reason = f"the legacy database builders are not at {LEGACY}"
    else:
        try:
            with psycopg.connect(ADMIN_URL, connect_timeout=3) as conn:
                if not conn.execute("select 1 from pg_available_extensions"
                                    " where name = 'postgis'").fetchone():
                    reason = ("PostGIS is not installed on the legacy server"
                              " (apt-get install postgresql-15-postgis-3)")
        except psycopg.OperationalError:
            reason = f"no PostgreSQL answers at {urlsplit(ADMIN_URL).netloc} for the legacy builds"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the adoption tests")
        pytest.skip(reason)
    return ADMIN_URL


def url_of(name: str) -> str:
    return urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/{name}"))


def _pg_env() -> dict[str, str]:
    parts = urlsplit(ADMIN_URL)
    return {**os.environ, "PGHOST": parts.hostname or "127.0.0.1",
            "PGPORT": str(parts.port or 5432), "PGUSER": parts.username or "postgres"}


def build_transactional(prefix: str = "legacy_t", *, data: bool = True) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    args = ["bash", str(LEGACY / "build-legacy-db.sh"), name]
    if data:
        args += ["--data", str(DATA / "transactional.sql")]
    subprocess.run(args, env=_pg_env(), check=True, capture_output=True, timeout=300)
    return url_of(name)


def build_timeseries(prefix: str = "legacy_ts_t", *, data: bool = True) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    args = ["bash", str(LEGACY / "timeseries" / "build-legacy-ts.sh"), url_of(name), "--plain",
            "--recreate"]
    if data:
        args += ["--data", str(DATA / "timeseries.sql")]
    subprocess.run(args, env=_pg_env(), check=True, capture_output=True, timeout=300)
    return url_of(name)


def drop(*urls: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        for url in urls:
            name = urlsplit(url).path.lstrip("/")
            # The CLI makes `<name>_timeseries` beside a local database it adopts or migrates.
            for db in (name, name + TIMESERIES_SUFFIX):
                conn.execute(f'drop database if exists "{db}" with (force)')


@contextmanager
def legacy_database(prefix: str = "legacy_t", *, data: bool = True) -> Iterator[str]:
    url = build_transactional(prefix, data=data)
    try:
        yield url
    finally:
        drop(url)


def nxt(args: list[str], url: str, ts_url: str | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """An `nxt` command as an operator runs it against the legacy databases."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("K_SERVICE", "TIMESERIES_DATABASE_URL", "DATABASE_URL")}
    env.update(DATABASE_URL=url, PYTHONPATH=str(ROOT),
               NXT_SUPABASE_CONFIG=str(ROOT / "supabase" / "config.toml"))
    if ts_url:
        env["TIMESERIES_DATABASE_URL"] = ts_url
    return subprocess.run([sys.executable, "-m", "nxt_cli.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def adopt_json(url: str, ts_url: str | None = None, *extra: str) -> list[dict[str, Any]]:
    done = nxt(["db", "adopt", "--yes", "--json", *extra], url, ts_url)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout)


def legacy_token(user_id: str | None, organization_id: int | None,
                 organization_type: str | None, account_type: str = "MEMBER",
                 role: str = "authenticated") -> str:
    """A JWT as the legacy Supabase project issues it: app_metadata from auth.users."""
    return mint_token(TEST_JWT_SECRET, role=role, sub=user_id, organization_id=organization_id,
                      organization_type=organization_type,
                      extra={"app_metadata": {"account_type": account_type}})


def rows(url: str, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def as_role(url: str, role: str, claims: dict[str, Any], sql: str,
            params: Any = ()) -> list[tuple[Any, ...]]:
    """`sql` run as a legacy reader would run it: that role, those JWT claims, the legacy
    policies and grants."""
    with psycopg.connect(url) as conn:
        conn.execute("select set_config('role', %s, true),"
                     " set_config('request.jwt.claims', %s, true)", (role, json.dumps(claims)))
        found = conn.execute(sql, params).fetchall()
        conn.rollback()
        return found


def tmp_log(tmp: Path, name: str) -> Path:
    return tmp / f"{name}.log"

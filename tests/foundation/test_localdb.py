"""The embedded PostgreSQL and the `nxt` commands that drive it, as a newcomer runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from nxt_cli.harness import stack_env
from nxt_cli.tokens import mint_token
from shared.auth.verifier import JWTVerifier
from tests.conftest import TEST_JWT_SECRET

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from nxt_cli.localdb import LocalDatabase, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_start_stop_and_restart_keeps_data(tmp_path: Path) -> None:
    db = LocalDatabase(tmp_path / "data", free_port()).start()
    try:
        with psycopg.connect(db.url, autocommit=True) as conn:
            conn.execute("create table kept (x int)")
            conn.execute("insert into kept values (42)")
        db.stop()
        assert db.running_pid() is None
        db.start()
        with psycopg.connect(db.url) as conn:
            assert conn.execute("select x from kept").fetchone() == (42,)
    finally:
        db.destroy()


def test_a_stale_pid_file_from_a_killed_run_is_handled(tmp_path: Path) -> None:
    db = LocalDatabase(tmp_path / "data", free_port()).start()
    try:
        pid = db.running_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            if db.running_pid() is None:
                break
            time.sleep(0.05)
        pidfile = tmp_path / "data" / "postmaster.pid"
        # Make it look like the pid was reused by an unrelated process (this test runner).
        lines = pidfile.read_text().splitlines()
        lines[0] = str(os.getpid())
        pidfile.write_text("\n".join(lines) + "\n")
        time.sleep(0.3)  # let the killed server's children exit and release the port
        db.start()
        with psycopg.connect(db.url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
    finally:
        db.destroy()


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        db = LocalDatabase(tmp_path / "data", port)
        with pytest.raises(Exception, match=f"port {port} on 127.0.0.1 is taken"):
            db.start()


def _nxt(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nxt_cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def _project_copy(tmp_path: Path, port: int, api_port: int = 54321) -> Path:
    """A checkout-shaped directory whose config.toml names a free database port."""
    project = tmp_path / "project"
    (project / "supabase").mkdir(parents=True)
    text = (ROOT / "supabase" / "config.toml").read_text()
    text = text.replace("port = 54322", f"port = {port}")
    text = text.replace("port = 54321", f"port = {api_port}")
    (project / "supabase" / "config.toml").write_text(text)
    (project / "functions").symlink_to(ROOT / "functions")
    return project


def test_nxt_dev_starts_migrates_seeds_and_stops_cleanly(tmp_path: Path) -> None:
    port, api_port = free_port(), free_port()
    project = _project_copy(tmp_path, port, api_port)
    # No NXT_SUPABASE_CONFIG: `nxt dev` reads the copy's own config.toml, found from its cwd.
    env = stack_env(jwt_secret=TEST_JWT_SECRET, config=False, NXT_DEMO_TELEMETRY_DAYS="2")
    proc = subprocess.Popen([sys.executable, "-m", "nxt_cli.main", "dev", "--run-jobs-now"],
                            cwd=project, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("ready."):
                break
        output = "".join(lines)
        assert "ready." in output, output
        assert "1000 customers" in output
        assert "API key for Open Energy Data Co.: nxt_" in output
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        with psycopg.connect(url) as conn:
            assert conn.execute("select count(*) from public.customers").fetchone() == (1000,)
        # The functions are served through their gates on the [api] port.
        base = f"http://127.0.0.1:{api_port}/functions/v1"
        token = mint_token(TEST_JWT_SECRET, role="authenticated", organization_id=1,
                           organization_type="LENDER")
        resp = httpx.get(f"{base}/customers", params={"size": 2},
                         headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["total"] > 0
        assert httpx.get(f"{base}/orders").status_code == 401
        # Demo telemetry and its snapshots: meter-consumption answers real figures at once.
        assert "telemetry: " in output and "snapshot-meters: " in output
        key = output.split("API key for Open Energy Data Co.: ")[1].split()[0]
        now = datetime.now(UTC)
        resp = httpx.get(f"{base}/meter-consumption", headers={"X-API-Key": key}, params={
            "FROM": (now - timedelta(days=1)).isoformat(), "TO": now.isoformat()})
        assert resp.status_code == 200, resp.text
        assert resp.json()["total"] > 1000
        # What a Supabase client needs: the API URL, and keys signed with the local secret.
        assert f"API URL: http://127.0.0.1:{api_port}\n" in output
        anon = output.split("anon key: ")[1].split()[0]
        service = output.split("service_role key: ")[1].split()[0]
        verifier = JWTVerifier(hs256_secret=TEST_JWT_SECRET)
        assert verifier.verify(anon)["role"] == "anon"
        assert verifier.verify(service)["role"] == "service_role"
        resp = httpx.get(f"{base}/orders", params={"size": 1},
                         headers={"Authorization": f"Bearer {service}", "apikey": anon})
        assert resp.status_code == 200, resp.text
        # --run-jobs-now: every scheduled job runs at once, each run ending in one line.
        job_line = ""
        while time.monotonic() < deadline and not job_line:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            # A */5 slot that comes while the run-now run still goes is skipped, and says so
            # first (a start at hh:m4:59 in CI): the run's own line is the one to read.
            job_line = line if (line.startswith("job sync-orders: ")
                                and "skipped (the previous run is still going)" not in line) else ""
        assert job_line.startswith("job sync-orders: done in "), "".join(lines)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert "stopped." in rest
    finally:
        if proc.poll() is None:
            proc.kill()
    # Nothing is left running, and a second start finds the data and does not reseed.
    datadir = project / ".nxt" / "pgdata"
    assert not (datadir / "postmaster.pid").exists()
    migrate_twice = [_nxt("db", "migrate", env=env, cwd=project) for _ in range(2)]
    assert all(r.returncode == 0 for r in migrate_twice), [r.stderr for r in migrate_twice]
    assert "up to date at revision" in migrate_twice[1].stdout
    seeded = _nxt("db", "seed", env=env, cwd=project)
    assert "already loaded" in seeded.stdout
    assert not (datadir / "postmaster.pid").exists()


def test_nxt_db_reset_refuses_a_remote_database(tmp_path: Path) -> None:
    env = dict(os.environ, DATABASE_URL="postgresql://postgres@db.example.com:5432/postgres",
               PYTHONPATH=str(ROOT))
    result = _nxt("db", "reset", env=env, cwd=ROOT)
    assert result.returncode == 1
    assert "not local" in result.stderr and "forward only" in result.stderr
    # Forward only elsewhere: there is no flag left that would take a remote database back.
    forced = _nxt("db", "reset", "--force", env=env, cwd=ROOT)
    assert forced.returncode == 2 and "unrecognized arguments: --force" in forced.stderr


def test_nxt_token_mints_a_token_the_functions_accept() -> None:
    import asyncio

    from nxt_cli.localkeys import supabase_local_jwt_secret
    from shared.auth.caller import caller_from_claims
    from shared.auth.verifier import JWTVerifier

    env = {k: v for k, v in os.environ.items()
           if k not in ("SUPABASE_JWT_SECRET", "JWT_SECRET", "K_SERVICE")}
    env["PYTHONPATH"] = str(ROOT)
    result = _nxt("token", "--org", "3", env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    verifier = JWTVerifier(hs256_secret=supabase_local_jwt_secret())
    caller = caller_from_claims(asyncio.run(verifier.averify(result.stdout.strip())))
    assert (caller.role, caller.organization_id, caller.organization_type) == (
        "authenticated", 3, "SOLAR_DEVELOPER")
    assert caller.user_id == "00000000-0000-4000-8000-000000000003"
    service = _nxt("token", "--role", "service_role", env=env, cwd=ROOT)
    claims = verifier.verify(service.stdout.strip())
    assert claims["role"] == "service_role" and "aud" not in claims

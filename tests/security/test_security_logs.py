"""No secret, token, API key or connection string in any log line or error body.

`nxt serve` instances of this module's own run with passwords in their database URLs (the
embedded server trusts loopback, so the password is accepted and ignored): one healthy, one
whose time-series database is down (503s with stack traces in the log), one whose URLs are
malformed around the password. Many requests go to every function carrying tokens, API keys
and secrets in headers, query strings, paths and bodies; `nxt` commands run with the same URLs.
Then the logs, the command output and every response body are searched for each secret sent,
and the shared instance's log (every function test of the session so far) for anything shaped
like a credential.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from nxt_cli.harness import ROOT
from nxt_cli.localdb import free_port
from nxt_cli.seed import AGGREGATOR_ID, DEV_A_ID, LENDER_ID, OPERATOR_ID
from nxt_cli.tokens import mint_token
from tests.conftest import TEST_JWT_SECRET, Api, Seeded
from tests.support.security_support import (
    FUNCTION_REQUESTS,
    HTTP_FUNCTIONS,
    operator_claims,
    segment,
    serve_env,
    serve_many,
    unsigned,
)

pytestmark = pytest.mark.db

PASSWORD = "Pw-" + uuid.uuid4().hex[:12] + "-sEcReT"
# libpq refuses a '%' that does not start a %XX escape and quotes the offending part back.
BAD_PASSWORD = "Bad-" + uuid.uuid4().hex[:12] + "%zz-sEcReT"
OTHER_SECRET = "another-secret-that-is-long-enough-" + uuid.uuid4().hex


def with_password(url: str, password: str, user: str = "postgres") -> str:
    scheme, rest = url.split("://", 1)
    host = rest.split("@", 1)[1] if "@" in rest else rest
    return f"{scheme}://{user}:{password}@{host}"


@dataclass
class Secrets:
    """Everything that must never be written to a log or an error body."""

    values: set[str] = field(default_factory=set)

    def add(self, *values: str) -> None:
        for value in values:
            if len(value) >= 16:
                self.values.add(value)
            if value.count(".") == 2 and value.startswith("eyJ"):
                # A JWT's signature alone is as good as the token to whoever holds the rest.
                signature = value.rsplit(".", 1)[1]
                if len(signature) >= 16:
                    self.values.add(signature)
            if value.startswith("nxt_") and len(value) > 13:
                self.values.add(value[13:])  # the secret part of an API key

    def found_in(self, text: str) -> list[str]:
        return sorted(v[:24] + "..." for v in self.values if v in text)


@pytest.fixture(scope="module")
def secrets_sent() -> Secrets:
    found = Secrets()
    found.add(TEST_JWT_SECRET, PASSWORD, BAD_PASSWORD, OTHER_SECRET)
    return found


@pytest.fixture(scope="module")
def urls(functions_db: Seeded, functions_ts: str) -> dict[str, str]:
    return {
        "db": with_password(functions_db.url, PASSWORD),
        "ts": with_password(functions_ts, PASSWORD),
        "dead": f"postgresql://nxt_ts:{PASSWORD}@127.0.0.1:{free_port()}/gone",
        "malformed db": with_password(functions_db.url, BAD_PASSWORD, "nxt"),
        "malformed ts": with_password(functions_ts, BAD_PASSWORD, "nxt"),
    }


@dataclass
class Evidence:
    apis: dict[str, Api]
    bodies: dict[str, list[str]]  # instance -> response bodies and headers
    commands: dict[str, str]  # command -> its whole output


def run_nxt(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "nxt_cli.main", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def evidence(urls: dict[str, str], functions_db: Seeded, secrets_sent: Secrets,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Evidence]:
    """`nxt` commands a developer runs and three `nxt serve` instances, all with the URLs above,
    run at once; each instance is driven with secrets everywhere, a thread per function."""
    secrets_sent.add(*urls.values())
    runs = {
        "invoke freshness-check": (["invoke", "freshness-check"], urls["db"], urls["ts"]),
        "invoke snapshot-meters, time-series down": (["invoke", "snapshot-meters"], urls["db"],
                                                     urls["dead"]),
        "invoke freshness-check, malformed urls": (["invoke", "freshness-check"],
                                                   urls["malformed db"], urls["malformed ts"]),
        "db migrate": (["db", "migrate"], urls["db"], urls["ts"]),
        "db migrate, malformed url": (["db", "migrate"], urls["malformed db"],
                                      urls["malformed ts"]),
    }
    procs = {name: run_nxt(args, serve_env(db, ts, DB_POOL_TIMEOUT="0.5"))
             for name, (args, db, ts) in runs.items()}
    logs = tmp_path_factory.mktemp("serve-logs")
    instances = {
        "healthy": serve_env(urls["db"], urls["ts"]),
        "time-series down": serve_env(urls["db"], urls["dead"], DB_POOL_TIMEOUT="0.2"),
        "malformed urls": serve_env(urls["malformed db"], urls["malformed ts"],
                                    DB_POOL_TIMEOUT="0.2"),
    }
    try:
        with serve_many({name: (env, logs / f"{name.replace(' ', '-')}.log")
                         for name, env in instances.items()}) as apis:
            tasks = [(name, function) for name in apis for function in HTTP_FUNCTIONS]
            with ThreadPoolExecutor(len(tasks)) as pool:
                texts = list(pool.map(
                    lambda task: drive(apis[task[0]], task[1], functions_db, secrets_sent,
                                       full=task[0] == "healthy"),
                    tasks))
            bodies: dict[str, list[str]] = {name: [] for name in apis}
            for (name, _), found in zip(tasks, texts, strict=True):
                bodies[name] += found
            commands = {name: proc.communicate(timeout=120)[0] for name, proc in procs.items()}
            yield Evidence(apis, bodies, commands)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()


def drive(api: Api, name: str, functions_db: Seeded, sent: Secrets, full: bool) -> list[str]:
    """Requests to function `name` with credentials, and secrets in the query, path, headers
    and body; the response bodies (and headers but the request id, which the caller chose).
    Not `full`: the credentials that reach the database, and the secrets in places."""
    key = functions_db.api_keys[0][1]
    tokens = {
        "operator": api.token(OPERATOR_ID), "lender": api.token(LENDER_ID),
        "developer": api.token(DEV_A_ID), "aggregator": api.token(AGGREGATOR_ID),
        "service": api.token(role="service_role"), "anon": api.token(role="anon"),
        "expired": api.token(OPERATOR_ID, expires_in=-3600),
        "forged": mint_token(OTHER_SECRET, role="service_role", audience=None),
        "alg none": unsigned({"alg": "none"}, operator_claims()),
        "bad header": segment({"alg": "HS256", "kid": TEST_JWT_SECRET}) + "."
                      + segment(operator_claims(note=PASSWORD)) + ".c2ln",
    }
    basic = base64.b64encode(f"postgres:{PASSWORD}".encode()).decode()
    sb_key = f"sb_secret_{OTHER_SECRET[-32:]}"
    sent.add(key, basic, sb_key, *tokens.values())
    credentials: list[dict[str, str]] = [
        *({"Authorization": f"Bearer {t}"} for t in tokens.values()),
        {"X-API-Key": key}, {"Authorization": f"Bearer {key}"},
        {"Authorization": f"Bearer {key[:-2]}xy"}, {"X-API-Key": key + "0"},
        {"Authorization": f"Bearer {TEST_JWT_SECRET}"}, {"Authorization": f"Basic {basic}"},
        {"Authorization": f"Bearer {sb_key}"},
        {"apikey": tokens["service"], "Cookie": f"sb-access-token={tokens['operator']}"},
        {"Authorization": f"Bearer {tokens['developer']}", "X-Request-Id": key,
         "Proxy-Authorization": f"Bearer {tokens['service']}",
         "X-Forwarded-Authorization": f"Bearer {tokens['operator']}"},
    ]
    if not full:
        credentials = [c for c in credentials if "X-API-Key" in c or "X-Request-Id" in c
                       or c.get("Authorization", "").endswith((tokens["service"],
                                                               tokens["operator"]))]
    texts: list[str] = []

    def record(resp: Any) -> None:
        texts.append(resp.text)
        texts.extend(f"{k}: {v}" for k, v in resp.headers.items() if k.lower() != "x-request-id")

    method, path, kwargs = FUNCTION_REQUESTS[name]
    for headers in credentials:
        record(api.http.request(method, path, headers=headers, **kwargs))
    in_query = {"access_token": tokens["service"], "apikey": key, "password": PASSWORD,
                "secret": TEST_JWT_SECRET,
                "database_url": with_password("postgresql://h/d", PASSWORD)}
    for headers in credentials[:3]:
        record(api.http.request(method, path, headers=headers, json=kwargs.get("json"),
                                params={**kwargs.get("params", {}), **in_query}))
    service = {"Authorization": f"Bearer {tokens['service']}"}
    # Recognisable credentials only: a plain string in a path is a path to the access log.
    for tail in (tokens["operator"], key, f"1/{tokens['service']}"):
        record(api.http.request(method, f"{path}/{tail}", headers=service))
    if name == "orders":
        for body in (
            {"meter_id": tokens["operator"], "amount": PASSWORD, "currency": key,
             "payment_method": TEST_JWT_SECRET, "payment_channel": "x"},
            {"meter_id": 1, "amount": "10.00", "currency": "NGN", "payment_method": "USSD",
             "payment_channel": PASSWORD, "external_reference": tokens["service"]},
        ):
            record(api.http.post(path, json=body, headers={
                **service, "Idempotency-Key": tokens["developer"][:200]}))
        record(api.http.post(path, content=f'{{"meter_id": "{PASSWORD}'.encode(),
                             headers={**service, "Idempotency-Key": str(uuid.uuid4()),
                                      "Content-Type": "application/json"}))
    if name == "meter-readings":
        now = datetime.now(UTC).replace(microsecond=0).isoformat()
        record(api.http.post(path, headers=service, json={"readings": [
            {"meter_id": 1, "ts": now, "counter_kwh": PASSWORD},
            {"meter_id": key, "ts": TEST_JWT_SECRET, "counter_kwh": "1"},
            {"meter_id": 1, "ts": tokens["operator"], "counter_kwh": "1"}]}))
        record(api.http.post(path, content=PASSWORD.encode() + b"\xff",
                             headers={**service, "Content-Type": "application/json"}))
    return texts


INSTANCES = ("healthy", "time-series down", "malformed urls")


def test_the_instances_served_and_refused_as_expected(evidence: Evidence) -> None:
    healthy = evidence.apis["healthy"]
    ok = healthy.get("/functions/v1/customers", token=healthy.token(OPERATOR_ID))
    assert ok.status_code == 200, "the password in the URL is accepted (trust auth)"
    down = evidence.apis["time-series down"]
    resp = down.get("/functions/v1/freshness", token=down.token(OPERATOR_ID))
    assert resp.status_code == 503 and resp.headers["retry-after"]
    broken = evidence.apis["malformed urls"]
    resp = broken.get("/functions/v1/customers", token=broken.token(OPERATOR_ID))
    assert resp.status_code in (500, 503)
    assert all(evidence.bodies.values())


@pytest.mark.parametrize("instance", INSTANCES)
def test_no_secret_in_the_log_of_a_served_instance(evidence: Evidence, secrets_sent: Secrets,
                                                  instance: str) -> None:
    log = evidence.apis[instance].log_path.read_text()
    assert log.count('"logger": "shared.web.access"') > 30, "every request writes an access line"
    assert secrets_sent.found_in(log) == []
    assert credential_shapes(log) == []


@pytest.mark.parametrize("instance", INSTANCES)
def test_no_secret_in_an_error_body(evidence: Evidence, secrets_sent: Secrets,
                                    instance: str) -> None:
    assert secrets_sent.found_in("\n".join(evidence.bodies[instance])) == []


def test_no_secret_in_the_output_of_nxt_commands(evidence: Evidence,
                                                 secrets_sent: Secrets) -> None:
    output = evidence.commands
    assert "up to date" in output["db migrate"]
    assert '"job":"freshness-check"' in output["invoke freshness-check"]
    leaks = {name: secrets_sent.found_in(out) for name, out in output.items()}
    assert {name: found for name, found in leaks.items() if found} == {}
    assert {name: credential_shapes(out) for name, out in output.items()
            if credential_shapes(out)} == {}


# Anything shaped like a credential: a JWT, one of our API keys in full, a URL with a password
# that is not masked, a bearer value that is not redacted.
SHAPES = {
    "jwt": re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"),
    "api key": re.compile(r"nxt_[a-z2-7]{8}_[A-Za-z0-9_-]{43}"),
    "url password": re.compile(r"[a-z]+://[^\s:/@\"']+:(?!\*\*\*@)[^\s@/\"']+@"),
    "bearer": re.compile(r"(?i)bearer\s+(?!\[redacted\])[A-Za-z0-9._~+/-]{8,}"),
}


def credential_shapes(text: str) -> list[str]:
    return [f"{name}: {m.group(0)[:20]}..." for name, rx in SHAPES.items()
            for m in rx.finditer(text)]


def test_the_shared_instance_log_of_the_whole_session_holds_no_credential(
        api: Api, evidence: Evidence) -> None:
    """Every function test of this session so far went through the shared `nxt serve`."""
    log = api.log_path.read_text()
    assert TEST_JWT_SECRET not in log
    assert credential_shapes(log) == []


def test_the_scan_finds_what_it_looks_for() -> None:
    """The searches above would see a leak: each pattern finds its kind of secret."""
    from shared.auth.api_keys import generate_api_key

    key = generate_api_key().plaintext
    token = mint_token(TEST_JWT_SECRET, role="service_role", audience=None)
    sample = f"x {token} y {key} postgresql://u:{PASSWORD}@h/db Bearer abcdefgh123"
    assert {f.split(":")[0] for f in credential_shapes(sample)} == set(SHAPES)
    found = Secrets()
    found.add(token, key, PASSWORD)
    # The token and its signature, the key and its secret part, the password.
    assert len(found.found_in(sample)) == 5


@pytest.mark.parametrize("url", [f"postgresql://u:{BAD_PASSWORD}@h/db",
                                 f"postgresql://u:{PASSWORD}%00@h/db",
                                 f"postgresql://u:{PASSWORD}@h/db?password={PASSWORD}%"])
def test_a_url_libpq_would_quote_back_is_refused_without_its_value(url: str) -> None:
    from shared.settings import Settings, SettingsError

    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"DATABASE_URL": url})
    assert "DATABASE_URL" in str(refused.value)
    assert PASSWORD not in str(refused.value) and BAD_PASSWORD not in str(refused.value)
    escaped = f"postgresql://u:{BAD_PASSWORD.replace('%', '%25')}@h/db"
    assert Settings.from_env({"DATABASE_URL": escaped}).database_url == escaped

"""Credentials over real HTTP, against every HTTP function: a matrix of JWT attacks (on the
shared `nxt serve`, HS256 only, and on instances of this module's own that also trust a JWKS
served from a thread on loopback), a JWKS outage, Supabase's sb_ keys, and our API keys
(unknown, locked, revoked, and the timing of a wrong key against a wrong prefix).

There is no cache of API-key lookups (shared/auth/key_lookup.py looks every request's key up by its
hash), so the revocation bound is zero: the first request after the revoking transaction
commits is refused, which is what the revocation tests assert.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from nxt_cli.seed import AGGREGATOR_ID, DEV_A_ID, OPERATOR_ID, create_api_key
from nxt_cli.tokens import mint_token
from shared.auth.api_keys import generate_api_key, hash_api_key
from shared.auth.errors import (
    MSG_ALGORITHM,
    MSG_AUDIENCE,
    MSG_EXPIRED,
    MSG_MALFORMED,
    MSG_NOT_YET_VALID,
    MSG_SIGNATURE,
    MSG_TOO_LARGE,
    MSG_UNAVAILABLE,
    MSG_UNKNOWN_KEY,
)
from tests.conftest import TEST_JWT_SECRET, Api, Seeded
from tests.support.security_support import (
    API_KEY_FUNCTIONS,
    FUNCTION_REQUESTS,
    HTTP_FUNCTIONS,
    JWKSServer,
    Keys,
    b64url,
    call,
    hs256_raw,
    operator_claims,
    segment,
    serve_env,
    serve_many,
    service_claims,
    sign,
    unsigned,
)

pytestmark = [pytest.mark.db,
              pytest.mark.filterwarnings("ignore:The HMAC key is .* below the minimum")]

CONSUMPTION = FUNCTION_REQUESTS["meter-consumption"][1]
CONSUMPTION_PARAMS = FUNCTION_REQUESTS["meter-consumption"][2]["params"]
SB_MESSAGE = "invalid JWT: Supabase API keys (sb_...) are not JWTs"
SB_KEYS = ("sb_publishable_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6",
           "sb_secret_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4",
           "sb_secret_abcdefghijklmnopqrstuvwxyz012")

# Every token and key this module sends, for the check that none of them reaches a log line.
SENT: set[str] = set()


# -- fixtures -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys.generate()


@pytest.fixture(scope="module")
def jwks_server(keys: Keys) -> Iterator[JWKSServer]:
    server = JWKSServer(keys.jwks()).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def attacker_jwks(keys: Keys) -> Iterator[JWKSServer]:
    """The attacker's own JWKS, named by `jku` headers: the functions must never fetch it."""
    server = JWKSServer({"keys": [keys.public_jwk(keys.attacker, "attacker")]}).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def jwks_apis(functions_db: Seeded, functions_ts: str, jwks_server: JWKSServer,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Api]]:
    """Two `nxt serve` instances trusting HS256 and the JWKS: `warm` fetches it while it is up,
    `cold` is sent no asymmetric token until the JWKS is down."""
    logs = tmp_path_factory.mktemp("serve-jwks")
    env = serve_env(functions_db.url, functions_ts, SUPABASE_JWKS_URL=jwks_server.url)
    with serve_many({"warm": (env, logs / "warm.log"), "cold": (env, logs / "cold.log")}) as apis:
        yield apis


@pytest.fixture(scope="module")
def own_key(functions_db: Seeded) -> Iterator[str]:
    """An aggregator API key of this module's own, so locking and revoking it disturbs nobody."""
    with psycopg.connect(functions_db.url) as conn:
        key = create_api_key(conn, AGGREGATOR_ID, "security tests")
    SENT.add(key)
    try:
        yield key
    finally:
        with psycopg.connect(functions_db.url) as conn:
            conn.execute("delete from api_keys where key_hash = %s", (hash_api_key(key),))


def bearer(token: str) -> dict[str, str]:
    SENT.add(token)
    return {"Authorization": f"Bearer {token}"}


# -- the attack matrix ----------------------------------------------------------------------------

Case = tuple[str, dict[str, Any], tuple[str, ...]]  # name, headers, acceptable error messages


def attacks(keys: Keys, attacker_url: str) -> list[Case]:
    """Every bad credential, each with the refusal messages that name its actual fault."""
    now = int(time.time())
    secret = TEST_JWT_SECRET.encode()
    hs = {"alg": "HS256", "typ": "JWT"}
    good = operator_claims()
    svc = service_claims()
    valid = hs256_raw(hs, good, secret)
    rs_hdr = {"alg": "RS256", "typ": "JWT", "kid": keys.rsa_kid}
    rsa_jwk = keys.public_jwk(keys.rsa, keys.rsa_kid)
    attacker_jwk = keys.public_jwk(keys.attacker, "attacker")
    # RS256/ES256 tokens are refused as "unsupported" where no JWKS is configured.
    rs_fault = (MSG_ALGORITHM,)
    cases: list[Case] = [
        ("missing", {}, ()),
        ("empty authorization", {"Authorization": ""}, ()),
        ("bearer without token", {"Authorization": "Bearer"}, ()),
        ("basic with the secret", {"Authorization": "Basic " + base64.b64encode(
            b"service_role:" + secret).decode()}, ()),
        ("token without scheme", {"Authorization": valid}, ()),
        ("one segment", {"Authorization": "Bearer abcdef"}, (MSG_MALFORMED,)),
        ("two segments", {"Authorization": "Bearer abc.def"}, (MSG_MALFORMED,)),
        ("four segments", {"Authorization": f"Bearer {valid}.x"}, (MSG_MALFORMED,)),
        ("bad base64", {"Authorization": "Bearer e$J.a.b"}, (MSG_MALFORMED,)),
        ("non-ascii", {"Authorization": b"Bearer \xc3\xa9yJ.\xff.\xfe"}, (MSG_MALFORMED,)),
        ("header not json", {"Authorization": "Bearer " + ".".join(
            (b64url(b"not json"), segment(good), "c2ln"))}, (MSG_MALFORMED,)),
        ("header is an array", {"Authorization": "Bearer " + ".".join(
            (segment([1]), segment(good), "c2ln"))}, (MSG_MALFORMED,)),
        ("payload not json, signed", {"Authorization": "Bearer " + hs256_raw(
            hs, None, secret, raw_payload="bm90IGpzb24")}, (MSG_MALFORMED,)),
        ("payload an array, signed", {"Authorization": "Bearer " + hs256_raw(
            hs, [good], secret)}, (MSG_MALFORMED,)),
        ("alg none", {"Authorization": "Bearer " + unsigned({"alg": "none"}, svc)},
         (MSG_ALGORITHM,)),
        ("alg None", {"Authorization": "Bearer " + unsigned({"alg": "None"}, good)},
         (MSG_ALGORITHM,)),
        ("alg NONE with kid", {"Authorization": "Bearer " + unsigned(
            {"alg": "NONE", "kid": keys.rsa_kid}, good)}, (MSG_ALGORITHM,)),
        ("alg none with a signature", {"Authorization": "Bearer " + unsigned(
            {"alg": "none"}, svc, valid.rsplit(".", 1)[1])}, (MSG_ALGORITHM,)),
        ("alg missing", {"Authorization": "Bearer " + hs256_raw({"typ": "JWT"}, good, secret)},
         (MSG_ALGORITHM,)),
        ("HS512 with the secret", {"Authorization": "Bearer " + sign(good, secret, "HS512")},
         (MSG_ALGORITHM,)),
        ("PS256", {"Authorization": "Bearer " + sign(good, keys.rsa, "PS256",
                                                     kid=keys.rsa_kid)}, (MSG_ALGORITHM,)),
        ("HS256 keyed with the RSA public PEM", {"Authorization": "Bearer " + hs256_raw(
            {"alg": "HS256", "kid": keys.rsa_kid}, svc, keys.public_pem(keys.rsa))},
         (MSG_SIGNATURE,)),
        ("HS256 keyed with the EC public PEM", {"Authorization": "Bearer " + hs256_raw(
            {"alg": "HS256", "kid": keys.ec_kid}, svc, keys.public_pem(keys.ec))},
         (MSG_SIGNATURE,)),
        ("HS256 keyed with the RSA public DER", {"Authorization": "Bearer " + hs256_raw(
            {"alg": "HS256", "kid": keys.rsa_kid}, svc, keys.public_der(keys.rsa))},
         (MSG_SIGNATURE,)),
        ("HS256 keyed with the JWK JSON", {"Authorization": "Bearer " + hs256_raw(
            {"alg": "HS256", "kid": keys.rsa_kid}, svc, json.dumps(rsa_jwk).encode())},
         (MSG_SIGNATURE,)),
        ("HS256 keyed with the JWK modulus", {"Authorization": "Bearer " + hs256_raw(
            {"alg": "HS256", "kid": keys.rsa_kid}, svc, rsa_jwk["n"].encode())},
         (MSG_SIGNATURE,)),
        ("wrong secret", {"Authorization": "Bearer " + mint_token(
            "another-secret-that-is-long-enough-0123456789", role="service_role",
            audience=None)}, (MSG_SIGNATURE,)),
        ("empty secret, kid path trick", {"Authorization": "Bearer " + hs256_raw(
            {"alg": "HS256", "kid": "../../../../dev/null"}, svc, b"")}, (MSG_SIGNATURE,)),
        ("tampered payload", {"Authorization": "Bearer " + ".".join((
            valid.split(".")[0], segment(svc), valid.split(".")[2]))}, (MSG_SIGNATURE,)),
        ("expired", {"Authorization": "Bearer " + hs256_raw(hs, operator_claims(
            exp=now - 3600, iat=now - 7200), secret)}, (MSG_EXPIRED,)),
        ("expired past the leeway", {"Authorization": "Bearer " + hs256_raw(
            hs, service_claims(exp=now - 90), secret)}, (MSG_EXPIRED,)),
        ("no exp", {"Authorization": "Bearer " + hs256_raw(hs, service_claims(exp=None),
                                                          secret)}, (MSG_MALFORMED,)),
        ("exp as a string", {"Authorization": "Bearer " + hs256_raw(hs, service_claims(
            exp="9999999999"), secret)}, (MSG_MALFORMED,)),
        ("not yet valid", {"Authorization": "Bearer " + hs256_raw(hs, operator_claims(
            nbf=now + 3600), secret)}, (MSG_NOT_YET_VALID,)),
        ("issued in the future", {"Authorization": "Bearer " + hs256_raw(hs, operator_claims(
            iat=now + 3600), secret)}, (MSG_NOT_YET_VALID, MSG_MALFORMED)),
        ("wrong audience", {"Authorization": "Bearer " + hs256_raw(hs, operator_claims(
            aud="someone-else"), secret)}, (MSG_AUDIENCE,)),
        ("audience list without ours", {"Authorization": "Bearer " + hs256_raw(
            hs, operator_claims(aud=["a", "b"]), secret)}, (MSG_AUDIENCE,)),
        ("authenticated without aud", {"Authorization": "Bearer " + hs256_raw(
            hs, operator_claims(aud=None), secret)}, (MSG_AUDIENCE,)),
        ("no role", {"Authorization": "Bearer " + hs256_raw(hs, operator_claims(role=None),
                                                           secret)}, (MSG_MALFORMED,)),
        ("unknown kid", {"Authorization": "Bearer " + sign(good, keys.rsa, "RS256",
                                                          kid="no-such-kid")},
         (MSG_UNKNOWN_KEY, *rs_fault)),
        ("RS256 without kid", {"Authorization": "Bearer " + sign(good, keys.rsa, "RS256")},
         (MSG_UNKNOWN_KEY, *rs_fault)),
        ("RS256 by another key, known kid", {"Authorization": "Bearer " + sign(
            good, keys.attacker, "RS256", kid=keys.rsa_kid)}, (MSG_SIGNATURE, *rs_fault)),
        ("ES256 under the RSA kid", {"Authorization": "Bearer " + sign(
            good, keys.ec, "ES256", kid=keys.rsa_kid)}, (MSG_UNKNOWN_KEY, *rs_fault)),
        ("RS256 under the EC kid", {"Authorization": "Bearer " + sign(
            good, keys.rsa, "RS256", kid=keys.ec_kid)}, (MSG_UNKNOWN_KEY, *rs_fault)),
        ("embedded jwk header", {"Authorization": "Bearer " + sign(
            good, keys.attacker, "RS256", kid="attacker", jwk=attacker_jwk)},
         (MSG_UNKNOWN_KEY, *rs_fault)),
        ("jku header", {"Authorization": "Bearer " + sign(
            good, keys.attacker, "RS256", kid="attacker", jku=attacker_url)},
         (MSG_UNKNOWN_KEY, *rs_fault)),
        ("x5u header", {"Authorization": "Bearer " + sign(
            good, keys.attacker, "RS256", kid="attacker", x5u=attacker_url)},
         (MSG_UNKNOWN_KEY, *rs_fault)),
        ("oversized, 20 KB", {"Authorization": "Bearer " + segment(rs_hdr)
                              + "." + "A" * 20_000 + ".c2ln"}, (MSG_TOO_LARGE,)),
        ("oversized, 64 KB", {"Authorization": "Bearer " + segment(rs_hdr)
                              + "." + "A" * 65_536 + ".c2ln"}, (MSG_TOO_LARGE,)),
        ("oversized and validly signed", {"Authorization": "Bearer " + hs256_raw(
            hs, operator_claims(padding="x" * 20_000), secret)}, (MSG_TOO_LARGE,)),
    ]
    cases += [(f"Supabase key {key[:10]}", {"Authorization": f"Bearer {key}"}, (SB_MESSAGE,))
              for key in SB_KEYS]
    for _, headers, _ in cases:
        value = headers.get("Authorization")
        if isinstance(value, str) and " " in value:
            SENT.add(value.split(" ", 1)[1].strip())
    return cases


def check(resp: Any, case: str, messages: tuple[str, ...], statuses: tuple[int, ...] = (401,)
          ) -> str | None:
    """None when `resp` is the expected refusal, else what is wrong with it."""
    if resp.status_code not in statuses:
        return f"{case}: {resp.status_code} {resp.text[:120]}"
    if resp.status_code == 431:
        return None
    try:
        error = resp.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"{case}: no JSON error body: {resp.text[:120]}"
    if messages and error not in messages:
        return f"{case}: refused for the wrong reason: {error!r}, expected one of {messages}"
    if resp.status_code == 401 and not resp.headers.get("www-authenticate", "").startswith(
            "Bearer"):
        return f"{case}: 401 without WWW-Authenticate: Bearer"
    return None


def run_matrix(target: Api, name: str, cases: list[Case]) -> list[str]:
    problems = []
    for case, headers, messages in cases:
        statuses = (401, 431) if case.startswith("oversized") else (401,)
        problem = check(call(target, name, headers), case, messages, statuses)
        if problem:
            problems.append(problem)
    return problems


def test_valid_asymmetric_tokens_pass_where_a_jwks_is_configured(
        keys: Keys, jwks_apis: dict[str, Api], jwks_server: JWKSServer) -> None:
    warm = jwks_apis["warm"]
    rs = sign(operator_claims(), keys.rsa, "RS256", kid=keys.rsa_kid)
    es = sign(operator_claims(), keys.ec, "ES256", kid=keys.ec_kid)
    svc = sign(service_claims(), keys.rsa, "RS256", kid=keys.rsa_kid)
    for token in (rs, es):
        for name in ("customers", "orders", "meter-consumption", "freshness"):
            resp = call(warm, name, bearer(token))
            assert resp.status_code == 200, (name, resp.text)
    resp = call(warm, "meter-readings", bearer(svc))
    assert resp.status_code not in (401, 403, 500, 503), resp.text
    assert jwks_server.hits and set(jwks_server.hits) == {"/jwks.json"}


@pytest.mark.parametrize("name", HTTP_FUNCTIONS)
def test_valid_hs256_tokens_pass_the_gate(api: Api, name: str) -> None:
    """The control of the matrix: a genuine service-role token is let through."""
    resp = call(api, name, bearer(api.token(role="service_role")))
    assert resp.status_code not in (401, 403, 500, 503), resp.text


@pytest.mark.parametrize("instance", ["hs256-only", "with-jwks"])
@pytest.mark.parametrize("name", HTTP_FUNCTIONS)
def test_every_bad_jwt_is_refused_with_401(api: Api, jwks_apis: dict[str, Api], keys: Keys,
                                           attacker_jwks: JWKSServer, name: str,
                                           instance: str) -> None:
    target = api if instance == "hs256-only" else jwks_apis["warm"]
    cases = attacks(keys, attacker_jwks.url)
    assert run_matrix(target, name, cases) == []
    # The harness itself: a genuine token in the matrix is reported, not passed over.
    control = ("control", bearer(target.token(role="service_role")), ())
    assert len(run_matrix(target, name, [control])) == 1
    assert attacker_jwks.hits == [], "a jku/x5u header made a function fetch a key"


@pytest.mark.parametrize("role", ["postgres", "supabase_admin", "supabase_auth_admin",
                                  "authenticator", "Service_Role", "service_role ", "ANON"])
def test_a_signed_token_with_a_role_the_database_does_not_serve_is_403(api: Api,
                                                                       role: str) -> None:
    """Supabase lets admins give users custom roles; requests run only as anon,
    authenticated or service_role, so any other role is refused, never a 500 and never
    treated as a user of its organization."""
    token = mint_token(TEST_JWT_SECRET, role=role, organization_id=OPERATOR_ID,
                       organization_type="SOLAR_DEVELOPER", audience="authenticated")
    for name in HTTP_FUNCTIONS:
        resp = call(api, name, bearer(token))
        assert resp.status_code == 403, (name, resp.status_code, resp.text)


# -- API keys at the JWT gate, Supabase's sb_ keys --------------------------------------------

@pytest.mark.parametrize("name", [n for n in HTTP_FUNCTIONS if n not in API_KEY_FUNCTIONS])
def test_api_keys_never_pass_a_verify_jwt_gate(api: Api, functions_db: Seeded,
                                               name: str) -> None:
    key = functions_db.api_keys[0][1]
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}, {"apikey": key},
                    *({"Authorization": f"Bearer {k}"} for k in SB_KEYS),
                    *({"apikey": k} for k in SB_KEYS), *({"X-API-Key": k} for k in SB_KEYS)):
        resp = call(api, name, headers)
        assert resp.status_code == 401, (headers, resp.text)


def test_supabase_keys_are_not_api_keys_of_meter_consumption(api: Api) -> None:
    for key in SB_KEYS:
        for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key},
                        {"apikey": key}):
            resp = call(api, "meter-consumption", headers)
            assert resp.status_code == 401, (headers, resp.text)
    resp = call(api, "meter-consumption", {"Authorization": f"Bearer {SB_KEYS[1]}"})
    assert resp.json()["error"] == SB_MESSAGE


def test_a_bad_jwt_is_refused_even_beside_a_valid_api_key(api: Api, functions_db: Seeded,
                                                          keys: Keys) -> None:
    """meter-consumption has verify_jwt = false but never ignores a bad JWT it is sent."""
    key = functions_db.api_keys[0][1]
    assert call(api, "meter-consumption", {"X-API-Key": key}).status_code == 200
    for case, headers, _ in attacks(keys, "https://attacker.invalid/jwks.json"):
        if "Authorization" not in headers or case.startswith(("Supabase", "empty", "bearer",
                                                               "basic", "token without")):
            continue
        resp = call(api, "meter-consumption", {**headers, "X-API-Key": key})
        assert resp.status_code in (401, 431), (case, resp.text)


# -- API keys -------------------------------------------------------------------------------------

def variants(key: str) -> dict[str, str]:
    """Keys that are not `key`: near misses first, then ones of other shapes."""
    prefix, secret = key[:12], key[13:]
    flipped = secret[:20] + ("B" if secret[20] != "B" else "C") + secret[21:]
    other = generate_api_key().plaintext
    found = {
        "unknown, well formed": other,
        "right prefix, wrong secret": f"{prefix}_{other[13:]}",
        "wrong prefix, right secret": f"{other[:12]}_{secret}",
        "one character off": f"{prefix}_{flipped}",
        "upper-case prefix": key[:4] + key[4:12].upper() + key[12:],
        "truncated": key[:-1],
        "extended": key + "A",
        "prefix only": prefix,
        "hex prefix, unknown": "nxt_0123abcd_" + other[13:],
        "nxt_ alone": "nxt_",
        "10 KB": key + "A" * 10_000,
    }
    return {case: value for case, value in found.items() if value != key}


@pytest.mark.parametrize("where", ["x-api-key", "bearer"])
def test_unknown_and_malformed_api_keys_are_401(api: Api, own_key: str, where: str) -> None:
    problems = []
    for case, value in variants(own_key).items():
        SENT.add(value)
        headers = {"X-API-Key": value} if where == "x-api-key" else {
            "Authorization": f"Bearer {value}"}
        resp = call(api, "meter-consumption", headers)
        if resp.status_code != 401:
            problems.append(f"{case}: {resp.status_code} {resp.text[:100]}")
    assert problems == []
    assert call(api, "meter-consumption", {"X-API-Key": own_key}).status_code == 200


def set_flag(url: str, sql: str, params: tuple[Any, ...]) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(sql, params)


def test_a_locked_key_is_refused_at_once_and_unlocking_restores_it(
        api: Api, functions_db: Seeded, own_key: str) -> None:
    digest = hash_api_key(own_key)
    headers = {"X-API-Key": own_key}
    assert call(api, "meter-consumption", headers).status_code == 200
    set_flag(functions_db.url, "update api_keys set is_locked = true where key_hash = %s",
             (digest,))
    try:
        for _ in range(5):
            resp = call(api, "meter-consumption", headers)
            assert resp.status_code == 401
            assert resp.json()["error"] == "API key is locked"
    finally:
        set_flag(functions_db.url, "update api_keys set is_locked = false where key_hash = %s",
                 (digest,))
    assert call(api, "meter-consumption", headers).status_code == 200


@pytest.mark.parametrize(("what", "revoke", "restore"), [
    ("account deleted",
     "update accounts set deleted_at = now() where id = (select account_id from api_keys"
     " where key_hash = %s)",
     "update accounts set deleted_at = null where id = (select account_id from api_keys"
     " where key_hash = %s)"),
    ("organization deleted",
     "update organizations set deleted_at = now() where id = (select a.organization_id"
     " from api_keys k join accounts a on a.id = k.account_id where k.key_hash = %s)",
     "update organizations set deleted_at = null where id = (select a.organization_id"
     " from api_keys k join accounts a on a.id = k.account_id where k.key_hash = %s)"),
])
def test_a_key_whose_owner_is_deleted_is_refused_at_once(
        api: Api, functions_db: Seeded, own_key: str, what: str, revoke: str,
        restore: str) -> None:
    digest = hash_api_key(own_key)
    headers = {"X-API-Key": own_key}
    assert call(api, "meter-consumption", headers).status_code == 200
    set_flag(functions_db.url, revoke, (digest,))
    try:
        assert call(api, "meter-consumption", headers).status_code == 401, what
    finally:
        set_flag(functions_db.url, restore, (digest,))
    assert call(api, "meter-consumption", headers).status_code == 200


def test_revocation_under_load_takes_effect_with_the_commit(api: Api,
                                                            functions_db: Seeded) -> None:
    """Bound: zero. While requests with the key stream in, it is deleted; every request sent
    after the deleting transaction committed is refused."""
    import httpx

    with psycopg.connect(functions_db.url) as conn:
        key = create_api_key(conn, AGGREGATOR_ID, "revoked under load")
    SENT.add(key)
    method, path, kwargs = FUNCTION_REQUESTS["meter-consumption"]
    results: list[tuple[float, int]] = []
    stop = threading.Event()

    async def stream() -> None:
        async with httpx.AsyncClient(base_url=api.base_url, timeout=30) as client:
            async def worker() -> None:
                while not stop.is_set():
                    sent = time.monotonic()
                    resp = await client.request(method, path, headers={"X-API-Key": key},
                                                **kwargs)
                    results.append((sent, resp.status_code))
            await asyncio.gather(*(worker() for _ in range(4)))

    def wait_for(condition: Any) -> None:
        deadline = time.monotonic() + 20
        while not condition() and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.05)

    thread = threading.Thread(target=lambda: asyncio.run(stream()))
    thread.start()
    committed = float("inf")
    try:
        wait_for(lambda: sum(s == 200 for _, s in list(results)) >= 8)
        with psycopg.connect(functions_db.url) as conn:
            conn.execute("delete from api_keys where key_hash = %s", (hash_api_key(key),))
        committed = time.monotonic()
        wait_for(lambda: sum(t > committed for t, _ in list(results)) >= 20)
    finally:
        stop.set()
        thread.join(timeout=30)
    before = [s for t, s in results if t < committed]
    after = [s for t, s in results if t > committed]
    assert before and set(before) <= {200, 401}
    assert 200 in before, "the key should have worked before it was revoked"
    assert len(after) >= 20 and set(after) == {401}, after


def test_a_wrong_key_and_a_wrong_prefix_take_the_same_time(api: Api, own_key: str) -> None:
    """Medians of many interleaved requests; a lookup that compared prefixes first (or
    compared keys byte by byte) would answer the right prefix measurably later."""
    probes = {name: value for name, value in variants(own_key).items()
              if name in ("right prefix, wrong secret", "wrong prefix, right secret",
                          "one character off", "unknown, well formed")}
    SENT.update(probes.values())
    times: dict[str, list[float]] = {name: [] for name in probes}
    order = list(probes)
    for name in order:  # warm-up: connections, pool, plans
        call(api, "meter-consumption", {"X-API-Key": probes[name]})
    rng = random.Random(7)
    bodies: set[str] = set()
    for _ in range(60):
        rng.shuffle(order)
        for name in order:
            started = time.perf_counter()
            resp = call(api, "meter-consumption", {"X-API-Key": probes[name]})
            times[name].append(time.perf_counter() - started)
            assert resp.status_code == 401
            bodies.add(resp.text)
    assert len(bodies) == 1, f"the refusals differ: {bodies}"
    medians = {name: statistics.median(t) for name, t in times.items()}
    fastest, slowest = min(medians.values()), max(medians.values())
    # Generous: a loopback round trip is ~1-3 ms and the machine is shared with other tests.
    assert slowest - fastest < max(0.002, 0.5 * fastest), medians


def test_the_key_lookup_is_by_hash_only(functions_db: Seeded, own_key: str) -> None:
    """What the timing test cannot prove alone: the function sends the database nothing but
    SHA-256 of the whole key, and the database finds it by an equality on a unique index."""
    from shared.auth import key_lookup

    sent: list[tuple[Any, ...]] = []

    class Conn:
        async def execute(self, sql: str, params: tuple[Any, ...]) -> Conn:
            sent.append((sql, params))
            return self

        async def fetchone(self) -> None:
            return None

    class Db:
        def transaction(self, role: str, claims: Any = None) -> Any:
            assert role == "anon"
            from contextlib import asynccontextmanager

            @asynccontextmanager
            async def tx() -> Any:
                yield Conn()
            return tx()

    from shared.auth.errors import AuthError

    with pytest.raises(AuthError):
        asyncio.run(key_lookup.caller_from_api_key(own_key, Db()))  # type: ignore[arg-type]
    assert len(sent) == 1
    sql, params = sent[0]
    assert params == (hashlib.sha256(own_key.encode()).digest(),)
    assert "prefix" not in sql.lower()
    with psycopg.connect(functions_db.url) as conn:
        body = conn.execute("select pg_get_functiondef('app.api_key_lookup(bytea)'::regprocedure)"
                            ).fetchone()[0]  # type: ignore[index]
        unique = conn.execute(
            "select count(*) from pg_index i join pg_attribute a on a.attrelid = i.indrelid"
            " and a.attnum = any(i.indkey) where i.indrelid = 'public.api_keys'::regclass"
            " and i.indisunique and i.indnatts = 1 and a.attname = 'key_hash'").fetchone()[0]  # type: ignore[index]
    assert "key_prefix" not in body and "k.key_hash = p_key_hash" in body
    assert unique == 1


def test_a_developer_api_key_reads_no_consumption(api: Api, functions_db: Seeded) -> None:
    with psycopg.connect(functions_db.url) as conn:
        key = create_api_key(conn, DEV_A_ID, "developer key")
    SENT.add(key)
    try:
        for name in HTTP_FUNCTIONS:
            wanted = 403 if name in API_KEY_FUNCTIONS else 401
            assert call(api, name, {"X-API-Key": key}).status_code == wanted, name
    finally:
        set_flag(functions_db.url, "delete from api_keys where key_hash = %s",
                 (hash_api_key(key),))


# -- a JWKS that cannot be fetched (runs last: it stops the JWKS server) -------------------------

def test_jwks_outage_is_503_and_a_cached_key_set_keeps_working(
        keys: Keys, jwks_server: JWKSServer, jwks_apis: dict[str, Api], api: Api) -> None:
    warm, cold = jwks_apis["warm"], jwks_apis["cold"]
    rs = sign(operator_claims(), keys.rsa, "RS256", kid=keys.rsa_kid)
    es = sign(operator_claims(), keys.ec, "ES256", kid=keys.ec_kid)
    for token in (rs, es):
        assert call(warm, "customers", bearer(token)).status_code == 200
    jwks_server.stop()

    hs = bearer(mint_token(TEST_JWT_SECRET, role="authenticated", organization_id=OPERATOR_ID,
                           organization_type="SOLAR_DEVELOPER"))
    problems = []
    for name in HTTP_FUNCTIONS:
        for token in (rs, es):
            resp = call(warm, name, bearer(token))
            # The operator: 200, or 403 from meter-readings (service role only).
            if resp.status_code not in (200, 403):
                problems.append(f"warm {name}: cached key refused: {resp.status_code}")
        started = time.monotonic()
        resp = call(cold, name, bearer(rs))
        elapsed = time.monotonic() - started
        if (resp.status_code != 503 or not resp.headers.get("retry-after", "").isdigit()
                or resp.json() != {"error": MSG_UNAVAILABLE}):
            problems.append(f"cold {name}: {resp.status_code} {resp.headers} {resp.text}")
        if elapsed > 10:  # no hang: a refused connection, no retries on the request path
            problems.append(f"cold {name}: took {elapsed:.1f}s")
        # HS256 does not depend on the JWKS.
        if call(cold, name, hs).status_code not in (200, 403):
            problems.append(f"cold {name}: HS256 token refused during the JWKS outage")
        resp = call(warm, name, bearer(sign(operator_claims(), keys.rsa, "RS256",
                                            kid="rotated-in")))
        if resp.status_code not in (401, 503):
            problems.append(f"warm {name}: unknown kid during the outage: {resp.status_code}")
        resp = call(cold, name, bearer(sign(operator_claims(), keys.attacker, "RS256",
                                            kid=keys.rsa_kid)))
        if resp.status_code != 503:
            problems.append(f"cold {name}: {resp.status_code} for a forged token")
    assert problems == []
    log = cold.log_path.read_text()
    assert "JWKS fetch failed" in log


def test_no_token_or_key_of_this_module_reaches_a_log(jwks_apis: dict[str, Api],
                                                      api: Api) -> None:
    logs = {"warm": jwks_apis["warm"].log_path.read_text(),
            "cold": jwks_apis["cold"].log_path.read_text(),
            "shared": api.log_path.read_text()}
    assert SENT, "the tests above record what they send"
    leaks = [(where, value[:40]) for where, text in logs.items() for value in SENT
             if len(value) >= 20 and value in text]
    leaks += [(where, "jwt secret") for where, text in logs.items() if TEST_JWT_SECRET in text]
    assert leaks == []

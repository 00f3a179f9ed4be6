"""Helpers of the security tests (test_security_*.py): `nxt serve` instances of their own, a
local JWKS server, and JWTs made by hand, including the malformed and forged ones."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from nxt_cli.harness import PortTaken, nxt_serve, stack_env
from tests.conftest import TEST_JWT_SECRET, Api

# The HTTP functions, and a request each serves (the gate runs before any handler).
FUNCTION_REQUESTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "customers": ("GET", "/functions/v1/customers", {"params": {"size": 1}}),
    "orders": ("GET", "/functions/v1/orders", {"params": {"size": 1}}),
    "meter-consumption": ("GET", "/functions/v1/meter-consumption",
                          {"params": {"FROM": "2026-10-05T00:00:00Z",
                                      "TO": "2026-10-05T02:00:00Z", "pageLimit": 1}}),
    # The legacy URL of meter-consumption: the same code behind a gate of its own.
    "meter-consumption-2": ("GET", "/functions/v1/meter-consumption-2",
                            {"params": {"FROM": "2026-10-05T00:00:00Z",
                                        "TO": "2026-10-05T02:00:00Z", "pageLimit": 1}}),
    "meter-readings": ("POST", "/functions/v1/meter-readings", {"json": {"readings": []}}),
    "freshness": ("GET", "/functions/v1/freshness", {}),
}
HTTP_FUNCTIONS = tuple(FUNCTION_REQUESTS)
# The functions that accept API keys (verify_jwt = false).
API_KEY_FUNCTIONS = frozenset({"meter-consumption", "meter-consumption-2"})


def call(api: Api, name: str, headers: Mapping[str, Any] | None = None) -> Any:
    """One request to function `name` with exactly `headers` (no token added)."""
    method, path, kwargs = FUNCTION_REQUESTS[name]
    return api.http.request(method, path, headers=dict(headers or {}), **kwargs)


def serve_env(database_url: str, timeseries_url: str, **extra: str) -> dict[str, str]:
    """The servers' environment, with no key set or audience of this shell's: the tests
    choose those."""
    return stack_env(database_url, timeseries_url, jwt_secret=TEST_JWT_SECRET,
                     drop=("SUPABASE_JWKS_URL", "JWT_AUDIENCE"),
                     **{"DB_POOL_MAX_SIZE": "4", **extra})


def _start(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], Api]:
    """`nxt serve` on a free port. Another process may take the port between free_port() and
    the bind (the machine is shared), and then answers in its stead; so the instance proves
    itself by writing a probe's request id to its own log, and a server that could not bind is
    started again on another port."""
    for _ in range(5):
        server = nxt_serve(env, log=log_path)
        try:
            proc = server.spawn()
        except PortTaken:
            continue
        api = Api(server.url, TEST_JWT_SECRET, log_path)
        probe = f"probe-{uuid.uuid4().hex}"
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                api.http.get("/functions/v1/freshness/openapi.json", timeout=2,
                             headers={"X-Request-Id": probe})
                if probe in log_path.read_text():
                    return proc, api
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        api.http.close()
        if proc.poll() is None:
            proc.kill()
            raise TimeoutError(f"nxt serve did not answer on port {server.port}")
    raise RuntimeError("nxt serve could not bind a free port in five attempts")


@contextmanager
def serve_many(instances: Mapping[str, tuple[dict[str, str], Path]]) -> Iterator[dict[str, Api]]:
    """Start one `nxt serve` per entry (name -> (env, log path)) at once; yield their clients."""
    procs: list[subprocess.Popen[bytes]] = []
    clients: dict[str, Api] = {}
    try:
        with ThreadPoolExecutor(len(instances)) as pool:
            started = dict(zip(instances, pool.map(lambda item: _start(*item),
                                                   instances.values()), strict=True))
        for name, (proc, api) in started.items():
            procs.append(proc)
            clients[name] = api
        yield clients
    finally:
        for client in clients.values():
            client.http.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


# -- a JWKS endpoint on loopback ------------------------------------------------------------------

@dataclass
class JWKSServer:
    """Serves `document` at /jwks.json on 127.0.0.1 from a thread; `stop()` is the outage."""

    document: dict[str, Any]
    hits: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> JWKSServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.hits.append(self.path)
                body = json.dumps(owner.document).encode()
                self.send_response(200 if self.path == "/jwks.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/jwks.json"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# -- keys and tokens ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Keys:
    """An RSA and an EC signing key published in a JWKS, and an attacker's RSA key."""

    rsa: Any
    ec: Any
    attacker: Any
    rsa_kid: str = "rsa-1"
    ec_kid: str = "ec-1"

    @classmethod
    def generate(cls) -> Keys:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        return cls(rsa=rsa.generate_private_key(public_exponent=65537, key_size=2048),
                   ec=ec.generate_private_key(ec.SECP256R1()),
                   attacker=rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def public_jwk(self, key: Any, kid: str) -> dict[str, Any]:
        from cryptography.hazmat.primitives.asymmetric import rsa
        from jwt.algorithms import ECAlgorithm, RSAAlgorithm

        is_rsa = isinstance(key, rsa.RSAPrivateKey)
        algorithm = RSAAlgorithm if is_rsa else ECAlgorithm
        jwk = json.loads(algorithm.to_jwk(key.public_key()))
        jwk.update(kid=kid, use="sig", alg="RS256" if is_rsa else "ES256")
        return jwk

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk(self.rsa, self.rsa_kid),
                         self.public_jwk(self.ec, self.ec_kid)]}

    def public_pem(self, key: Any) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return key.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)

    def public_der(self, key: Any) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)


def b64url(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def segment(obj: Any) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")))


def hs256_raw(header: Any, payload: Any, key: bytes, *, raw_payload: str | None = None) -> str:
    """HS256 over any header and payload, the way an attacker builds it (no library checks)."""
    body = raw_payload if raw_payload is not None else segment(payload)
    signing_input = f"{segment(header)}.{body}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def unsigned(header: Any, payload: Any, signature: str = "") -> str:
    return f"{segment(header)}.{segment(payload)}.{signature}"


def operator_claims(**overrides: Any) -> dict[str, Any]:
    """What Supabase Auth puts in the operator's demo user's token, valid for an hour."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "role": "authenticated", "aud": "authenticated", "iat": now, "exp": now + 3600,
        "sub": "00000000-0000-4000-8000-000000000002",
        "app_metadata": {"organization_id": 2, "organization_type": "SOLAR_DEVELOPER"},
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def service_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"role": "service_role", "iss": "supabase-demo", "iat": now,
                              "exp": now + 3600}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def sign(claims: Mapping[str, Any], key: Any, alg: str, **headers: Any) -> str:
    import jwt

    return jwt.encode(dict(claims), key, algorithm=alg, headers=headers or None)

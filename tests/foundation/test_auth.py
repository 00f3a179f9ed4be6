"""shared.auth.verifier against real cryptography: real keys and signatures, a real JWKS server.

Nothing cryptographic is mocked. The only stand-in is the verifier's clock, so that cache
expiry and the refetch rate limit can be crossed without sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from nxt_cli.localkeys import supabase_local_jwt_secret
from nxt_cli.tokens import mint_token
from shared.auth.caller import Caller, caller_from_claims
from shared.auth.credentials import bearer_token
from shared.auth.errors import AuthError, AuthUnavailable
from shared.auth.verifier import JWTVerifier

SECRET = supabase_local_jwt_secret()
OTHER_SECRET = "another-secret-that-is-also-at-least-32-characters"
USER_ID = "6f1c2b9e-6a0e-4d1e-9a51-2f6b7b0b1c11"
RSA_KID = "rsa-2026"
EC_KID = "ec-2026"


# ---------------------------------------------------------------------------------------------
# Keys and helpers
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_jwk(private_key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if alg.startswith("RS") else ECAlgorithm
    jwk = json.loads(algorithm.to_jwk(private_key.public_key()))
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwk


@pytest.fixture(scope="module")
def jwks(rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    return {"keys": [public_jwk(rsa_key, RSA_KID, "RS256"), public_jwk(ec_key, EC_KID, "ES256")]}


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": USER_ID,
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": now + 3600,
        "email": "operator@example.com",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict[str, Any], key: Any, alg: str, kid: str | None = None) -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(payload, key, algorithm=alg, headers=headers)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def craft(header: Any, payload: Any, signature: bytes = b"") -> str:
    """A compact JWS assembled by hand, for tokens no library would produce."""
    return ".".join(
        [
            b64url(json.dumps(header).encode()),
            b64url(json.dumps(payload).encode()),
            b64url(signature),
        ]
    )


def hs256_by_hand(header: dict[str, Any], payload: dict[str, Any], key: bytes) -> str:
    # PyJWT refuses to use a PEM as an HMAC secret, so an attacker's token is built with hmac.
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def hs_verifier(**kwargs: Any) -> JWTVerifier:
    return JWTVerifier(hs256_secret=SECRET, **kwargs)


def refused(verifier: JWTVerifier, token: str) -> AuthError:
    with pytest.raises(AuthError) as info:
        verifier.verify(token)
    error = info.value
    assert error.status == 401
    # The client-safe message never echoes the credential, and no library exception (whose
    # message might quote it) is chained underneath.
    if len(token) > 8:
        assert token not in str(error)
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    return error


# ---------------------------------------------------------------------------------------------
# A real JWKS endpoint
# ---------------------------------------------------------------------------------------------


class JWKSServer:
    """http.server on 127.0.0.1 in a thread, serving whatever ``document``/``status`` say."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document: Any = document
        self.raw_body: bytes | None = None
        self.status = 200
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                if server.status == 302:
                    self.send_response(302)
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere.json")
                    self.end_headers()
                    return
                if server.status != 200:
                    self.send_error(server.status)
                    return
                body = server.raw_body
                if body is None:
                    body = json.dumps(server.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{port}/auth/v1/.well-known/jwks.json"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        self._stopped = False

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)


@pytest.fixture
def jwks_server(jwks: dict[str, Any]) -> Iterator[JWKSServer]:
    server = JWKSServer(jwks)
    yield server
    server.stop()


@pytest.fixture
def dead_url() -> str:
    # Bind a port, then release it: connecting to it is refused.
    server = JWKSServer({"keys": []})
    url = server.url
    server.stop()
    return url


def url_verifier(url: str, clock: FakeClock, **kwargs: Any) -> JWTVerifier:
    return JWTVerifier(hs256_secret=None, jwks_url=url, clock=clock, **kwargs)


# ---------------------------------------------------------------------------------------------
# HS256 (the project JWT secret)
# ---------------------------------------------------------------------------------------------


def test_valid_authenticated_token_gives_caller_fields() -> None:
    token = mint_token(
        SECRET, role="authenticated", sub=USER_ID, organization_id=42, organization_type="operator"
    )
    verified = hs_verifier().verify(token)
    caller = caller_from_claims(verified)

    assert caller == Caller(
        role="authenticated",
        user_id=USER_ID,
        organization_id=42,
        organization_type="operator",
        claims={},
        via="jwt",
    )
    assert caller.claims["aud"] == "authenticated"
    assert caller.api_key_id is None and caller.account_id is None
    assert not caller.is_service_role and not caller.is_anon


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42, 42),
        ("42", 42),
        ("9223372036854775807", 2**63 - 1),
        ("9223372036854775808", None),
        ("0042", 42),
        (0, None),
        (-3, None),
        ("-3", None),
        (" 42", None),
        ("4.2", None),
        (4.0, None),
        (True, None),
        ("²", None),
        ("9" * 5000, None),
        ("", None),
        (None, None),
        ({"id": 42}, None),
    ],
)
def test_organization_id_from_app_metadata(value: Any, expected: int | None) -> None:
    caller = caller_from_claims(
        {"role": "authenticated", "app_metadata": {"organization_id": value}}
    )
    assert caller.organization_id == expected


def test_organization_comes_from_app_metadata_only() -> None:
    # user_metadata is writable by the user themself and must never grant anything.
    caller = caller_from_claims(
        {
            "role": "authenticated",
            "sub": USER_ID,
            "user_metadata": {"organization_id": 7, "organization_type": "operator"},
            "app_metadata": "not an object",
        }
    )
    assert caller.organization_id is None
    assert caller.organization_type is None


def test_caller_from_claims_requires_a_role() -> None:
    with pytest.raises(AuthError):
        caller_from_claims({"sub": USER_ID})


def test_caller_is_frozen_hashable_and_keeps_claims_out_of_repr() -> None:
    caller = caller_from_claims(claims(app_metadata={"organization_id": 1}))
    assert "operator@example.com" not in repr(caller)
    hash(caller)
    with pytest.raises(AttributeError):
        caller.role = "service_role"  # type: ignore[misc]
    with pytest.raises(TypeError):
        caller.claims["role"] = "service_role"  # type: ignore[index]


def test_anon_key_without_aud_is_accepted() -> None:
    anon_key = mint_token(SECRET, role="anon", audience=None, expires_in=10 * 365 * 86400)
    verified = hs_verifier().verify(anon_key)
    assert "aud" not in verified
    assert verified["iss"] == "supabase-demo"
    caller = caller_from_claims(verified)
    assert caller.is_anon and caller.user_id is None and caller.organization_id is None


def test_service_role_key_without_aud_is_accepted() -> None:
    service_key = mint_token(SECRET, role="service_role", audience=None)
    caller = caller_from_claims(hs_verifier().verify(service_key))
    assert caller.is_service_role and not caller.is_anon


def test_authenticated_token_without_aud_is_refused() -> None:
    token = mint_token(SECRET, role="authenticated", sub=USER_ID, audience=None)
    assert refused(hs_verifier(), token).message == "token audience not accepted"


@pytest.mark.parametrize("aud", ["other-project", ["a", "b"], [], "", 7, [7]])
def test_wrong_audience_is_refused(aud: Any) -> None:
    token = sign(claims(aud=aud), SECRET, "HS256")
    assert refused(hs_verifier(), token).message == "token audience not accepted"


def test_audience_list_and_configured_audiences() -> None:
    assert hs_verifier().verify(sign(claims(aud=["x", "authenticated"]), SECRET, "HS256"))
    partner = hs_verifier(audiences=("partner",))
    assert partner.verify(sign(claims(aud="partner"), SECRET, "HS256"))
    refused(partner, sign(claims(), SECRET, "HS256"))
    # A bare string is one audience, not a set of characters.
    assert refused(
        JWTVerifier(hs256_secret=SECRET, audiences="authenticated"),
        sign(claims(aud="a"), SECRET, "HS256"),
    ).message == ("token audience not accepted")


def test_expired_token_is_refused_beyond_leeway_only() -> None:
    verifier = hs_verifier(leeway_seconds=30)
    now = int(time.time())
    assert verifier.verify(sign(claims(exp=now - 10, iat=now - 100), SECRET, "HS256"))
    token = mint_token(SECRET, role="authenticated", sub=USER_ID, expires_in=-120)
    assert refused(verifier, token).message == "token expired"


def test_nbf_and_iat_in_the_future_are_refused() -> None:
    verifier = hs_verifier(leeway_seconds=30)
    now = int(time.time())
    assert refused(verifier, sign(claims(nbf=now + 300), SECRET, "HS256")).message == (
        "token not yet valid"
    )
    assert refused(verifier, sign(claims(iat=now + 300), SECRET, "HS256")).message == (
        "token not yet valid"
    )
    assert verifier.verify(sign(claims(nbf=now + 10, iat=now + 10), SECRET, "HS256"))


@pytest.mark.parametrize(
    "payload",
    [
        claims(exp=None),
        claims(exp="9999999999"),
        claims(nbf="0"),
        claims(iat=[1]),
        claims(role=None),
        claims(role=""),
        claims(role=["service_role"]),
        claims(sub=123),
    ],
    ids=[
        "no-exp",
        "string-exp",
        "string-nbf",
        "list-iat",
        "no-role",
        "empty-role",
        "list-role",
        "int-sub",
    ],
)
def test_malformed_claims_are_refused(payload: dict[str, Any]) -> None:
    assert refused(hs_verifier(), sign(payload, SECRET, "HS256")).message == "malformed token"


def test_non_numeric_dates_are_refused() -> None:
    # PyJWT reads `true` as 1 (long expired) and "9999999999" as a date; both are refused.
    now = int(time.time())
    refused(hs_verifier(), sign(claims(exp=True), SECRET, "HS256"))
    refused(hs_verifier(), sign(claims(exp=now + 60, nbf=False), SECRET, "HS256"))
    refused(hs_verifier(), sign(claims(exp=f"{now + 60}"), SECRET, "HS256"))


def test_wrong_secret_is_refused() -> None:
    token = mint_token(OTHER_SECRET, role="authenticated", sub=USER_ID)
    assert refused(hs_verifier(), token).message == "invalid token signature"


def test_tampered_payload_is_refused() -> None:
    token = mint_token(SECRET, role="authenticated", sub=USER_ID, organization_id=1)
    header, _, signature = token.split(".")
    forged = claims(role="service_role", app_metadata={"organization_id": 2})
    tampered = f"{header}.{b64url(json.dumps(forged).encode())}.{signature}"
    assert refused(hs_verifier(), tampered).message == "invalid token signature"


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "", None, "HS384", "HS512", "PS256"])
def test_alg_none_and_other_algorithms_are_refused(alg: Any) -> None:
    token = craft({"alg": alg, "typ": "JWT"}, claims(role="service_role"))
    assert refused(hs_verifier(), token).message == "unsupported token algorithm"


def test_alg_none_with_a_signature_segment_is_refused() -> None:
    token = craft({"alg": "none"}, claims(role="service_role"), b"x")
    assert refused(hs_verifier(), token).message == "unsupported token algorithm"


def test_asymmetric_algorithms_need_a_jwks(rsa_key: rsa.RSAPrivateKey) -> None:
    token = sign(claims(), rsa_key, "RS256", kid=RSA_KID)
    assert refused(hs_verifier(), token).message == "unsupported token algorithm"


# ---------------------------------------------------------------------------------------------
# Algorithm confusion
# ---------------------------------------------------------------------------------------------


def test_hs256_signed_with_the_rsa_public_key_is_refused(
    rsa_key: rsa.RSAPrivateKey, jwks: dict[str, Any]
) -> None:
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    payload = claims(role="service_role")
    for pem in (public_pem, public_pem.strip()):
        token = hs256_by_hand({"alg": "HS256", "typ": "JWT", "kid": RSA_KID}, payload, pem)
        # With the secret configured: checked against the secret only, so the signature fails.
        both = JWTVerifier(hs256_secret=SECRET, jwks=jwks)
        assert refused(both, token).message == "invalid token signature"
        # Without a secret, HS256 is not an accepted algorithm at all.
        jwks_only = JWTVerifier(hs256_secret=None, jwks=jwks)
        assert refused(jwks_only, token).message == "unsupported token algorithm"


def test_hs256_signed_with_a_jwk_json_is_refused(jwks: dict[str, Any]) -> None:
    token = hs256_by_hand(
        {"alg": "HS256", "kid": RSA_KID},
        claims(role="service_role"),
        json.dumps(jwks["keys"][0]).encode(),
    )
    assert refused(JWTVerifier(hs256_secret=SECRET, jwks=jwks), token).message == (
        "invalid token signature"
    )


def test_oct_keys_in_the_jwks_are_never_used() -> None:
    oct_secret = b"k" * 32
    document = {"keys": [{"kty": "oct", "kid": "oct", "k": b64url(oct_secret), "alg": "HS256"}]}
    token = hs256_by_hand({"alg": "HS256", "kid": "oct"}, claims(), oct_secret)
    assert refused(JWTVerifier(hs256_secret=None, jwks=document), token).message == (
        "unsupported token algorithm"
    )
    assert refused(JWTVerifier(hs256_secret=SECRET, jwks=document), token).message == (
        "invalid token signature"
    )


# ---------------------------------------------------------------------------------------------
# RS256 / ES256 with a static JWKS
# ---------------------------------------------------------------------------------------------


def test_rs256_and_es256_valid_via_kid(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey, jwks: dict[str, Any]
) -> None:
    verifier = JWTVerifier(hs256_secret=SECRET, jwks=jwks)
    rs = verifier.verify(
        sign(claims(app_metadata={"organization_id": "9"}), rsa_key, "RS256", RSA_KID)
    )
    es = verifier.verify(sign(claims(), ec_key, "ES256", EC_KID))
    assert caller_from_claims(rs).organization_id == 9
    assert es["sub"] == USER_ID
    # HS256 keeps working next to the JWKS.
    assert verifier.verify(mint_token(SECRET, role="authenticated", sub=USER_ID))


def test_asymmetric_token_signed_by_another_key_is_refused(jwks: dict[str, Any]) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = sign(claims(role="service_role"), impostor, "RS256", RSA_KID)
    assert refused(JWTVerifier(hs256_secret=None, jwks=jwks), token).message == (
        "invalid token signature"
    )


def test_unknown_or_missing_kid_is_refused(
    rsa_key: rsa.RSAPrivateKey, jwks: dict[str, Any]
) -> None:
    verifier = JWTVerifier(hs256_secret=None, jwks=jwks)
    assert refused(verifier, sign(claims(), rsa_key, "RS256", "rotated-away")).message == (
        "unknown signing key"
    )
    assert refused(verifier, sign(claims(), rsa_key, "RS256")).message == "unknown signing key"


def test_jwk_type_must_match_the_token_algorithm(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey, jwks: dict[str, Any]
) -> None:
    verifier = JWTVerifier(hs256_secret=None, jwks=jwks)
    # RS256 header pointing at the EC key, and the reverse.
    assert refused(verifier, sign(claims(), rsa_key, "RS256", EC_KID)).message == (
        "unknown signing key"
    )
    assert refused(verifier, sign(claims(), ec_key, "ES256", RSA_KID)).message == (
        "unknown signing key"
    )


def test_jwk_declared_alg_and_curve_must_match(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    document = {
        "keys": [
            public_jwk(rsa_key, "rsa-declared-rs512", "RS512"),
            {**public_jwk(p384, "ec-p384", "ES384"), "alg": "ES256"},
            {**public_jwk(ec_key, "ec-enc", "ES256"), "use": "enc"},
            {**public_jwk(rsa_key, "rsa-no-verify", "RS256"), "key_ops": ["encrypt"]},
            {"kty": "RSA", "kid": "broken", "n": "AQAB", "e": "!!"},
            "not a key",
        ]
    }
    verifier = JWTVerifier(hs256_secret=None, jwks=document)
    for key, alg, kid in [
        (rsa_key, "RS256", "rsa-declared-rs512"),
        (p384, "ES256", "ec-p384"),
        (ec_key, "ES256", "ec-enc"),
        (rsa_key, "RS256", "rsa-no-verify"),
        (rsa_key, "RS256", "broken"),
    ]:
        # PyJWT cannot sign ES256 with a P-384 key, so that token is assembled by hand.
        if kid == "ec-p384":
            header = b64url(json.dumps({"alg": "ES256", "kid": kid}).encode())
            token = f"{header}.{b64url(json.dumps(claims()).encode())}.{b64url(b'0' * 64)}"
        else:
            token = sign(claims(), key, alg, kid)
        assert refused(verifier, token).message == "unknown signing key", kid


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_weak_rsa_key_in_the_jwks_is_refused() -> None:
    # Deliberately weak: the point is that the verifier refuses it.
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    verifier = JWTVerifier(hs256_secret=None, jwks={"keys": [public_jwk(weak, "weak", "RS256")]})
    assert refused(verifier, sign(claims(), weak, "RS256", "weak")).message == (
        "unknown signing key"
    )


def test_private_members_of_a_published_jwk_are_ignored(rsa_key: rsa.RSAPrivateKey) -> None:
    private_jwk = json.loads(RSAAlgorithm.to_jwk(rsa_key))
    private_jwk.update({"kid": "leaky", "alg": "RS256"})
    del private_jwk["key_ops"]  # to_jwk() marks a private key "sign"-only, which is honoured
    verifier = JWTVerifier(hs256_secret=None, jwks={"keys": [private_jwk]})
    assert verifier.verify(sign(claims(), rsa_key, "RS256", "leaky"))


# ---------------------------------------------------------------------------------------------
# Garbage in
# ---------------------------------------------------------------------------------------------


def test_oversized_token_is_refused_before_decoding() -> None:
    big = mint_token(SECRET, role="authenticated", sub=USER_ID, extra={"pad": "x" * 10_000})
    assert refused(hs_verifier(), big).message == "token too large"
    assert refused(hs_verifier(), "!" * 9000).message == "token too large"
    small_limit = hs_verifier(max_token_bytes=64)
    assert refused(small_limit, mint_token(SECRET, role="anon", audience=None)).message == (
        "token too large"
    )


@pytest.mark.parametrize(
    "token",
    [
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.###.$$$",
        "eyJ.eyJ.",
        "....",
        " eyJhbGciOiJIUzI1NiJ9.e30.",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc",
        "ZXlK\u00e9.eyJ.sig",
        "\udcff.a.b",
        b64url(b"not json") + ".e30.",
        b64url(b"[1, 2]") + ".e30.",
        b64url(b'"HS256"') + ".e30.",
        b64url(b"[" * 5000) + ".e30.",
        b64url(b'{"alg": "HS256", "kid": 5}') + ".e30.c2ln",
        b64url(b'{"alg": "HS256"}') + "." + b64url(b"not json") + ".c2ln",
        b64url(b'{"alg": "HS256"}') + "." + b64url(b"[1]") + ".c2ln",
        b64url(b'{"alg": "HS256"}') + ".e30.c2ln!",
        b64url(b'{"alg": "HS256"}') + ".e30.a",
    ],
)
def test_garbage_is_refused(token: str) -> None:
    refused(hs_verifier(), token)


@pytest.mark.parametrize("token", ["", None, 123, b"eyJ.eyJ.sig"])
def test_empty_or_non_string_token_is_refused(token: Any) -> None:
    with pytest.raises(AuthError) as info:
        hs_verifier().verify(token)
    assert info.value.message in ("missing bearer token", "malformed token")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi"),
        ("bearer abc", "abc"),
        ("BEARER abc", "abc"),
        ("  Bearer   abc  ", "abc"),
        ("Bearer\tabc", "abc"),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer    ", None),
        ("", None),
        (None, None),
        ("Basic dXNlcjpwYXNz", None),
        ("Token abc", None),
        ("Bearerabc", None),
        ("abc.def.ghi", None),
    ],
)
def test_bearer_token(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected


# ---------------------------------------------------------------------------------------------
# Construction, tooling, errors
# ---------------------------------------------------------------------------------------------


def test_constructor_rejects_unusable_configuration() -> None:
    with pytest.raises(ValueError):
        JWTVerifier(hs256_secret=None)
    with pytest.raises(ValueError) as info:
        JWTVerifier(hs256_secret="short-secret-value")
    assert "short-secret-value" not in str(info.value)
    with pytest.raises(ValueError):
        JWTVerifier(hs256_secret=None, jwks={"kty": "RSA"})
    for url in ("http://auth.example.com/jwks.json", "file:///etc/passwd", "ftp://x/y", "https://"):
        with pytest.raises(ValueError):
            JWTVerifier(hs256_secret=None, jwks_url=url)
    JWTVerifier(hs256_secret=None, jwks_url="https://abc.supabase.co/auth/v1/.well-known/jwks.json")
    JWTVerifier(hs256_secret=None, jwks_url="http://localhost:54321/auth/v1/.well-known/jwks.json")


def test_verifier_repr_does_not_show_the_secret() -> None:
    assert SECRET not in repr(hs_verifier())


def test_mint_token_shapes() -> None:
    decode_options = {"verify_aud": False}
    anon = jwt.decode(
        mint_token(SECRET, role="anon", audience=None), SECRET, ["HS256"], options=decode_options
    )
    assert anon["iss"] == "supabase-demo" and "aud" not in anon and "sub" not in anon
    user = jwt.decode(
        mint_token(
            SECRET,
            role="authenticated",
            sub=USER_ID,
            organization_id=3,
            organization_type="distributor",
            expires_in=60,
            extra={"app_metadata": {"provider": "email"}, "email": "a@example.com"},
        ),
        SECRET,
        ["HS256"],
        audience="authenticated",
    )
    assert user["app_metadata"] == {
        "organization_id": 3,
        "organization_type": "distributor",
        "provider": "email",
    }
    assert user["email"] == "a@example.com"
    assert user["exp"] - user["iat"] == 60
    with pytest.raises(ValueError):
        mint_token("too-short", role="anon")


def test_error_statuses() -> None:
    assert AuthError("token expired").status == 401
    assert AuthUnavailable().status == 503
    assert not issubclass(AuthUnavailable, AuthError)


# ---------------------------------------------------------------------------------------------
# JWKS from a URL
# ---------------------------------------------------------------------------------------------


def test_jwks_url_valid_tokens_and_cache(
    jwks_server: JWKSServer, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    clock = FakeClock()
    verifier = url_verifier(jwks_server.url, clock)
    assert verifier.verify(sign(claims(), rsa_key, "RS256", RSA_KID))["sub"] == USER_ID
    assert verifier.verify(sign(claims(), ec_key, "ES256", EC_KID))
    assert jwks_server.hits == 1

    clock.advance(601)  # past jwks_cache_seconds
    assert verifier.verify(sign(claims(), rsa_key, "RS256", RSA_KID))
    assert jwks_server.hits == 2


def test_unknown_kid_refetches_once_and_is_rate_limited(
    jwks_server: JWKSServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    clock = FakeClock()
    verifier = url_verifier(jwks_server.url, clock)
    assert verifier.verify(sign(claims(), rsa_key, "RS256", RSA_KID))
    assert jwks_server.hits == 1

    clock.advance(31)
    assert refused(verifier, sign(claims(), rsa_key, "RS256", "forged-1")).message == (
        "unknown signing key"
    )
    assert jwks_server.hits == 2
    # A stream of unknown kids does not become a stream of requests to the auth server.
    for n in range(5):
        clock.advance(5)
        refused(verifier, sign(claims(), rsa_key, "RS256", f"forged-{n + 2}"))
    assert jwks_server.hits == 2
    clock.advance(30)
    refused(verifier, sign(claims(), rsa_key, "RS256", "forged-9"))
    assert jwks_server.hits == 3


def test_rotated_key_is_picked_up(jwks_server: JWKSServer, rsa_key: rsa.RSAPrivateKey) -> None:
    clock = FakeClock()
    verifier = url_verifier(jwks_server.url, clock)
    assert verifier.verify(sign(claims(), rsa_key, "RS256", RSA_KID))

    new_key = ec.generate_private_key(ec.SECP256R1())
    jwks_server.document = {
        "keys": [*jwks_server.document["keys"], public_jwk(new_key, "ec-2027", "ES256")]
    }
    clock.advance(30)
    assert verifier.verify(sign(claims(), new_key, "ES256", "ec-2027"))
    assert jwks_server.hits == 2


def test_jwks_server_error_without_cache_is_unavailable(
    jwks_server: JWKSServer, rsa_key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    jwks_server.status = 500
    verifier = url_verifier(jwks_server.url, clock)
    token = sign(claims(), rsa_key, "RS256", RSA_KID)
    with caplog.at_level("WARNING", logger="shared.auth"), pytest.raises(AuthUnavailable) as info:
        verifier.verify(token)
    assert info.value.status == 503
    assert token not in str(info.value)
    assert "HTTP 500" in caplog.text and token not in caplog.text
    assert jwks_server.hits == 1

    # The endpoint recovers, but failed attempts are rate limited too.
    jwks_server.status = 200
    with pytest.raises(AuthUnavailable):
        verifier.verify(token)
    assert jwks_server.hits == 1
    clock.advance(30)
    assert verifier.verify(token)
    assert jwks_server.hits == 2


def test_jwks_server_down_without_cache_is_unavailable(
    dead_url: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier = url_verifier(dead_url, FakeClock(), jwks_fetch_timeout=1.0)
    with pytest.raises(AuthUnavailable):
        verifier.verify(sign(claims(), rsa_key, "RS256", RSA_KID))


@pytest.mark.parametrize(
    "body", [b"<html>oops</html>", b'{"keys": {}}', b"[]", b"[" * 100_000, b" " * 300_000]
)
def test_jwks_garbage_response_is_unavailable(
    jwks_server: JWKSServer, rsa_key: rsa.RSAPrivateKey, body: bytes
) -> None:
    jwks_server.raw_body = body
    verifier = url_verifier(jwks_server.url, FakeClock())
    with pytest.raises(AuthUnavailable):
        verifier.verify(sign(claims(), rsa_key, "RS256", RSA_KID))


def test_jwks_redirect_is_not_followed(jwks_server: JWKSServer, rsa_key: rsa.RSAPrivateKey) -> None:
    jwks_server.status = 302
    verifier = url_verifier(jwks_server.url, FakeClock())
    with pytest.raises(AuthUnavailable):
        verifier.verify(sign(claims(), rsa_key, "RS256", RSA_KID))
    assert jwks_server.hits == 1


def test_cached_keys_keep_working_after_the_server_goes_away(
    jwks_server: JWKSServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    clock = FakeClock()
    verifier = url_verifier(jwks_server.url, clock)
    token = sign(claims(), rsa_key, "RS256", RSA_KID)
    assert verifier.verify(token)

    jwks_server.stop()
    clock.advance(3600)  # far past jwks_cache_seconds: the refresh fails, stale keys serve
    assert verifier.verify(token)
    clock.advance(3600)
    assert verifier.verify(token)
    # A signature that does not verify is still a 401 ...
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert refused(verifier, sign(claims(), impostor, "RS256", RSA_KID)).message == (
        "invalid token signature"
    )
    # ... but a kid the stale set does not know may be a legitimately rotated key: 503.
    clock.advance(60)
    with pytest.raises(AuthUnavailable):
        verifier.verify(sign(claims(), rsa_key, "RS256", "new-kid"))


def test_cached_keys_survive_a_500(jwks_server: JWKSServer, rsa_key: rsa.RSAPrivateKey) -> None:
    clock = FakeClock()
    verifier = url_verifier(jwks_server.url, clock)
    token = sign(claims(), rsa_key, "RS256", RSA_KID)
    assert verifier.verify(token)
    jwks_server.status = 500
    clock.advance(601)
    assert verifier.verify(token)
    assert jwks_server.hits == 2


def test_static_jwks_and_url_together(
    jwks_server: JWKSServer, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    pinned = ec.generate_private_key(ec.SECP256R1())
    verifier = JWTVerifier(
        hs256_secret=None,
        jwks={"keys": [public_jwk(pinned, "pinned", "ES256")]},
        jwks_url=jwks_server.url,
        clock=FakeClock(),
    )
    assert verifier.verify(sign(claims(), pinned, "ES256", "pinned"))
    assert jwks_server.hits == 0
    assert verifier.verify(sign(claims(), ec_key, "ES256", EC_KID))
    assert jwks_server.hits == 1


# ---------------------------------------------------------------------------------------------
# async
# ---------------------------------------------------------------------------------------------


def test_averify_hs256_inside_asyncio_run() -> None:
    verifier = hs_verifier()
    token = mint_token(SECRET, role="authenticated", sub=USER_ID, organization_id=5)

    async def main() -> dict[str, Any]:
        return await verifier.averify(token)

    assert caller_from_claims(asyncio.run(main())).organization_id == 5

    async def expired() -> None:
        await verifier.averify(mint_token(SECRET, role="authenticated", expires_in=-600))

    with pytest.raises(AuthError, match="token expired"):
        asyncio.run(expired())


def test_averify_fetches_the_jwks_off_the_event_loop(
    jwks_server: JWKSServer, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    clock = FakeClock()
    verifier = url_verifier(jwks_server.url, clock)
    fetch_threads: list[int] = []
    original_fetch = verifier._fetch_jwks

    def recording_fetch() -> object:
        fetch_threads.append(threading.get_ident())
        return original_fetch()

    verifier._fetch_jwks = recording_fetch  # type: ignore[method-assign]

    async def main() -> tuple[int, list[dict[str, Any]]]:
        loop_thread = threading.get_ident()
        tokens = [
            sign(claims(), rsa_key, "RS256", RSA_KID),
            sign(claims(), ec_key, "ES256", EC_KID),
            sign(claims(), rsa_key, "RS256", RSA_KID),
        ]
        # Concurrent first requests share one fetch.
        results = await asyncio.gather(*(verifier.averify(t) for t in tokens))
        return loop_thread, list(results)

    loop_thread, results = asyncio.run(main())
    assert all(r["sub"] == USER_ID for r in results)
    assert fetch_threads and all(t != loop_thread for t in fetch_threads)
    assert jwks_server.hits == 1

    async def unknown() -> None:
        clock.advance(31)
        await verifier.averify(sign(claims(), rsa_key, "RS256", "nope"))

    with pytest.raises(AuthError, match="unknown signing key"):
        asyncio.run(unknown())
    assert jwks_server.hits == 2


def test_averify_without_cache_and_server_down_is_unavailable(
    dead_url: str, rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier = url_verifier(dead_url, FakeClock(), jwks_fetch_timeout=1.0)

    async def main() -> None:
        await verifier.averify(sign(claims(), rsa_key, "RS256", RSA_KID))

    with pytest.raises(AuthUnavailable):
        asyncio.run(main())

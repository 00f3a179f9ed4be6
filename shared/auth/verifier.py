"""Verification of the bearer JWTs that Supabase Auth issues: HS256 with the project secret,
RS256/ES256 against a JWKS.

Loaded by the first request that carries a JWT, not at cold start; even then the heavy pieces
(``jwt`` and ``cryptography`` take ~80 ms, ``urllib.request`` ~30 ms) are imported inside the
methods that need them. Secrets never reach an exception message or a log line: errors carry
the fixed, client-safe strings of shared.auth.errors and are raised ``from None`` so that a
library error that quotes its input cannot leak through a traceback either.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from shared.auth.errors import (
    MSG_ALGORITHM,
    MSG_AUDIENCE,
    MSG_EXPIRED,
    MSG_MALFORMED,
    MSG_MISSING,
    MSG_NOT_YET_VALID,
    MSG_SIGNATURE,
    MSG_TOO_LARGE,
    MSG_UNKNOWN_KEY,
    AuthError,
    AuthUnavailable,
)

# Roles whose Supabase-issued keys (the legacy anon and service-role keys) are JWTs without
# `aud`; every token minted for a signed-in user carries aud "authenticated".
_ROLES_WITHOUT_AUDIENCE = frozenset({"anon", "service_role"})

# Compact JWS only: three base64url segments. Checked before any decoding so that garbage
# never reaches the JSON parser or the crypto library.
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")

# A JWT secret shorter than this is brute-forceable offline from a single token; Supabase
# itself refuses secrets under 32 characters. Public: the tooling that mints tokens
# (nxt_cli/tokens.py) refuses the same secrets this verifier does.
MIN_HS256_SECRET_BYTES = 32

# Upper bound on a JWKS response, so a misbehaving endpoint cannot make a function buffer an
# arbitrary body. Real key sets are a few kilobytes.
_MAX_JWKS_BYTES = 256 * 1024

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


# ---------------------------------------------------------------------------------------------
# Key sets
# ---------------------------------------------------------------------------------------------


class _KeySet:
    # Plain classes rather than dataclasses for the internals: each dataclass costs ~0.5 ms
    # of code generation at import, paid by every cold start.
    __slots__ = ("keys", "kids")

    def __init__(self, keys: Mapping[tuple[str, str], Any], kids: frozenset[str]) -> None:
        # (kid, alg) -> jwt.PyJWK bound to that alg.
        self.keys = keys
        # Every kid in the document, usable or not: a kid that exists but does not fit the
        # token's alg is a refusal, not a sign of key rotation worth refetching for.
        self.kids = kids

    def get(self, kid: str, alg: str) -> Any | None:
        return self.keys.get((kid, alg))


class _RemoteState:
    """Everything known about the JWKS URL. Never mutated, only replaced as a whole, so that
    readers need no lock."""

    __slots__ = ("attempted_at", "fetched_at", "keys", "last_failed")

    def __init__(
        self,
        keys: _KeySet | None = None,
        fetched_at: float = 0.0,
        attempted_at: float | None = None,
        last_failed: bool = False,
    ) -> None:
        self.keys = keys
        self.fetched_at = fetched_at  # clock() of the last successful fetch
        self.attempted_at = attempted_at  # clock() of the last attempt, successful or not
        self.last_failed = last_failed


class _JWKSFetchError(Exception):
    """Internal: the JWKS endpoint did not produce a usable document."""


class _NeedsFetch(Exception):
    """Internal: resolving the key requires network I/O (so ``averify`` moves to a thread)."""


def _jwk_alg(jwk: Mapping[str, Any]) -> str | None:
    """The one algorithm a JWK may verify, or None when it fits neither RS256 nor ES256."""
    kty = jwk.get("kty")
    declared = jwk.get("alg")
    if kty == "RSA" and declared in (None, "RS256"):
        return "RS256"
    if kty == "EC" and jwk.get("crv") == "P-256" and declared in (None, "ES256"):
        return "ES256"
    return None


# Only public members are passed to PyJWK: a JWKS that mistakenly publishes a private key
# ("d", "p", ...) must still be used as a public key, not turned into a signing key.
_PUBLIC_MEMBERS = {"RS256": ("kty", "n", "e"), "ES256": ("kty", "crv", "x", "y")}


def _parse_keyset(document: object) -> _KeySet:
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("a JWKS must be an object with a 'keys' list")

    from jwt import PyJWK
    from jwt.exceptions import PyJWKError, PyJWTError

    keys: dict[tuple[str, str], Any] = {}
    kids: set[str] = set()
    for jwk in document["keys"]:
        if not isinstance(jwk, Mapping):
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            # Tokens are matched by kid only; a key without one could never be selected.
            continue
        kids.add(kid)
        if jwk.get("use", "sig") != "sig":
            continue
        key_ops = jwk.get("key_ops")
        if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
            continue
        alg = _jwk_alg(jwk)
        if alg is None:
            continue
        public = {name: jwk.get(name) for name in _PUBLIC_MEMBERS[alg]}
        try:
            keys[(kid, alg)] = PyJWK(public, algorithm=alg)
        except (PyJWKError, PyJWTError, ValueError, TypeError):
            # One broken key must not take the whole set down with it.
            continue
    return _KeySet(keys=MappingProxyType(keys), kids=frozenset(kids))


# ---------------------------------------------------------------------------------------------
# The verifier
# ---------------------------------------------------------------------------------------------


class JWTVerifier:
    """Verifies Supabase Auth JWTs: HS256 with the project's JWT secret, and RS256/ES256
    against a JWKS (static, or fetched from ``jwks_url`` and cached).

    The JWKS is fetched with ``urllib.request`` rather than ``jwt.PyJWKClient`` (2.15), which
    does not fit three of the rules: once its cache lifespan ends and the refresh fails it
    raises instead of serving the keys it had, which still verify; its refetch cooldown
    counts successful fetches only, so a dead endpoint is retried by every request, each one
    waiting out the timeout; and it tells "endpoint down" (503 here) from "kid unknown" (401)
    only through its exception types, after having fetched. The fetch itself is short.

    Thread-safe; one instance per process is meant to be shared by all requests.
    """

    #: Minimum interval between two JWKS fetch attempts. Bounds the traffic an attacker can
    #: cause with unknown kids, and the time requests spend waiting on a dead endpoint.
    min_refetch_seconds: float = 30.0

    def __init__(
        self,
        *,
        hs256_secret: str | None,
        jwks: Mapping[str, Any] | None = None,
        jwks_url: str | None = None,
        audiences: Sequence[str] = ("authenticated",),
        leeway_seconds: int = 30,
        max_token_bytes: int = 8192,
        jwks_cache_seconds: int = 600,
        jwks_fetch_timeout: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` (monotonic seconds) drives the JWKS cache and rate limit; it is a
        parameter so that tests can move time forward without sleeping."""
        if hs256_secret is None and jwks is None and jwks_url is None:
            raise ValueError("JWTVerifier needs hs256_secret, jwks or jwks_url")
        self._hs256_key: bytes | None = None
        if hs256_secret is not None:
            key = hs256_secret.encode("utf-8")
            if len(key) < MIN_HS256_SECRET_BYTES:
                raise ValueError(f"hs256_secret must be at least {MIN_HS256_SECRET_BYTES} bytes")
            self._hs256_key = key
        if jwks is not None and not (
            isinstance(jwks, Mapping) and isinstance(jwks.get("keys"), list)
        ):
            raise ValueError("jwks must be a JWKS object with a 'keys' list")
        if jwks_url is not None:
            _check_jwks_url(jwks_url)
        if isinstance(audiences, str):
            # A bare string is a sequence of characters; "authenticated" would accept "a".
            audiences = (audiences,)
        self._audiences = frozenset(audiences)
        self._leeway = leeway_seconds
        self._max_token_bytes = max_token_bytes
        self._jwks_document = jwks
        self._jwks_url = jwks_url
        self._cache_seconds = jwks_cache_seconds
        self._fetch_timeout = jwks_fetch_timeout
        self._clock = clock

        self._algorithms: frozenset[str] = frozenset(
            (["HS256"] if self._hs256_key is not None else [])
            + (["RS256", "ES256"] if jwks is not None or jwks_url is not None else [])
        )
        # Parsing the static JWKS needs `jwt`; deferred so that constructing a verifier at
        # import time stays cheap.
        self._static_keys: _KeySet | None = None
        self._static_lock = threading.Lock()
        self._remote = _RemoteState()
        # Held only around a fetch, never by readers: verify() on the event loop thread must
        # not block behind a fetch running in a worker thread.
        self._fetch_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"JWTVerifier(algorithms={sorted(self._algorithms)}, jwks_url={self._jwks_url!r})"

    # -- public API --------------------------------------------------------------------------

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid token; raise AuthError / AuthUnavailable otherwise.

        May fetch the JWKS over the network (blocking); use :meth:`averify` in async code.
        """
        alg, kid = self._read_header(token)
        key = self._hs256_key if alg == "HS256" else self._resolve_key(kid, alg, network=True)
        return self._decode(token, key, alg)

    async def averify(self, token: str) -> dict[str, Any]:
        """As :meth:`verify`, but a JWKS fetch runs in a worker thread, off the event loop."""
        alg, kid = self._read_header(token)
        if alg == "HS256":
            key: Any = self._hs256_key
        else:
            try:
                key = self._resolve_key(kid, alg, network=False)
            except _NeedsFetch:
                import asyncio

                key = await asyncio.to_thread(self._resolve_key, kid, alg, network=True)
        return self._decode(token, key, alg)

    # -- steps -------------------------------------------------------------------------------

    def _read_header(self, token: str) -> tuple[str, str | None]:
        """Size, shape and header checks: everything decided before touching a key."""
        if not isinstance(token, str):
            raise AuthError(MSG_MALFORMED)
        if not token:
            raise AuthError(MSG_MISSING)
        # len(str) <= its UTF-8 length, so this rejects oversized input before encoding it.
        if len(token) > self._max_token_bytes:
            raise AuthError(MSG_TOO_LARGE)
        # A compact JWS is ASCII, so from here on characters are bytes.
        if not token.isascii() or not _COMPACT_JWS.fullmatch(token):
            raise AuthError(MSG_MALFORMED)
        header_segment = token.split(".", 1)[0]
        try:
            raw = base64.urlsafe_b64decode(header_segment + "=" * (-len(header_segment) % 4))
            header = json.loads(raw)
        except (binascii.Error, ValueError, RecursionError):
            raise AuthError(MSG_MALFORMED) from None
        if not isinstance(header, dict):
            raise AuthError(MSG_MALFORMED)
        alg = header.get("alg")
        # "none", HS384, PS256, ... and HS256 without a configured secret all end here.
        # jku/x5u/jwk headers are ignored on purpose: keys never come from the token itself.
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise AuthError(MSG_ALGORITHM)
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthError(MSG_MALFORMED)
        if alg != "HS256" and not kid:
            # Keys are selected by kid only; guessing among keys would let the token choose.
            raise AuthError(MSG_UNKNOWN_KEY)
        return alg, kid

    def _static_keyset(self) -> _KeySet | None:
        if self._jwks_document is None:
            return None
        if self._static_keys is None:
            with self._static_lock:
                if self._static_keys is None:
                    self._static_keys = _parse_keyset(self._jwks_document)
        return self._static_keys

    def _resolve_key(self, kid: str | None, alg: str, *, network: bool) -> Any:
        """The PyJWK for (kid, alg). An HS256 token never gets here, so JWKS material can
        never act as an HMAC secret. With ``network=False`` raises _NeedsFetch instead of
        fetching."""
        assert kid is not None  # _read_header guarantees a kid for asymmetric algorithms
        static = self._static_keyset()
        if static is not None:
            key = static.get(kid, alg)
            if key is not None:
                return key
            if kid in static.kids:
                raise AuthError(MSG_UNKNOWN_KEY)
        if self._jwks_url is None:
            raise AuthError(MSG_UNKNOWN_KEY)

        state = self._remote
        now = self._clock()
        keys = state.keys
        fresh = keys is not None and now - state.fetched_at < self._cache_seconds
        if fresh and keys is not None:
            key = keys.get(kid, alg)
            if key is not None:
                return key
            if kid in keys.kids:
                raise AuthError(MSG_UNKNOWN_KEY)
        # Missing, stale, or an unknown kid (the keys may have been rotated): refetch,
        # unless an attempt was made too recently.
        if self._may_fetch(state, now):
            if not network:
                raise _NeedsFetch
            state = self._refresh()
            keys = state.keys
        if keys is not None:
            key = keys.get(kid, alg)
            if key is not None:
                # Possibly stale: while the endpoint is down, keys that verified before keep
                # verifying (their tokens still expire on their own schedule).
                return key
            if kid in keys.kids:
                raise AuthError(MSG_UNKNOWN_KEY)
        if keys is None or state.last_failed:
            # Nothing usable cached and the endpoint is failing: the token may well be good,
            # so this is the server's problem (503), not the client's (401).
            raise AuthUnavailable
        raise AuthError(MSG_UNKNOWN_KEY)

    def _may_fetch(self, state: _RemoteState, now: float) -> bool:
        return state.attempted_at is None or now - state.attempted_at >= self.min_refetch_seconds

    def _refresh(self) -> _RemoteState:
        with self._fetch_lock:
            state = self._remote
            now = self._clock()
            if not self._may_fetch(state, now):
                # Another thread fetched while this one waited for the lock.
                return state
            try:
                keys = _parse_keyset(self._fetch_jwks())
            except (_JWKSFetchError, ValueError) as exc:
                import logging

                # Both exception types carry messages written in this module (an HTTP status,
                # an exception class name), never response bodies or library error text.
                logging.getLogger(__name__).warning(
                    "JWKS fetch failed (%s); %s",
                    exc,
                    "using cached keys" if state.keys is not None else "no cached keys",
                )
                self._remote = _RemoteState(
                    keys=state.keys,
                    fetched_at=state.fetched_at,
                    attempted_at=now,
                    last_failed=True,
                )
            else:
                self._remote = _RemoteState(
                    keys=keys, fetched_at=now, attempted_at=now, last_failed=False
                )
            return self._remote

    def _fetch_jwks(self) -> object:
        import http.client
        import urllib.error
        import urllib.request

        assert self._jwks_url is not None

        class _NoRedirect(urllib.request.HTTPRedirectHandler):
            # A redirect could downgrade https to http or leave the auth server's origin;
            # the JWKS URL is configuration, so it should point at the document itself.
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if urlsplit(self._jwks_url).hostname in _LOOPBACK_HOSTS:
            # A local stack is never behind the outbound proxy set for the internet.
            handlers.append(urllib.request.ProxyHandler({}))
        opener = urllib.request.build_opener(*handlers)
        request = urllib.request.Request(  # noqa: S310 - scheme is checked in __init__
            self._jwks_url, headers={"Accept": "application/json"}
        )
        try:
            with opener.open(request, timeout=self._fetch_timeout) as response:
                if response.status != 200:
                    raise _JWKSFetchError(f"HTTP {response.status}")
                body = response.read(_MAX_JWKS_BYTES + 1)
        except urllib.error.HTTPError as exc:
            # 4xx/5xx, and 3xx once _NoRedirect has declined to follow it.
            exc.close()
            raise _JWKSFetchError(f"HTTP {exc.code}") from None
        except (OSError, http.client.HTTPException) as exc:
            # URLError (refused, DNS), timeouts, resets, truncated responses.
            raise _JWKSFetchError(type(exc).__name__) from None
        if len(body) > _MAX_JWKS_BYTES:
            raise _JWKSFetchError("JWKS response too large")
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise _JWKSFetchError("JWKS response is not JSON") from None

    def _decode(self, token: str, key: Any, alg: str) -> dict[str, Any]:
        import jwt

        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                options={
                    "require": ["exp"],
                    # Audience is checked below: PyJWT cannot express "no aud is fine for
                    # the anon and service-role keys only".
                    "verify_aud": False,
                    # Refuse RSA keys under 2048 bits instead of merely warning.
                    "enforce_minimum_key_length": True,
                },
                leeway=self._leeway,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError(MSG_EXPIRED) from None
        except jwt.ImmatureSignatureError:
            raise AuthError(MSG_NOT_YET_VALID) from None
        except jwt.InvalidSignatureError:
            raise AuthError(MSG_SIGNATURE) from None
        except jwt.InvalidAlgorithmError:
            raise AuthError(MSG_ALGORITHM) from None
        except jwt.InvalidKeyError:
            raise AuthError(MSG_UNKNOWN_KEY) from None
        except jwt.PyJWTError:
            raise AuthError(MSG_MALFORMED) from None
        except (ValueError, TypeError, RecursionError):
            # Defensive: the library's contract is PyJWTError, but a crafted token must
            # never turn into a 500.
            raise AuthError(MSG_MALFORMED) from None
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        # PyJWT accepts exp/nbf/iat as anything int() takes, so "9999999999" or true would
        # pass; a NumericDate is a JSON number.
        for name in ("exp", "nbf", "iat"):
            if name in claims:
                value = claims[name]
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not math.isfinite(value)
                ):
                    raise AuthError(MSG_MALFORMED)
        role = claims.get("role")
        if not isinstance(role, str) or not role:
            raise AuthError(MSG_MALFORMED)
        if "aud" in claims:
            aud = claims["aud"]
            accepted = (
                [aud]
                if isinstance(aud, str)
                else [a for a in aud if isinstance(a, str)]
                if isinstance(aud, list)
                else []
            )
            if not any(a in self._audiences for a in accepted):
                raise AuthError(MSG_AUDIENCE)
        elif role not in _ROLES_WITHOUT_AUDIENCE:
            raise AuthError(MSG_AUDIENCE)


def _check_jwks_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    # Plain http only for a local stack: over the network, whoever can rewrite the response
    # chooses the keys that every token is checked against.
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        return
    raise ValueError("jwks_url must be https (http only for localhost)")

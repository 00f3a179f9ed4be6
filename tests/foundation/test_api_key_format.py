"""shared.auth.api_keys: key format, hashing and the shape checks that route a bearer credential."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest

from nxt_cli.localkeys import supabase_local_jwt_secret
from nxt_cli.tokens import mint_token
from shared.auth.api_keys import (
    API_KEY_PREFIX,
    GeneratedKey,
    display_prefix,
    generate_api_key,
    hash_api_key,
    hashes_equal,
    is_supabase_platform_key,
    looks_like_api_key,
)

KEY_SHAPE = re.compile(r"nxt_[a-z2-7]{8}_[A-Za-z0-9_-]{43}")


def with_secret(raw: bytes, public: str = "abcd2345") -> str:
    return f"nxt_{public}_{base64.urlsafe_b64encode(raw).decode().rstrip('=')}"


def test_generated_key_format() -> None:
    key = generate_api_key()
    assert isinstance(key, GeneratedKey)
    assert KEY_SHAPE.fullmatch(key.plaintext)
    assert len(key.plaintext) == 56
    assert key.prefix == key.plaintext[:12]
    assert key.prefix.startswith(API_KEY_PREFIX) and len(key.prefix) == 12
    secret = key.plaintext[13:]
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32
    assert key.hash == hashlib.sha256(key.plaintext.encode()).digest()
    assert len(key.hash) == 32
    assert looks_like_api_key(key.plaintext)
    assert display_prefix(key.plaintext) == key.prefix


def test_generated_key_repr_hides_the_secret() -> None:
    key = generate_api_key()
    text = repr(key)
    assert key.plaintext not in text
    assert key.plaintext[13:] not in text
    assert key.prefix in text
    assert key.hash.hex() not in text and repr(key.hash) not in text


def test_hash_is_stable_and_distinguishes_keys() -> None:
    key = generate_api_key()
    assert hash_api_key(key.plaintext) == hash_api_key(key.plaintext) == key.hash
    # Changing one character of the secret changes the hash.
    last = key.plaintext[-1]
    altered = key.plaintext[:-1] + ("A" if last != "A" else "E")
    assert hash_api_key(altered) != key.hash
    # And the prefix is bound in too.
    assert hash_api_key("nxt_zzzzzzzz" + key.plaintext[12:]) != key.hash


def test_generated_keys_differ() -> None:
    keys = [generate_api_key() for _ in range(200)]
    assert len({k.plaintext for k in keys}) == 200
    assert len({k.hash for k in keys}) == 200
    assert len({k.plaintext[13:] for k in keys}) == 200
    # 40 random bits per prefix: a collision among 200 would mean a broken generator.
    assert len({k.prefix for k in keys}) == 200


def test_hex_prefix_is_accepted() -> None:
    key = with_secret(bytes(range(32)), public="0189abef")
    assert looks_like_api_key(key)
    assert display_prefix(key) == "nxt_0189abef"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "nxt_",
        "nxt_abcd2345",
        "nxt_abcd2345_",
        with_secret(bytes(32), public="ABCD2345"),  # uppercase prefix
        with_secret(bytes(32), public="abcd234"),  # 7-char prefix
        with_secret(bytes(32), public="abcd23456"),  # 9-char prefix
        with_secret(bytes(32), public="abcd-345"),
        with_secret(bytes(31)),  # 31-byte secret
        with_secret(bytes(33)),  # 33-byte secret
        with_secret(bytes(32)) + "=",  # padded
        with_secret(bytes(32)) + "A",
        with_secret(bytes(32))[:-1],
        "nxt_abcd2345_" + "A" * 42 + "B",  # non-canonical: the last 2 bits must be zero
        "nxt_abcd2345_" + "A" * 42 + "/",  # standard, not urlsafe, alphabet
        " " + with_secret(bytes(32)),
        with_secret(bytes(32)) + "\n",
        "NXT_abcd2345_" + "A" * 43,
        "abc_abcd2345_" + "A" * 43,
        "nxt-abcd2345-" + "A" * 43,
        "sb_secret_EXAMPLEnotAkey-0000_exampleOnly",
        "sb_publishable_EXAMPLEpublishable_notArealKey0",
    ],
)
def test_looks_like_api_key_false(value: str) -> None:
    assert not looks_like_api_key(value)
    assert display_prefix(value) is None


def test_looks_like_api_key_true_for_all_zero_and_all_ones_secrets() -> None:
    assert looks_like_api_key("nxt_abcd2345_" + "A" * 43)
    assert looks_like_api_key(with_secret(b"\xff" * 32))


def test_a_jwt_is_not_an_api_key() -> None:
    secret = supabase_local_jwt_secret()
    for token in (
        mint_token(secret, role="authenticated", sub="6f1c2b9e-6a0e-4d1e-9a51-2f6b7b0b1c11"),
        mint_token(secret, role="anon", audience=None),
        mint_token(secret, role="service_role", audience=None),
    ):
        assert not looks_like_api_key(token)
        assert not is_supabase_platform_key(token)
        assert display_prefix(token) is None


@pytest.mark.parametrize("value", [None, 123, b"nxt_abcd2345_" + b"A" * 43, ["nxt_"]])
def test_non_strings_are_not_keys(value: Any) -> None:
    assert not looks_like_api_key(value)
    assert not is_supabase_platform_key(value)
    assert display_prefix(value) is None


def test_hashes_equal() -> None:
    a = hash_api_key(generate_api_key().plaintext)
    b = hash_api_key(generate_api_key().plaintext)
    assert hashes_equal(a, bytes(a))
    assert not hashes_equal(a, b)
    assert not hashes_equal(a, a[:-1])
    assert not hashes_equal(a, b"")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sb_publishable_EXAMPLEpublishable_notArealKey0", True),
        ("sb_secret_EXAMPLEnotAkey-0000_exampleOnly", True),
        ("sb_publishable_", False),
        ("sb_secret_", False),
        ("sb_secret_short", False),
        ("sb_other_EXAMPLEnotAkey-0000_exampleOnly", False),
        ("SB_SECRET_EXAMPLEnotAkey-0000_exampleOnly", False),
        ("sb_secret_EXAMPLEnotAkey.0000.exampleOnly", False),
        (" sb_secret_EXAMPLEnotAkey-0000_exampleOnly", False),
        ("sb_secret_" + "a" * 300, False),
        ("nxt_abcd2345_" + "A" * 43, False),
        ("", False),
    ],
)
def test_is_supabase_platform_key(value: str, expected: bool) -> None:
    assert is_supabase_platform_key(value) is expected


def test_generated_key_is_not_a_platform_key() -> None:
    assert not is_supabase_platform_key(generate_api_key().plaintext)

"""Settings from the environment: defaults, validation, and no secret in any message."""

from __future__ import annotations

import pytest

from shared.settings import Settings, SettingsError


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.database_url is None
    assert s.jwt_audiences == ("authenticated",)
    assert s.operator_organization_id == 2
    assert (s.pool_min_size, s.pool_max_size) == (0, 4)


def test_values_are_read_and_normalised() -> None:
    s = Settings.from_env({
        "DATABASE_URL": "postgresql+psycopg://u:p@db:5432/x",
        "JWT_AUDIENCE": "authenticated, partners",
        "OPERATOR_ORGANIZATION_ID": "7",
        "DB_POOL_MAX_SIZE": "10",
    })
    assert s.database_url == "postgresql://u:p@db:5432/x"
    assert s.jwt_audiences == ("authenticated", "partners")
    assert s.operator_organization_id == 7
    assert s.pool_max_size == 10


@pytest.mark.parametrize("env,names", [
    ({"DATABASE_URL": "mysql://root:pw@h/db"}, "DATABASE_URL"),
    ({"TIMESERIES_DATABASE_URL": "nonsense"}, "TIMESERIES_DATABASE_URL"),
    ({"DB_POOL_MAX_SIZE": "lots"}, "DB_POOL_MAX_SIZE"),
    ({"DB_POOL_MAX_SIZE": "0"}, "DB_POOL_MAX_SIZE"),
    ({"DB_POOL_MIN_SIZE": "5", "DB_POOL_MAX_SIZE": "2"}, "DB_POOL_MIN_SIZE"),
    ({"OPERATOR_ORGANIZATION_ID": "-1"}, "OPERATOR_ORGANIZATION_ID"),
    ({"SUPABASE_JWT_SECRET": "short"}, "SUPABASE_JWT_SECRET"),
    ({"SUPABASE_JWKS_URL": "ftp://x"}, "SUPABASE_JWKS_URL"),
    ({"DB_POOL_TIMEOUT": "nan"}, "DB_POOL_TIMEOUT"),
])
def test_bad_values_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(SettingsError, match=names):
        Settings.from_env(env)


def test_messages_and_repr_never_carry_secrets() -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"DATABASE_URL": "mysql://root:topsecretpw@h/db"})
    assert "topsecretpw" not in str(err.value)
    s = Settings.from_env({"DATABASE_URL": "postgresql://u:topsecretpw@h/db",
                           "SUPABASE_JWT_SECRET": "s" * 40})
    assert "topsecretpw" not in repr(s) and "s" * 40 not in repr(s)


def test_missing_database_url_is_explained() -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL is not set"):
        Settings.from_env({}).require_database_url()

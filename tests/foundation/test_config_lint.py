"""Tests for nxt_cli.config_lint: where tables and keys are in supabase/config.toml, the
``env(...)`` references `nxt check` checks, and the lines `nxt` gives the errors of a function's
cold start, which locates nothing itself."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from nxt_cli.config_lint import add_line, env_refs, line_of, load_config
from nxt_cli.functions import import_main
from shared.supabase_config import (
    CONFIG_ENV_VAR,
    ConfigError,
    FunctionNotFoundError,
    function_settings,
)
from tests.foundation.test_supabase_config import (
    PROJECT_CONFIG,
    SECRET_CONFIG,
    TYPESCRIPT_PROJECT,
    WRONG_TYPE,
    line_containing,
    write_config,
)

# --- this project's file ------------------------------------------------------------------------


def test_project_config_lines_match_the_text() -> None:
    config = load_config(PROJECT_CONFIG)
    text = PROJECT_CONFIG.read_text(encoding="utf-8")

    orders_header = line_containing(text, "[functions.orders]")
    assert config.function("orders").line == orders_header
    assert line_of(config, "functions.orders") == orders_header
    header = line_containing(text, "[functions.meter-consumption]")
    assert line_of(config, "functions.meter-consumption", "verify_jwt") == header + 2
    assert text.split("\n")[header + 1] == "verify_jwt = false"
    assert line_of(config, "", "project_id") == line_containing(text, "project_id =")
    assert env_refs(config) == []


# --- env(...) references ------------------------------------------------------------------------


def test_env_refs_lists_every_reference_unresolved(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, SECRET_CONFIG), env={})

    assert env_refs(config) == [
        ("auth", "jwt_secret", "TEST_JWT_SECRET", line_containing(SECRET_CONFIG, "jwt_secret")),
        (
            "functions.reports",
            "verify_jwt",
            "REPORTS_VERIFY_JWT",
            line_containing(SECRET_CONFIG, "verify_jwt"),
        ),
    ]


def test_typescript_project_env_refs(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, TYPESCRIPT_PROJECT), env={})

    assert env_refs(config) == [
        (
            "studio",
            "openai_api_key",
            "OPENAI_API_KEY",
            line_containing(TYPESCRIPT_PROJECT, "openai_api_key"),
        ),
        (
            "auth.external.apple",
            "secret",
            "SUPABASE_AUTH_EXTERNAL_APPLE_SECRET",
            line_containing(TYPESCRIPT_PROJECT, 'secret = "env('),
        ),
    ]
    expiry = line_containing(TYPESCRIPT_PROJECT, "jwt_expiry")
    assert line_of(config, "auth", "jwt_expiry") == expiry


# --- quoted names, strings, arrays, dotted keys -------------------------------------------------


QUOTED = """\
[functions."meter.v2"]
verify_jwt = false

[functions.'raw-literal']
enabled = false

[functions."caf\\u00e9"]
verify_jwt = "no"
"""


def test_quoted_table_names(tmp_path: Path) -> None:
    path = write_config(tmp_path, QUOTED)
    config = load_config(path)

    assert config.function_names() == ["meter.v2", "raw-literal", "café"]
    assert config.function("meter.v2").verify_jwt is False
    assert config.function("meter.v2").line == 1
    assert config.function("raw-literal").enabled is False
    assert line_of(config, 'functions."meter.v2"', "verify_jwt") == 2
    assert line_of(config, "functions.raw-literal") == 4
    with pytest.raises(ConfigError) as caught:
        config.function("café")
    # Escapes in a quoted name are decoded, and names that need quotes are shown quoted.
    assert caught.value.line == 8
    assert str(caught.value).startswith(f'{path}:8: [functions."café"] verify_jwt: ')


def test_line_of_rejects_a_malformed_table_path(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, QUOTED))

    with pytest.raises(ValueError, match="not a TOML table path"):
        line_of(config, "functions.[x]")


def test_lines_inside_strings_and_arrays_are_not_keys(tmp_path: Path) -> None:
    text = """\
[auth.sms]
template = \"\"\"
verify_jwt = "yes"
[functions.orders]
\"\"\"
matrix = [
  [1, 2],
  [3],
]

[functions.orders]
entrypoint = 'C:\\functions\\orders.py'
verify_jwt = "yes"
"""
    config = load_config(write_config(tmp_path, text))

    assert line_of(config, "functions.orders") == 11
    assert line_of(config, "3") is None
    with pytest.raises(ConfigError) as caught:
        config.function("orders")
    assert caught.value.line == 13


def test_dotted_keys_are_located(tmp_path: Path) -> None:
    text = "[functions]\norders.verify_jwt = 1\nhooks.enabled = true\n"
    config = load_config(write_config(tmp_path, text))

    assert line_of(config, "functions.orders") == 2
    with pytest.raises(ConfigError) as caught:
        config.function("orders")
    assert (caught.value.line, caught.value.table) == (2, "functions.orders")


# --- the errors of a cold start -----------------------------------------------------------------


def test_a_function_failing_on_its_table_fails_with_the_line_under_nxt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, WRONG_TYPE)
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))
    # Another test may have read the project's orders table; failures are never cached.
    function_settings.cache_clear()
    main = tmp_path / "functions" / "orders" / "main.py"
    main.parent.mkdir(parents=True)
    main.write_text('from shared.supabase_config import function_settings\n'
                    'function_settings("orders")\n')

    # The cold start itself names no line ...
    with pytest.raises(ConfigError) as cold:
        function_settings("orders")
    assert cold.value.line is None
    # ... `nxt` importing the same function names the one the table's key is on.
    with pytest.raises(ConfigError) as imported:
        import_main(main, "config-lint-orders")  # a module name no other test imports
    err = imported.value
    assert (err.line, err.key, err.table) == (6, "verify_jwt", "functions.orders")
    assert str(err) == f'{path}:6: [functions.orders] verify_jwt: expected true or false, got "yes"'
    assert str(pickle.loads(pickle.dumps(err))) == str(err)  # noqa: S301 - our own bytes


def test_add_line_leaves_what_has_no_line_of_its_own(tmp_path: Path) -> None:
    path = write_config(tmp_path, WRONG_TYPE)
    missing = FunctionNotFoundError(path, None, None, "not defined", "functions.invoices")
    whole_file = ConfigError(path, None, None, "file not found")
    tomllib_located = ConfigError(path, 3, None, "invalid TOML", "functions.orders")
    for error in (missing, whole_file, tomllib_located):
        before = str(error)
        add_line(error)
        assert str(error) == before

"""Tests for shared.supabase_config: reading supabase/config.toml as the functions and `nxt` do.

Both read the same values and raise the same errors; only `nxt`'s reader (nxt_cli.config_lint)
names lines that tomllib does not report, so tests of errors run with each (``reader``).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from nxt_cli import config_lint
from shared import supabase_config
from shared.supabase_config import (
    CONFIG_ENV_VAR,
    ConfigError,
    FunctionConfig,
    FunctionNotFoundError,
    SupabaseConfig,
    function_settings,
    load_config,
)

REPO = Path(__file__).resolve().parents[2]
PROJECT_CONFIG = REPO / "supabase" / "config.toml"

# What `supabase init` writes for a TypeScript (Deno) project, after a few edits: sections this
# module never reads, env() secrets, Deno import maps, a multi-line array, comments everywhere.
TYPESCRIPT_PROJECT = """\
# For detailed configuration reference documentation, visit:
# https://supabase.com/docs/guides/local-development/cli/config
project_id = "acme-web"

[api]
enabled = true
port = 54331
schemas = ["public", "graphql_public"]
extra_search_path = ["public", "extensions"]
max_rows = 1000

[api.tls]
enabled = false

[db]
port = 54332
shadow_port = 54330
major_version = 17

[db.pooler]
enabled = false
port = 54329
pool_mode = "transaction"
default_pool_size = 20
max_client_conn = 100

[db.seed]
enabled = true
sql_paths = ["./seed.sql"]

[realtime]
enabled = true

[studio]
enabled = true
port = 54323
api_url = "http://127.0.0.1"
openai_api_key = "env(OPENAI_API_KEY)"

[inbucket]
enabled = true
port = 54324

[storage]
enabled = true
file_size_limit = "50MiB"

[auth]
enabled = true
site_url = "http://127.0.0.1:3000"
additional_redirect_urls = [
  "https://127.0.0.1:3000",
  "https://acme.example.com/auth/callback",
]
jwt_expiry = 7200
enable_refresh_token_rotation = true
refresh_token_reuse_interval = 10
enable_signup = true

[auth.rate_limit]
email_sent = 2
token_refresh = 150

[auth.email]
enable_signup = true
double_confirm_changes = true
enable_confirmations = false
max_frequency = "1s"

[auth.sms]
enable_signup = false
template = "Your code is {{ .Code }}"

[auth.external.apple]
enabled = false
client_id = ""
# DO NOT commit your OAuth provider secret to git. Use environment variable substitution instead:
secret = "env(SUPABASE_AUTH_EXTERNAL_APPLE_SECRET)"
redirect_uri = ""
skip_nonce_check = false

[edge_runtime]
enabled = true
policy = "per_worker"
inspector_port = 8083

[analytics]
enabled = true
port = 54327
backend = "postgres"

[functions.hello-world]
enabled = true
verify_jwt = true
import_map = "./functions/hello-world/deno.json"
entrypoint = "./functions/hello-world/index.ts"

[functions.stripe-webhook]
verify_jwt = false
import_map = "./functions/stripe-webhook/deno.json"
static_files = ["./functions/stripe-webhook/templates/*.html"]
"""


def write_config(root: Path, text: str) -> Path:
    path = root / "supabase" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def line_containing(text: str, fragment: str) -> int:
    """1-based line of the only line holding ``fragment``: the expected value, found by hand."""
    lines = [n for n, line in enumerate(text.split("\n"), start=1) if fragment in line]
    assert len(lines) == 1, f"{fragment!r} occurs on lines {lines}"
    return lines[0]


@dataclass(frozen=True)
class Reader:
    """One way of reading config.toml: a deployed function's, or `nxt`'s."""

    load: Callable[[str | os.PathLike[str] | None, Mapping[str, str] | None], SupabaseConfig]
    locates: bool  # whether errors and tables carry the line tomllib does not report

    def line(self, line: int) -> int | None:
        return line if self.locates else None

    def at(self, path: Path, line: int) -> str:
        """Where an error says it is: the file, and the line when this reader locates."""
        return f"{path}:{line}" if self.locates else str(path)


@pytest.fixture(params=["function", "nxt"])
def reader(request: pytest.FixtureRequest) -> Reader:
    if request.param == "function":
        return Reader(load_config, locates=False)
    return Reader(config_lint.load_config, locates=True)


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    # function_settings caches per process; each test must see its own file.
    function_settings.cache_clear()
    yield
    function_settings.cache_clear()


# --- this project's file ------------------------------------------------------------------------


def test_project_config_has_the_deployed_functions() -> None:
    config = load_config(PROJECT_CONFIG)
    functions = config.functions()

    assert config.project_id == "nxt-data-layer"
    assert {"customers", "orders", "meter-consumption"} <= set(functions)
    assert functions["customers"].verify_jwt is True
    assert functions["orders"].verify_jwt is True
    # Accepts API keys, which are not JWTs.
    assert functions["meter-consumption"].verify_jwt is False
    # The legacy URL of meter-consumption, answered by the same code, with the same gate.
    assert functions["meter-consumption-2"].verify_jwt is False
    same_code = {"meter-consumption-2": "meter-consumption"}
    for function in functions.values():
        assert function.enabled is True
        assert function.unknown_keys == ()
        directory = same_code.get(function.name, function.name)
        expected = REPO / "functions" / directory / "main.py"
        assert function.entrypoint_path(config.config_dir) == expected


def test_project_config_ports_and_auth() -> None:
    config = load_config(PROJECT_CONFIG)

    assert (config.api_port, config.db_port, config.db_major_version) == (54321, 54322, 15)
    assert config.jwt_expiry == 3600
    # jwt_secret is only mentioned in a comment there: the CLI's local secret applies.
    assert config.jwt_secret_raw is None
    assert config.jwt_secret(env={}) is None


# --- defaults -----------------------------------------------------------------------------------


def test_defaults_are_the_supabase_cli_defaults(tmp_path: Path, reader: Reader) -> None:
    path = write_config(tmp_path, "[functions.bare]\n")
    config = reader.load(path, {})

    assert config.project_id is None
    assert (config.api_port, config.db_port) == (54321, 54322)
    assert config.db_major_version == 15
    assert config.jwt_expiry == 3600
    assert config.jwt_secret_raw is None
    assert config.function("bare") == FunctionConfig(name="bare", line=reader.line(1))
    bare = config.function("bare")
    assert bare.enabled is True
    assert bare.verify_jwt is True
    assert bare.entrypoint_path(config.config_dir) is None


def test_empty_file_reads_with_no_functions(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "# nothing configured yet\n"), env={})

    assert config.functions() == {}
    assert config.function_names() == []
    assert config.api_port == 54321


# --- env(...) -----------------------------------------------------------------------------------


SECRET_CONFIG = """\
[auth]
jwt_expiry = 600
jwt_secret = "env(TEST_JWT_SECRET)"

[functions.reports]
verify_jwt = "env(REPORTS_VERIFY_JWT)"
"""


def test_env_reference_resolves_when_set(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, SECRET_CONFIG), env={"TEST_JWT_SECRET": "s3cret"})

    assert config.jwt_secret_raw == "env(TEST_JWT_SECRET)"
    assert config.jwt_secret() == "s3cret"
    # An explicit environment wins over the one given to load_config.
    assert config.jwt_secret(env={"TEST_JWT_SECRET": "other"}) == "other"
    # A variable holds text: booleans are read from it as TOML spells them.
    assert config.function("reports", env={"REPORTS_VERIFY_JWT": "false"}).verify_jwt is False
    assert config.function("reports", env={"REPORTS_VERIFY_JWT": "TRUE"}).verify_jwt is True


def test_env_reference_unset_is_an_error_only_when_needed(tmp_path: Path, reader: Reader) -> None:
    path = write_config(tmp_path, SECRET_CONFIG)
    # Loading needs neither variable, so it must not fail on them.
    config = reader.load(path, {})

    with pytest.raises(ConfigError) as caught:
        config.jwt_secret()
    err = caught.value
    line = line_containing(SECRET_CONFIG, "jwt_secret =")
    assert err.line == reader.line(line)
    assert err.key == "jwt_secret"
    assert "TEST_JWT_SECRET" in err.message
    assert str(err).startswith(f"{reader.at(path, line)}: [auth] jwt_secret: ")


def test_env_reference_set_but_empty_counts_as_unset(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, SECRET_CONFIG), env={"TEST_JWT_SECRET": ""})

    with pytest.raises(ConfigError, match="TEST_JWT_SECRET is not set"):
        config.jwt_secret()


def test_env_reference_with_a_bad_value_names_the_variable(
    tmp_path: Path, reader: Reader
) -> None:
    config = reader.load(write_config(tmp_path, SECRET_CONFIG), {})

    with pytest.raises(ConfigError) as caught:
        config.function("reports", env={"REPORTS_VERIFY_JWT": "maybe"})
    assert caught.value.line == reader.line(line_containing(SECRET_CONFIG, "verify_jwt ="))
    assert caught.value.message == (
        'expected true or false, got "maybe" (from env(REPORTS_VERIFY_JWT))'
    )


def test_env_reference_in_a_port_is_resolved_at_load(tmp_path: Path, reader: Reader) -> None:
    path = write_config(tmp_path, '[api]\nport = "env(API_PORT)"\n')

    assert reader.load(path, {"API_PORT": "55321"}).api_port == 55321
    with pytest.raises(ConfigError) as caught:
        reader.load(path, {"API_PORT": "http"})
    assert str(caught.value) == (
        f"{reader.at(path, 2)}: [api] port: expected a port number (1-65535),"
        ' got "http" (from env(API_PORT))'
    )


# --- errors and their lines ---------------------------------------------------------------------


def test_malformed_toml_reports_the_line(tmp_path: Path) -> None:
    text = '[functions.orders]\nverify_jwt = true\nentrypoint "../functions/orders/main.py"\n'
    path = write_config(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_config(path)
    err = caught.value
    assert err.line == 3
    assert err.key is None
    assert str(err).startswith(f"{path}:3: invalid TOML: ")
    # tomllib's own location is folded into ours, keeping only the column.
    assert "(at line" not in err.message
    assert "column" in err.message


def test_unterminated_value_reports_its_last_line(tmp_path: Path) -> None:
    text = '[api]\nschemas = [\n  "public",\n\n\n'
    path = write_config(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.line == 3
    assert "end of file" in caught.value.message


def test_invalid_utf8_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'project_id = "a"\n# caf\xe9\n')

    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert (caught.value.line, caught.value.message) == (2, "not valid UTF-8")


WRONG_TYPE = """\
[functions.customers]
verify_jwt = true

[functions.orders]
enabled = true
verify_jwt = "yes"
"""


def test_wrong_type_reports_table_key_and_line(tmp_path: Path, reader: Reader) -> None:
    path = write_config(tmp_path, WRONG_TYPE)
    config = reader.load(path, None)

    with pytest.raises(ConfigError) as caught:
        config.function("orders")
    err = caught.value
    assert (err.line, err.key, err.table) == (reader.line(6), "verify_jwt", "functions.orders")
    assert str(err) == (
        f'{reader.at(path, 6)}: [functions.orders] verify_jwt: expected true or false, got "yes"'
    )
    with pytest.raises(ConfigError, match="verify_jwt"):
        config.functions()


def test_a_bad_table_does_not_break_another_function(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, WRONG_TYPE))

    assert config.function("customers").verify_jwt is True
    assert config.function_names() == ["customers", "orders"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("entrypoint = 3", "expected a string, got 3"),
        ('static_files = "x.html"', 'expected an array of strings, got "x.html"'),
        ('static_files = ["a", 2]', "expected an array of strings, got 2 at index 1"),
        ("enabled = 1", "expected true or false, got 1"),
        # Only a variable's text is read as a boolean; a quoted literal is a type mistake.
        ('verify_jwt = "true"', 'expected true or false, got "true"'),
    ],
)
def test_each_function_key_is_type_checked(
    tmp_path: Path, reader: Reader, line: str, message: str
) -> None:
    config = reader.load(write_config(tmp_path, f"# x\n[functions.f]\n{line}\n"), None)

    with pytest.raises(ConfigError) as caught:
        config.function("f")
    assert (caught.value.line, caught.value.message) == (reader.line(3), message)


def test_missing_function_names_file_and_function(tmp_path: Path, reader: Reader) -> None:
    path = write_config(tmp_path, WRONG_TYPE)
    config = reader.load(path, None)

    with pytest.raises(FunctionNotFoundError) as caught:
        config.function("invoices")
    err = caught.value
    assert isinstance(err, KeyError)
    assert isinstance(err, ConfigError)
    # No line can point at a table that is not there, so the location is the file alone.
    assert err.line is None
    assert str(err) == (
        f"{path}: [functions.invoices]: not defined (functions defined: customers, orders)"
    )


def test_functions_not_a_table_is_located(tmp_path: Path, reader: Reader) -> None:
    text = 'project_id = "x"\nfunctions = ["orders"]\n'
    config = reader.load(write_config(tmp_path, text), None)

    with pytest.raises(ConfigError) as caught:
        config.function("orders")
    assert (caught.value.line, caught.value.key) == (reader.line(2), "functions")
    assert caught.value.message == "expected a table, got an array"


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("[db]\nport = 0\n", "port", "expected a port number (1-65535), got 0"),
        ('[db]\nport = "54322"\n', "port", 'expected a port number (1-65535), got "54322"'),
        ("[auth]\njwt_expiry = true\n", "jwt_expiry", "expected a positive integer, got true"),
        ("[auth]\njwt_secret = 42\n", "jwt_secret", "expected a string, got 42"),
    ],
)
def test_project_wide_values_are_checked_at_load(
    tmp_path: Path, reader: Reader, text: str, key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        reader.load(write_config(tmp_path, text), None)
    err = caught.value
    assert (err.line, err.key, err.message) == (reader.line(2), key, message)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "supabase" / "config.toml"

    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.path == str(path)
    assert caught.value.line is None
    assert str(caught.value) == f"{path}: file not found"


def test_config_error_survives_pickling(tmp_path: Path, reader: Reader) -> None:
    config = reader.load(write_config(tmp_path, WRONG_TYPE), None)
    with pytest.raises(ConfigError) as caught:
        config.function("orders")

    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own bytes
    assert str(copy) == str(caught.value)
    assert (copy.line, copy.key, copy.table) == (reader.line(6), "verify_jwt", "functions.orders")


# --- unknown keys --------------------------------------------------------------------------------


def test_unknown_keys_are_listed_not_rejected(tmp_path: Path) -> None:
    text = '[functions.orders]\nverfiy_jwt = false\nentrypoint = "main.py"\nmemory_mb = 256\n'
    function = load_config(write_config(tmp_path, text)).function("orders")

    assert function.unknown_keys == ("verfiy_jwt", "memory_mb")
    # The typo leaves the default in force, which is exactly why it is worth reporting.
    assert function.verify_jwt is True


# --- a file the Supabase CLI wrote for a TypeScript project ------------------------------------


def test_typescript_project_config_reads(tmp_path: Path, reader: Reader) -> None:
    path = write_config(tmp_path, TYPESCRIPT_PROJECT)
    config = reader.load(path, {})

    assert config.project_id == "acme-web"
    assert (config.api_port, config.db_port, config.db_major_version) == (54331, 54332, 17)
    assert config.jwt_expiry == 7200
    assert config.raw["db"]["pooler"]["pool_mode"] == "transaction"

    functions = config.functions()
    assert list(functions) == ["hello-world", "stripe-webhook"]
    hello = functions["hello-world"]
    assert hello.import_map == "./functions/hello-world/deno.json"
    assert hello.entrypoint_path(config.config_dir) == (
        tmp_path / "supabase" / "functions" / "hello-world" / "index.ts"
    )
    assert hello.line == reader.line(line_containing(TYPESCRIPT_PROJECT, "[functions.hello-world]"))
    webhook = functions["stripe-webhook"]
    assert webhook.verify_jwt is False
    assert webhook.enabled is True
    assert webhook.entrypoint is None
    assert webhook.static_files == ("./functions/stripe-webhook/templates/*.html",)
    assert all(f.unknown_keys == () for f in functions.values())


# --- finding the file ---------------------------------------------------------------------------


def test_env_var_names_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path / "elsewhere", TYPESCRIPT_PROJECT)

    config = load_config(env={CONFIG_ENV_VAR: str(path)})
    assert config.path == path
    assert config.project_id == "acme-web"


def test_env_var_naming_a_missing_file_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"

    with pytest.raises(ConfigError) as caught:
        load_config(env={CONFIG_ENV_VAR: str(missing)})
    assert str(caught.value) == f"{missing}: file not found (named by {CONFIG_ENV_VAR})"


def test_found_by_walking_up_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, TYPESCRIPT_PROJECT)
    deeper = tmp_path / "functions" / "hello-world"
    deeper.mkdir(parents=True)
    monkeypatch.chdir(deeper)

    assert load_config(env={}).path == path


def test_found_beside_the_module_when_not_above_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "bundle"
    path = write_config(bundle, TYPESCRIPT_PROJECT)
    (bundle / "shared").mkdir()
    monkeypatch.setattr(supabase_config, "_MODULE_DIR", bundle / "shared")
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    monkeypatch.chdir(workdir)

    assert load_config(env={}).path == path


def test_not_found_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supabase_config, "_MODULE_DIR", tmp_path / "shared")
    monkeypatch.chdir(tmp_path)

    with pytest.raises(ConfigError) as caught:
        load_config(env={})
    message = str(caught.value)
    assert CONFIG_ENV_VAR in message
    assert f"in {tmp_path} or its parents" in message
    assert f"in {tmp_path / 'shared'} or its parents" in message


# --- function_settings --------------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_settings")
def test_function_settings_reads_its_own_table_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, WRONG_TYPE)
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))

    # The orders table is broken; that is not customers' problem.
    first = function_settings("customers")
    assert first.verify_jwt is True
    path.write_text(WRONG_TYPE.replace("verify_jwt = true", "verify_jwt = false"), "utf-8")
    assert function_settings("customers") is first
    function_settings.cache_clear()
    assert function_settings("customers").verify_jwt is False


@pytest.mark.usefixtures("fresh_settings")
def test_function_settings_raises_for_its_own_bad_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CONFIG_ENV_VAR, str(write_config(tmp_path, WRONG_TYPE)))

    with pytest.raises(ConfigError, match="verify_jwt") as caught:
        function_settings("orders")
    # A cold start scans no lines: the error names file, table and key (`nxt check` the line).
    assert (caught.value.line, caught.value.table) == (None, "functions.orders")
    with pytest.raises(FunctionNotFoundError):
        function_settings("invoices")

"""Tests for `nxt check`: real projects in temporary directories, checked by the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from nxt_cli.check import Problem, check
from shared.supabase_config import CONFIG_ENV_VAR

REPO = Path(__file__).resolve().parents[2]
NXT = REPO / ".venv" / "bin" / "nxt"
UNSET = "NXT_CHECK_TEST_UNSET_VARIABLE"

GOOD_CONFIG = """\
project_id = "check-test"

[api]
port = 54321

[functions.reports]
enabled = true
verify_jwt = true
entrypoint = "../functions/reports/main.py"

# Accepts API keys, which are not JWTs.
[functions.meter-push]
verify_jwt = false
entrypoint = "../functions/meter-push/main.py"
"""

# What `supabase init` writes for a TypeScript (Deno) project, plus a few edits.
TYPESCRIPT_CONFIG = """\
# For detailed configuration reference documentation, visit:
# https://supabase.com/docs/guides/local-development/cli/config
project_id = "acme-web"

[api]
enabled = true
port = 54331
schemas = ["public", "graphql_public"]
max_rows = 1000

[db]
port = 54332
major_version = 17

[db.seed]
enabled = true
sql_paths = ["./seed.sql"]

[realtime]
enabled = true

[studio]
enabled = true
port = 54323
openai_api_key = "env(NXT_CHECK_TEST_OPENAI_KEY)"

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
]

[auth.external.apple]
enabled = false
secret = "env(SUPABASE_AUTH_EXTERNAL_APPLE_SECRET)"

[edge_runtime]
enabled = true
policy = "per_worker"

[analytics]
enabled = true
backend = "postgres"

[functions.hello-world]
enabled = true
verify_jwt = true
import_map = "./functions/hello-world/deno.json"
entrypoint = "./functions/hello-world/index.ts"

[functions.stripe-webhook]
verify_jwt = false
static_files = ["./functions/stripe-webhook/templates/*.html"]
"""


def write_function(root: Path, name: str, accepts: str, *, target: str | None = None,
                   extra: str = "") -> Path:
    """functions/<name>/main.py declaring ``@gated(name, accepts={accepts})``."""
    main = root / "functions" / name / "main.py"
    main.parent.mkdir(parents=True, exist_ok=True)
    main.write_text(
        "from shared.auth.declared import API_KEY, JWT, NONE\n"
        "from shared.auth.gate import gated\n\n\n"
        f'@gated("{name}", accepts={{{accepts}}}, methods=["GET"])\n'
        f"async def {target or name.replace('-', '_')}(request, caller):\n"
        "    return {}\n" + extra,
        encoding="utf-8",
    )
    return main


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project on which config and functions agree: one JWT and one API-key function."""
    config = tmp_path / "supabase" / "config.toml"
    config.parent.mkdir()
    config.write_text(GOOD_CONFIG, encoding="utf-8")
    write_function(tmp_path, "reports", "JWT")
    write_function(tmp_path, "meter-push", "API_KEY, JWT")
    return tmp_path


def edit_config(root: Path, old: str, new: str) -> None:
    path = root / "supabase" / "config.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def nxt_check(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed CLI, run from the repository: the imports must follow --config, not cwd."""
    env = {k: v for k, v in os.environ.items() if k not in (CONFIG_ENV_VAR, UNSET)}
    command = [str(NXT), "check", "--config", str(root / "supabase" / "config.toml"),
               "--functions-dir", str(root / "functions"), *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def problems_of(root: Path) -> list[Problem]:
    return check(root / "supabase" / "config.toml", root / "functions", env={}).problems


# --- agreement ----------------------------------------------------------------------------------


def test_repository_config_and_functions_agree() -> None:
    env = {k: v for k, v in os.environ.items() if k != CONFIG_ENV_VAR}
    result = subprocess.run([str(NXT), "check"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "agree" in result.stdout.splitlines()[-1]


def test_good_project_passes(project: Path) -> None:
    result = nxt_check(project)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"nxt check: {project / 'supabase' / 'config.toml'} and {project / 'functions'}/ agree"
        " (2 functions: meter-push, reports); every revision declares what it must"
    ]


# --- drift --------------------------------------------------------------------------------------


def add_function_without_table(root: Path) -> None:
    write_function(root, "extra", "JWT")


def add_table_without_directory(root: Path) -> None:
    edit_config(root, "# Accepts", '[functions.ghost]\nentrypoint = "../functions/ghost/main.py"'
                "\n\n# Accepts")


def point_entrypoint_elsewhere(root: Path) -> None:
    # Relative to supabase/, as the Supabase CLI resolves it: supabase/functions/reports/main.py.
    edit_config(root, '"../functions/reports/main.py"', '"./functions/reports/main.py"')


def rename_target(root: Path) -> None:
    write_function(root, "reports", "JWT", target="handler")


def verify_api_key_function(root: Path) -> None:
    edit_config(root, "verify_jwt = false", "verify_jwt = true")


def unverify_jwt_function(root: Path) -> None:
    edit_config(root, "verify_jwt = true", "verify_jwt = false")


def add_unknown_key(root: Path) -> None:
    edit_config(root, "enabled = true\n", "enabled = true\nverfiy_jwt = true\n")


def use_unset_variable(root: Path) -> None:
    edit_config(root, "verify_jwt = false", f'verify_jwt = "env({UNSET})"')


def write_wrong_type(root: Path) -> None:
    edit_config(root, "verify_jwt = true", 'verify_jwt = "yes"')


@pytest.mark.parametrize(("drift", "function", "key", "expected"), [
    (add_function_without_table, "extra", None, "has no [functions.extra] table"),
    (add_table_without_directory, "ghost", None, "no directory"),
    (point_entrypoint_elsewhere, "reports", "entrypoint", "supabase/functions/reports/main.py"),
    (rename_target, "reports", "entrypoint", "defines no reports"),
    (verify_api_key_function, "meter-push", "verify_jwt", "an API key is not a JWT"),
    (unverify_jwt_function, "reports", "verify_jwt", "accepts only JWTs"),
    (add_unknown_key, "reports", "verfiy_jwt", "unknown key"),
    (use_unset_variable, "meter-push", "verify_jwt", f"{UNSET} is not set"),
    (write_wrong_type, "reports", "verify_jwt", 'expected true or false, got "yes"'),
])
def test_drift_is_one_line_naming_function_and_key(
    project: Path, drift: Callable[[Path], None], function: str, key: str | None, expected: str
) -> None:
    drift(project)
    result = nxt_check(project)

    assert result.returncode == 1, result.stdout + result.stderr
    *lines, summary = result.stdout.splitlines()
    subject = f"[functions.{function}] {key}: " if key else f"[functions.{function}]: "
    assert len(lines) == 1, lines
    assert subject in lines[0] and expected in lines[0] and "; fix: " in lines[0]
    assert summary.startswith("nxt check: 1 problem:")
    assert "Traceback" not in result.stderr


def test_problem_details(project: Path) -> None:
    unverify_jwt_function(project)
    add_unknown_key(project)
    point_entrypoint_elsewhere(project)
    text = (project / "supabase" / "config.toml").read_text(encoding="utf-8")
    lines = text.split("\n")

    problems = {p.key: p for p in problems_of(project)}

    assert set(problems) == {"verfiy_jwt", "entrypoint", "verify_jwt"}
    assert problems["verfiy_jwt"].fix == "rename it to verify_jwt"
    assert problems["verify_jwt"].fix == "set verify_jwt = true"
    assert problems["entrypoint"].fix == 'entrypoint = "../functions/reports/main.py"'
    for key, problem in problems.items():
        assert problem.function == "reports"
        assert problem.line is not None and lines[problem.line - 1].startswith(f"{key} =")


def test_api_key_message_says_why_and_how(project: Path) -> None:
    verify_api_key_function(project)

    [problem] = problems_of(project)

    assert "an API key is not a JWT" in problem.message
    assert "gateway would refuse every key" in problem.message
    assert problem.fix.startswith("set verify_jwt = false")


def test_function_without_credentials_needs_the_gate_off(project: Path) -> None:
    write_function(project, "meter-push", "NONE")
    verify_api_key_function(project)

    [problem] = problems_of(project)

    assert (problem.function, problem.key) == ("meter-push", "verify_jwt")
    assert "requests without credentials" in problem.message


def test_target_gated_under_another_name(project: Path) -> None:
    main = write_function(project, "reports", "JWT")
    main.write_text(main.read_text().replace('gated("reports"', 'gated("meter-push"'))

    [problem] = problems_of(project)

    assert (problem.function, problem.key) == ("reports", "entrypoint")
    assert 'is gated as "meter-push"' in problem.message


def test_bad_project_setting_is_reported_and_functions_still_checked(project: Path) -> None:
    edit_config(project, "port = 54321", 'port = "x"')
    verify_api_key_function(project)

    problems = problems_of(project)

    assert [(p.function, p.key) for p in problems] == [
        (None, "api.port"), ("meter-push", "verify_jwt")]
    assert problems[0].line == 4


def test_missing_table_fix_uses_the_declaration(project: Path) -> None:
    write_function(project, "webhook", "NONE")

    [problem] = problems_of(project)

    assert problem.line is None
    assert problem.fix == ('add [functions.webhook] with entrypoint ='
                           ' "../functions/webhook/main.py" and verify_jwt = false')


def test_missing_entrypoint_is_the_supabase_default(project: Path) -> None:
    edit_config(project, 'entrypoint = "../functions/reports/main.py"\n', "")

    [problem] = problems_of(project)

    assert (problem.function, problem.key) == ("reports", "entrypoint")
    assert problem.message.endswith("supabase/functions/reports/index.ts")


def test_import_failure_keeps_the_declaration(project: Path) -> None:
    # gated() ran before the module failed, so the declaration is still known and checked.
    write_function(project, "meter-push", "API_KEY", extra="raise RuntimeError('boom')\n")
    verify_api_key_function(project)

    problems = {p.key: p for p in problems_of(project)}

    assert "RuntimeError: boom" in problems["entrypoint"].message
    assert "an API key is not a JWT" in problems["verify_jwt"].message


def test_bad_table_is_reported_once_not_again_as_import_error(project: Path) -> None:
    write_wrong_type(project)

    [problem] = problems_of(project)

    assert (problem.function, problem.key) == ("reports", "verify_jwt")


def test_env_value_that_is_set_passes(project: Path) -> None:
    use_unset_variable(project)
    config, functions = project / "supabase" / "config.toml", project / "functions"

    assert check(config, functions, env={**os.environ, UNSET: "false"}).problems == []


# --- files nxt cannot check ---------------------------------------------------------------------


def test_missing_config_exits_2(tmp_path: Path) -> None:
    result = nxt_check(tmp_path)

    assert result.returncode == 2
    assert "config.toml: file not found" in result.stdout


def test_toml_syntax_error_exits_2_with_line(project: Path) -> None:
    edit_config(project, "[api]", "[api")
    result = nxt_check(project)

    assert result.returncode == 2
    assert f"{project / 'supabase' / 'config.toml'}:3: invalid TOML" in result.stdout


def test_typescript_project_reports_what_it_cannot_match(tmp_path: Path) -> None:
    config = tmp_path / "supabase" / "config.toml"
    config.parent.mkdir()
    config.write_text(TYPESCRIPT_CONFIG, encoding="utf-8")

    result = nxt_check(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    *lines, summary = result.stdout.splitlines()
    assert len(lines) == 2
    assert "[functions.hello-world] entrypoint: " in lines[0]
    assert "TypeScript/JavaScript function" in lines[0]
    assert "[functions.stripe-webhook]: no directory" in lines[1]
    # env() values of other sections are the Supabase CLI's, not needed by any function.
    assert "OPENAI" not in result.stdout
    assert "2 functions checked" in summary


# --- JSON ---------------------------------------------------------------------------------------


def test_json_output(project: Path) -> None:
    verify_api_key_function(project)
    add_table_without_directory(project)

    result = nxt_check(project, "--json")

    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert data["config"] == str(project / "supabase" / "config.toml")
    assert data["functions"] == ["ghost", "meter-push", "reports"]
    assert [(p["function"], p["key"]) for p in data["problems"]] == [
        ("ghost", None), ("meter-push", "verify_jwt")]
    assert all(set(p) == {"function", "key", "line", "message", "fix", "path"}
               for p in data["problems"])
    in_process = check(project / "supabase" / "config.toml", project / "functions")
    assert data == in_process.to_json()


def test_json_output_when_all_agree(project: Path) -> None:
    data = json.loads(nxt_check(project, "--json").stdout)

    assert data == {"ok": True, "config": str(project / "supabase" / "config.toml"),
                    "functions": ["meter-push", "reports"], "problems": []}


# --- another name for the same code (the legacy URL meter-consumption-2) -----------------------

ALIAS_TABLE = """
# The same code under another name, with a target of its own.
[functions.meter-push-2]
verify_jwt = false
entrypoint = "../functions/meter-push/main.py"
"""
ALIAS_TARGET = ('\n\n@gated("meter-push-2", accepts={API_KEY, JWT}, methods=["GET"])\n'
                "async def meter_push_2(request, caller):\n    return {}\n")


def add_alias(root: Path, *, target: bool = True, table: str = ALIAS_TABLE) -> None:
    path = root / "supabase" / "config.toml"
    path.write_text(path.read_text(encoding="utf-8") + table, encoding="utf-8")
    write_function(root, "meter-push", "API_KEY, JWT", extra=ALIAS_TARGET if target else "")


def test_an_alias_serving_its_own_target_passes(project: Path) -> None:
    add_alias(project)
    result = nxt_check(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(3 functions: meter-push, meter-push-2, reports);" in result.stdout.splitlines()[-1]


def test_an_alias_whose_main_py_lacks_its_target_is_drift(project: Path) -> None:
    add_alias(project, target=False)
    found = problems_of(project)
    assert [(p.function, p.key) for p in found] == [("meter-push-2", "entrypoint")], found
    assert "defines no meter_push_2" in found[0].message
    assert nxt_check(project).returncode == 1


def test_an_alias_gated_as_another_name_is_drift(project: Path) -> None:
    add_alias(project)
    main = project / "functions" / "meter-push" / "main.py"
    main.write_text(main.read_text().replace('@gated("meter-push-2"', '@gated("meter-push"'))
    found = [p for p in problems_of(project) if p.function == "meter-push-2"]
    assert [p.key for p in found] == ["entrypoint"] and 'gated as "meter-push"' in found[0].message


def test_an_alias_with_the_jwt_gate_on_for_api_keys_is_drift(project: Path) -> None:
    add_alias(project, table=ALIAS_TABLE.replace("verify_jwt = false", "verify_jwt = true"))
    found = problems_of(project)
    assert [(p.function, p.key) for p in found] == [("meter-push-2", "verify_jwt")], found


def test_an_alias_pointing_at_no_function_is_drift(project: Path) -> None:
    add_alias(project, table=ALIAS_TABLE.replace("functions/meter-push/main.py",
                                                 "functions/nowhere/main.py"))
    found = problems_of(project)
    assert [(p.function, p.key) for p in found] == [("meter-push-2", None)], found
    assert "no directory" in found[0].message

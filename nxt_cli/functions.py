"""Finding and loading the functions of this checkout, the way functions-framework does, but
several in one process: each function is loaded under its own module name, so two functions'
`main` (and their sibling modules, imported relatively) never collide.

A function is a directory of functions/ with a main.py, or a `[functions.<name>]` table of
supabase/config.toml whose entrypoint is another function's main.py: another name for the same
code, served by its own target (`meter-consumption-2`, the legacy URL, is meter-consumption's
main.py with the target `meter_consumption_2`). Such an alias is loaded under its own module
name too, as a function of its own.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from nxt_cli.config_lint import add_line, load_config
from shared.supabase_config import ConfigError, SupabaseConfig


@dataclass
class LoadedFunction:
    name: str
    source: Path
    module: ModuleType
    target: str
    app: Any  # the ASGI app functions-framework builds for the target


def discover(root: Path) -> list[str]:
    """Function names: directories of functions/ that hold a main.py."""
    base = root / "functions"
    if not base.is_dir():
        return []
    return sorted(p.parent.name for p in base.glob("*/main.py"))


def aliases(root: Path, config: SupabaseConfig | None = None) -> dict[str, str]:
    """alias -> the function directory whose main.py it names: every config table without a
    directory of its own whose entrypoint resolves to functions/<directory>/main.py."""
    if config is None:
        path = root / "supabase" / "config.toml"
        if not path.is_file():
            return {}
        config = load_config(path)
    return alias_targets(config, root / "functions", discover(root))


def alias_targets(config: SupabaseConfig, functions_dir: Path, directories: list[str]
                  ) -> dict[str, str]:
    """`aliases` for a given functions/ directory and its function directories."""
    base = os.path.abspath(functions_dir)
    found: dict[str, str] = {}
    for name in config.function_names():
        if name in directories:
            continue
        try:
            entrypoint = config.function(name).entrypoint_path(config.config_dir)
        except ConfigError:
            continue  # a broken table is `nxt check`'s to report
        if entrypoint is None or entrypoint.name != "main.py":
            continue
        parent = Path(os.path.abspath(entrypoint.parent))
        if str(parent.parent) == base and parent.name in directories:
            found[name] = parent.name
    return found


def function_sources(root: Path, config: SupabaseConfig | None = None) -> dict[str, Path]:
    """name -> its main.py, for every function of the checkout, aliases included."""
    sources = {name: root / "functions" / name / "main.py" for name in discover(root)}
    for alias, directory in aliases(root, config).items():
        sources[alias] = root / "functions" / directory / "main.py"
    return dict(sorted(sources.items()))


def module_name(name: str) -> str:
    return "nxt_fn_" + name.replace("-", "_")


def import_main(source: Path, name: str) -> ModuleType:
    modname = module_name(name)
    if modname in sys.modules:
        return sys.modules[modname]
    spec = importlib.util.spec_from_file_location(
        modname, source, submodule_search_locations=[str(source.parent)])
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[modname]
        if isinstance(exc, ConfigError):
            add_line(exc)  # a cold start's config errors name no line; nxt's do
        raise
    return module


def load(source: Path, name: str) -> LoadedFunction:
    # Not create_asgi_app: it loads every source as a module named after its file, and the
    # emulator serves every function's main.py in one process.
    from functions_framework.aio import create_asgi_app_from_module

    from shared.auth.declared import target_name

    target = target_name(name)
    module = import_main(source, name)
    spec = module.__spec__
    # No signature type: the framework takes the one its decorator registered for the target.
    app = create_asgi_app_from_module(target, str(source), None, module, spec)
    return LoadedFunction(name=name, source=source, module=module, target=target, app=app)

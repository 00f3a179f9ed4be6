"""Finding and loading the functions of this checkout, the way functions-framework does, but
several in one process: each main.py is loaded under its own module name, so two functions'
`main` (and their sibling modules, imported relatively) never collide."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any


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
    except BaseException:
        del sys.modules[modname]
        raise
    return module


def load(source: Path, name: str) -> LoadedFunction:
    from functions_framework import _function_registry
    from functions_framework.aio import create_asgi_app_from_module

    from shared.gate import target_name

    target = target_name(name)
    module = import_main(source, name)
    spec = module.__spec__
    signature = _function_registry.REGISTRY_MAP.get(target, "http")
    app = create_asgi_app_from_module(target, str(source), signature, module, spec)
    return LoadedFunction(name=name, source=source, module=module, target=target, app=app)

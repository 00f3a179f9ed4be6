"""`nxt openapi`: each HTTP function's OpenAPI document, written to docs/openapi/<name>.json.

The documents are checked in for the lenders and aggregators who integrate from them; `--check`
fails when a checked-in document no longer matches the code (CI runs it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nxt_cli.functions import aliases, function_sources, import_main

DOCS_DIR = Path("docs") / "openapi"


def documents(root: Path) -> dict[str, dict[str, Any]]:
    """name -> document, for every function whose main.py defines `openapi()`. An alias (a
    config table whose entrypoint is another function's main.py) gets its own document from
    that main.py's `openapi(name)`."""
    found: dict[str, dict[str, Any]] = {}
    other_names = aliases(root)
    for name, source in function_sources(root).items():
        module = import_main(source, name)
        build = getattr(module, "openapi", None)
        if callable(build):
            found[name] = build(name) if name in other_names else build()
    return found


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def sync(root: Path, *, check: bool) -> list[str]:
    """Write (or, with check, compare) the documents; returns the stale or written paths."""
    out = root / DOCS_DIR
    wanted = {out / f"{name}.json": render(doc) for name, doc in documents(root).items()}
    changed = [path for path, text in wanted.items()
               if not path.exists() or path.read_text() != text]
    orphans = sorted(set(out.glob("*.json")) - set(wanted)) if out.is_dir() else []
    if not check:
        out.mkdir(parents=True, exist_ok=True)
        for path in changed:
            path.write_text(wanted[path])
        for path in orphans:
            path.unlink()
    return [str(p.relative_to(root)) for p in (*changed, *orphans)]

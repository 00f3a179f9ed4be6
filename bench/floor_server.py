"""Serves the floors (bench/floor/main.py, and bench/bare/main.py's constant handler) exactly as
`nxt serve` serves the functions: each one's functions-framework ASGI app behind the local
gateway, in one uvicorn process.

    python -m bench.floor_server --port 8099   (DATABASE_URL, FLOOR_CLAIMS in the environment)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from nxt_cli.functions import load
from nxt_cli.gateway import Gateway


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    here = Path(__file__).parent
    app = Gateway({name: load(here / name / "main.py", name).app for name in ("floor", "bare")})
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()

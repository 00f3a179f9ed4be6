"""The console as one HTML page: server-rendered, inline CSS and SVG, no script."""

from __future__ import annotations

from datetime import datetime
from html import escape

from nxt_cli.console.state import GridConsumption, State, TableFreshness

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d232b}
header{background:#1d232b;color:#fff;padding:.6rem 1rem;display:flex;gap:1rem;flex-wrap:wrap}
header a{color:#cfe3ff}
main{padding:0 1rem 2rem;max-width:1200px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;margin:1rem 0;padding:.5rem 1rem}
h2{font-size:1.1rem;margin:.4rem 0}
table{border-collapse:collapse;width:100%;display:block;overflow-x:auto}
th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #eef0f2;vertical-align:top}
.ok{color:#137333}.stale,.bad{color:#b3261e;font-weight:600}.muted{color:#6b7480}
tr.stale td{background:#fdecea}
.small{font-size:12px}
button{font:inherit;padding:.15rem .6rem}
svg{display:block;max-width:100%}
pre{white-space:pre-wrap;font-size:12px;margin:0}
"""


def _t(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def _functions(state: State) -> str:
    rows = []
    for f in state.functions:
        last = "<br>".join(
            f"{escape(s.method)} {s.status} {s.ms:.0f} ms"
            f" <span class='muted small'>{escape(s.request_id or '')}</span>" for s in f.last)
        pct = (f"{f.p50_p99[0]:.0f} / {f.p50_p99[1]:.0f} ms" if f.p50_p99 else "—")
        rows.append(
            f"<tr data-function='{escape(f.name)}'><td>{escape(f.name)}</td>"
            f"<td>{escape(f.trigger)}</td><td>{'true' if f.verify_jwt else 'false'}</td>"
            f"<td>{escape(f.accepts)}</td><td>{'enabled' if f.enabled else 'disabled'}</td>"
            f"<td class='small'>{last or '<span class=muted>none yet</span>'}</td>"
            f"<td>{pct}</td></tr>")
    return ("<section id='functions'><h2>Functions</h2><table><tr><th>function</th>"
            "<th>trigger</th><th>verify_jwt</th><th>accepts</th><th>state</th>"
            "<th>last requests</th><th>p50 / p99 (5 min)</th></tr>" + "".join(rows)
            + "</table></section>")


def _jobs(state: State) -> str:
    rows = []
    for j in state.jobs:
        runs = "<br>".join(
            f"{escape(str(r.get('started', ''))[:19])} · {r.get('seconds', '?')} s ·"
            f" <span class='{'bad' if str(r.get('status', '')).startswith('failed') else 'ok'}'>"
            f"{escape(str(r.get('status', '')))}</span>"
            + (f" · {escape(_written(r))}" if _written(r) else "")
            + f" <span class='muted small'>({escape(str(r.get('by', '')))})</span>"
            for r in j.runs)
        rows.append(
            f"<tr data-job='{escape(j.name)}'><td>{escape(j.name)}</td>"
            f"<td><code>{escape(j.cron)}</code> {escape(j.timezone)}</td>"
            f"<td>{_t(j.next_run)}</td>"
            f"<td class='small runs'>{runs or '<span class=muted>no run yet</span>'}</td>"
            f"<td><form method='post' action='/console/jobs/{escape(j.name)}/run'>"
            f"<button type='submit'>run now</button></form></td></tr>")
    return ("<section id='jobs'><h2>Jobs</h2><table><tr><th>job</th><th>schedule</th>"
            "<th>next run</th><th>last runs</th><th></th></tr>" + "".join(rows)
            + "</table></section>")


def _written(run: dict[str, object]) -> str:
    result = run.get("result")
    if not isinstance(result, dict):
        return ""
    for key in ("rows", "inserted", "orders", "dropped"):
        if key in result:
            return f"{key} {result[key]}"
    return ""


def _bars(values: list[int], width: int = 240, height: int = 28) -> str:
    top = max(values) or 1
    step = width / len(values)
    bars = "".join(
        f"<rect x='{i * step:.1f}' y='{height - (v / top) * height:.1f}'"
        f" width='{max(step - 1, 1):.1f}' height='{(v / top) * height:.1f}' fill='#4a7bd1'/>"
        if v else
        f"<rect x='{i * step:.1f}' y='{height - 2}' width='{max(step - 1, 1):.1f}' height='2'"
        f" fill='#b3261e'/>" for i, v in enumerate(values))
    return (f"<svg viewBox='0 0 {width} {height}' width='{width}' height='{height}'"
            f" role='img' aria-label='rows per hour, last 24 hours'>{bars}</svg>")


def _lag(t: TableFreshness) -> str:
    if t.lag_seconds is None:
        return "no data"
    return f"{t.lag_seconds / 60:.0f} min (expected ≤ {t.expected_seconds / 60:.0f} min)"


def _freshness(state: State) -> str:
    rows = "".join(
        f"<tr class='{escape(t.status)}' data-table='{escape(t.table)}'>"
        f"<td>{escape(t.table)}</td><td class='{escape(t.status)}'>{escape(t.status)}</td>"
        f"<td>{_lag(t)}</td><td>{_bars(t.hourly_rows)}</td></tr>" for t in state.freshness)
    return ("<section id='freshness'><h2>Freshness</h2><table><tr><th>table</th><th>status</th>"
            "<th>lag</th><th>rows per hour, last 24 h</th></tr>" + rows + "</table></section>")


def _chart(grid: GridConsumption, width: int = 720, height: int = 90) -> str:
    values = [v for v in grid.kwh if v is not None]
    top = max(values, default=0) or 1
    step = width / max(len(grid.kwh) - 1, 1)
    points, paths = [], []
    for i, v in enumerate(grid.kwh):
        if v is None:
            if points:
                paths.append(points)
                points = []
            continue
        points.append(f"{i * step:.1f},{height - (v / top) * (height - 4):.1f}")
    if points:
        paths.append(points)
    lines = "".join(f"<polyline fill='none' stroke='#1d6fb8' stroke-width='1.2'"
                    f" points='{' '.join(p)}'/>" for p in paths)
    marks = "".join(
        f"<rect class='missing' x='{i * step:.1f}' y='{height - 3}' width='{max(step, 1):.1f}'"
        f" height='3' fill='#b3261e'/>" for i, v in enumerate(grid.kwh) if v is None)
    marks += "".join(
        f"<rect class='estimated' x='{i * step:.1f}' y='0' width='{max(step, 1):.1f}'"
        f" height='3' fill='#e8a317'/>" for i, e in enumerate(grid.estimated) if e)
    return (f"<svg viewBox='0 0 {width} {height}' width='{width}' height='{height}' role='img'"
            f" aria-label='hourly consumption of {escape(grid.name)}'>{lines}{marks}</svg>")


def _consumption(state: State) -> str:
    since = _t(state.consumption_since)
    grids = "".join(
        f"<div class='grid' data-grid='{g.grid_id}'><h3 class='small'>{escape(g.name)}"
        f" <span class='muted'>· {g.missing_hours} hours missing (red) ·"
        f" {g.estimated_hours} estimated (amber)</span></h3>{_chart(g)}</div>"
        for g in state.consumption) or "<p class='muted'>no hourly consumption yet</p>"
    return (f"<section id='consumption'><h2>Consumption</h2><p class='small muted'>hourly kWh"
            f" per grid from meter_snapshot_1_h, since {since}</p>{grids}</section>")


def _schema(state: State) -> str:
    text = "\n".join(state.schema) or "not read"
    return (f"<section id='schema'><h2>Drift and schema</h2><pre>{escape(text)}</pre>"
            "</section>")


def render(state: State) -> str:
    errors = "".join(f"<p class='bad'>{escape(e)}</p>" for e in state.errors)
    nav = " ".join(f"<a href='#{s}'>{s}</a>" for s in
                   ("functions", "jobs", "freshness", "consumption", "schema"))
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>nxt console</title><style>{CSS}</style></head><body>"
            f"<header><strong>nxt console</strong><span>{_t(state.now)}</span>{nav}</header>"
            f"<main>{errors}{_functions(state)}{_jobs(state)}{_freshness(state)}"
            f"{_consumption(state)}{_schema(state)}</main></body></html>")


def message(title: str, text: str) -> str:
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>"
            f"<section><h2>{escape(title)}</h2><p>{escape(text)}</p></section></main>"
            "</body></html>")

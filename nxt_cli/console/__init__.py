"""The operator console: what the local stack is doing, at a glance, in a browser.

`nxt serve` (and so `nxt dev`) serves it at `/` beside the functions: server-rendered HTML, no
script, no build step, nothing from a CDN. The sections: the functions (trigger, verify_jwt,
enabled, the last requests with p50/p99), the jobs (schedule, next run, last runs, "run now"),
the snapshot tables' freshness (red when stale, the last day per hour), the last 14 days of
hourly consumption per grid from the tables meter-consumption reads (estimated and missing
hours marked), and `nxt check` / `nxt db status`. Only the operator and the service role see
it (`access.py`).
"""

"""Where the two planes meet, do they agree? (`nxt db reconcile`, and the reconcile-check job,
which logs what this finds.)

The planes live in different databases (often on different servers), so each check reads what
it needs from both and compares here; the time-series side is read over a window (`--days`,
30 by default), since its tables grow without bound. The checks:

- unknown-meters / unknown-grids: meters and grids the telemetry and snapshots name that the
  transactional plane does not have (deleted ones still count as known);
- order-snapshots: order snapshots (created or synced within the window) that disagree with
  their orders (the order missing, or its status, amount, currency or time different). Only
  orders sync-orders has already seen (up to its watermark) are compared: a newer change is
  not a disagreement, only not synced yet;
- wallet-ledger: each meter wallet's balance against its own transactions: the newest
  transaction's (the last written: by id, since their created_at need not follow the order
  they were applied in) balance after must be the wallet's balance, and each transaction's
  balance after its balance before plus its amount;
- snapshot-dimensions: hourly snapshot rows whose meter dimension (customer, grid,
  organization, hidden flag) is not the meter's in the transactional plane today. A row keeps
  the dimension of its first build (the legacy rule, timeseries/hourly.py), so a rebuild does
  not change it: the report names the hours and the `nxt backfill snapshots` range that
  rebuilds them once the build's rows there are deleted.

Each check gives a count and a few examples. Exit status: 0 the planes agree, 1 something
disagrees, 2 a database did not answer.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

EXAMPLES = 5
AGREE, DISAGREE, UNREACHABLE = 0, 1, 2


@dataclass
class Check:
    name: str
    what: str
    count: int = 0
    examples: list[str] = field(default_factory=list)
    fix: str | None = None

    def add(self, example: str) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)

    def lines(self) -> list[str]:
        if not self.count:
            return [f"  {self.name}: agree ({self.what})"]
        out = [f"  {self.name}: {self.count} disagree ({self.what})"]
        out += [f"    {e}" for e in self.examples]
        if self.count > len(self.examples):
            out.append(f"    ... and {self.count - len(self.examples)} more")
        if self.fix:
            out.append(f"    fix: {self.fix}")
        return out


@dataclass
class Report:
    since: datetime
    checks: list[Check] = field(default_factory=list)
    error: str | None = None

    @property
    def exit_code(self) -> int:
        if self.error:
            return UNREACHABLE
        return DISAGREE if any(c.count for c in self.checks) else AGREE

    def as_dict(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "error": self.error,
                "checks": [asdict(c) for c in self.checks]}

    def lines(self) -> list[str]:
        if self.error:
            return [f"nxt db reconcile: {self.error}"]
        head = (f"the planes agree (time series since {self.since:%Y-%m-%d %H:%M} UTC)"
                if not self.exit_code else
                f"the planes disagree (time series since {self.since:%Y-%m-%d %H:%M} UTC)")
        return [head] + [line for c in self.checks for line in c.lines()]


# -- what each plane says ------------------------------------------------------------------

_METERS = "select id from public.meters"
_GRIDS = "select id from public.grids"
_TELEMETRY_METERS = """
select meter_id from ts.meter_readings where ts >= %(since)s
union select meter_id from public.meter_snapshot_1_h where created_at >= %(since_naive)s
"""
_SNAPSHOT_GRIDS = """
select grid_id, 'meter_snapshot_1_h' from public.meter_snapshot_1_h
 where created_at >= %(since_naive)s and grid_id is not null
union select grid_id, 'grid_business_snapshot_1_d' from public.grid_business_snapshot_1_d
 where created_at >= %(since_naive)s
union select grid_id, 'order_snapshots' from public.order_snapshots
 where created_at >= %(since_naive)s and grid_id is not null
"""
_SYNCED_UP_TO = "select watermark from ts.job_watermarks where job = 'sync-orders'"
# Those written within the window: created then, or synced then (a legacy row has no synced_at).
_ORDER_SNAPSHOTS = """
select order_id, status, amount, currency, created_at from public.order_snapshots
 where created_at >= %(since_naive)s or synced_at >= %(since)s
"""
# The order as sync-orders copies it (functions/sync-orders/sync.py), and when it last changed.
_ORDERS = """
select o.id, o.order_status::text, o.amount, o.currency::text,
       (o.created_at at time zone 'UTC'), o.updated_at
  from public.orders o where o.id = any(%s)
"""
_LEDGER = """
with t as (
  select t.id, t.wallet_id, t.amount, t.balance_before, t.balance_after,
         row_number() over (partition by t.wallet_id order by t.id desc) as n
    from public.transactions t
    join public.wallets w on w.id = t.wallet_id and w.meter_id is not null
   where t.balance_before <> -1 and t.balance_after <> -1  -- the legacy 'not recorded'
)
select 'chain', t.wallet_id, t.id, t.balance_before, t.amount, t.balance_after
  from t where abs(t.balance_before + t.amount - t.balance_after) > 1e-6
union all
select 'balance', w.id, t.id, w.balance, null, t.balance_after
  from public.wallets w join t on t.wallet_id = w.id and t.n = 1
 where abs(w.balance - t.balance_after) > 1e-6
 order by 2, 3
"""
# The meter's dimension today, as snapshot-meters reads it (customer through the connection,
# grid through the customer, hidden: the customer's flag, a meter without one hidden).
_DIMENSION = """
select m.id, c.id, g.id, g.organization_id, coalesce(c.is_hidden_from_reporting, true)
  from public.meters m
  left join public.connections n on n.id = m.connection_id
  left join public.customers c on c.id = n.customer_id
  left join public.grids g on g.id = c.grid_id
"""
_SNAPSHOT_DIMENSIONS = """
select meter_id, customer_id, grid_id, organization_id, is_hidden_from_reporting,
       count(*), min(created_at), max(created_at)
  from public.meter_snapshot_1_h where created_at >= %(since_naive)s
 group by 1, 2, 3, 4, 5
"""


def _rows(conn: Any, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    return list(conn.execute(sql, params).fetchall())


def _unknown(tx: Any, ts: Any, params: dict[str, Any]) -> list[Check]:
    meters = Check("unknown-meters", "meters in the telemetry the transactional plane has")
    known = {r[0] for r in _rows(tx, _METERS)}
    for (meter,) in sorted(_rows(ts, _TELEMETRY_METERS, params)):
        if meter not in known:
            meters.add(f"meter {meter}: readings or snapshots, no row in public.meters")
    grids = Check("unknown-grids", "grids in the snapshots the transactional plane has")
    known = {r[0] for r in _rows(tx, _GRIDS)}
    for grid, table in sorted(_rows(ts, _SNAPSHOT_GRIDS, params)):
        if grid not in known:
            grids.add(f"grid {grid} in {table}: no row in public.grids")
    if meters.count or grids.count:
        meters.fix = grids.fix = ("describe them in the transactional plane, or find the"
                                  " writer that names them")
    return [meters, grids]


def _same_amount(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _orders(tx: Any, ts: Any, params: dict[str, Any]) -> Check:
    check = Check("order-snapshots", "order snapshots against their orders")
    watermark = ts.execute(_SYNCED_UP_TO).fetchone()
    synced = watermark[0] if watermark else None
    snapshots = _rows(ts, _ORDER_SNAPSHOTS, params)
    orders = {r[0]: r for r in _rows(tx, _ORDERS, ([s[0] for s in snapshots],))}
    for order_id, status, amount, currency, created in sorted(snapshots):
        order = orders.get(order_id)
        if order is None:
            check.add(f"order {order_id}: snapshotted, no row in public.orders")
            continue
        _, o_status, o_amount, o_currency, o_created, updated = order
        if synced is not None and updated is not None and updated > synced:
            continue  # changed after sync-orders last ran: not synced yet
        for what, mine, theirs, same in (
                ("status", status, o_status, status == o_status),
                ("amount", amount, o_amount, _same_amount(amount, o_amount)),
                ("currency", currency, o_currency, currency == o_currency),
                ("time", created, o_created, created == o_created)):
            if not same:
                check.add(f"order {order_id}: {what} {theirs!r} in orders,"
                          f" {mine!r} in order_snapshots")
    if check.count:
        check.fix = ("run sync-orders (`nxt invoke sync-orders`); a disagreement that stays"
                     " means a writer changed a snapshot or an order behind updated_at")
    return check


def _ledger(tx: Any) -> Check:
    check = Check("wallet-ledger", "meter wallets against their transactions")
    for kind, wallet, transaction, before, amount, after in _rows(tx, _LEDGER):
        if kind == "chain":
            check.add(f"wallet {wallet}, transaction {transaction}: {before} + {amount} is not"
                      f" its balance after, {after}")
        else:
            check.add(f"wallet {wallet}: balance {before}, its newest transaction"
                      f" ({transaction}) left {after}")
    if check.count:
        check.fix = ("find the writer that changed a balance without a transaction (or a"
                     " transaction without its balance); nothing here rewrites money")
    return check


def _dimensions(tx: Any, ts: Any, params: dict[str, Any]) -> Check:
    check = Check("snapshot-dimensions",
                  "hourly snapshot rows against their meter's dimension today")
    today = {r[0]: r[1:] for r in _rows(tx, _DIMENSION)}
    lo: datetime | None = None
    hi: datetime | None = None
    for meter, customer, grid, org, hidden, rows, first, last in sorted(
            _rows(ts, _SNAPSHOT_DIMENSIONS, params), key=lambda r: (r[0], r[6])):
        now = today.get(meter)
        if now is None or now == (customer, grid, org, hidden):
            continue  # an unknown meter is unknown-meters' to report
        changed = [f"{name} {was!r} -> {is_!r}" for name, was, is_ in zip(
            ("customer", "grid", "organization", "hidden"), (customer, grid, org, hidden), now,
            strict=True) if was != is_]
        check.count += 1
        if len(check.examples) < EXAMPLES:
            check.examples.append(f"meter {meter}: {rows} rows {first:%Y-%m-%d %H:%M} to"
                                  f" {last:%Y-%m-%d %H:%M}: {', '.join(changed)}")
        lo = first if lo is None else min(lo, first)
        hi = last if hi is None else max(hi, last)
    if check.count and lo is not None and hi is not None:
        end = hi + timedelta(hours=1)
        check.fix = (f"rows keep the dimension of their first build (the legacy rule), so a"
                     f" rebuild leaves them as they are: to take today's, delete the build's rows"
                     f" of those meters (inserted_by_build) from {lo:%Y-%m-%dT%H:00} to"
                     f" {end:%Y-%m-%dT%H:00} and run `nxt backfill snapshots --from"
                     f" {lo:%Y-%m-%dT%H:00} --to {end:%Y-%m-%dT%H:00}`")
    return check


def reconcile(url: str, ts_url: str, *, days: int = 30,
              now: datetime | None = None) -> Report:
    """Both planes read in sessions of their own, read-only; blocking (a job runs it in a
    thread)."""
    import psycopg

    since = (now or datetime.now(UTC)) - timedelta(days=days)
    report = Report(since)
    params = {"since": since, "since_naive": since.replace(tzinfo=None)}
    try:
        with psycopg.connect(url, autocommit=True) as tx, \
                psycopg.connect(ts_url, autocommit=True) as ts:
            tx.execute("set default_transaction_read_only = on")
            ts.execute("set default_transaction_read_only = on")
            report.checks = [*_unknown(tx, ts, params), _orders(tx, ts, params), _ledger(tx),
                             _dimensions(tx, ts, params)]
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        report.error = f"a database did not answer: {first}"
    return report

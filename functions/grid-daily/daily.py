"""The daily per-grid business snapshot, `public.grid_business_snapshot_1_d`, with days in each
grid's own time zone.

A row is a grid and a local day; its created_at is that local date at 00:00 (timestamp without
time zone), which is how the legacy readers look a day up. Only grids that are neither deleted
nor hidden from reporting get rows, as the legacy writers write only visible grids.

What the job computes, and when:
- the day's measures, rebuilt for each of the last REBUILD_DAYS local days (late readings
  rebuild hourly snapshots, and the days that contain those hours must follow):
  hps_consumption_kwh and fs_consumption_kwh (the day's hourly rows of the grid's HPS and FS
  meters, hidden ones included as the legacy sums them, NaN skipped, rounded to 2 decimals as
  the legacy does), total_consumption_kwh (their sum, as the legacy adds the two doubles),
  energy_topup_revenue (completed energy top-ups not hidden from reporting, by the order's
  creation time, as the legacy function find_energy_topup_revenue sums them),
  connection_fee_revenue (completed connection payments less refunds), and this project's
  total_consumption_kwh_exact, energy_topup_revenue_exact, energy_topup_currency,
  estimated_hours, active_meter_count, completed_order_count;
- the grid's state, for the latest complete local day only (it is what the grid was when that
  day closed: rewriting older days with today's state would change history): names, tariffs
  (hps_tariff = kwh_tariff_essential_service, fs_tariff = kwh_tariff_full_service), kwp, kwh,
  monthly_rental and daily_rental, the default connection fees, and the customer, connection
  and meter counts as the legacy counts them (`_STATE`).

Each upsert writes only the columns it computes: the legacy columns this job does not compute
(issue counts, production, cuf, battery modules) are never written, so what the legacy writers
put there stays. Re-running a day gives the same row.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

REBUILD_DAYS = 7

# The grids reported on, with their state and the legacy's counts. The joins and filters are
# the legacy counts': through the meters' connections and customers, customers not hidden from
# reporting, accounts not deleted (a customer without an account counts); connections not
# deleted for the customer and connection counts, meters not deleted for the connection counts
# only (the legacy meter counts count deleted meters too). A connection counts once per type
# it has; its women_impacted once per meter on it, as the legacy sums them.
_STATE = """
with grid as (
  select g.id, g.name, g.organization_id, o.name as organization_name, g.timezone, g.kwp, g.kwh,
         g.monthly_rental, g.kwh_tariff_essential_service, g.kwh_tariff_full_service,
         g.default_hps_connection_fee, g.default_fs_1_phase_connection_fee,
         g.default_fs_3_phase_connection_fee
    from public.grids g
    left join public.organizations o on o.id = g.organization_id
   where g.deleted_at is null and not g.is_hidden_from_reporting
), reported as (
  select c.grid_id, c.id as customer_id, n.id as connection_id, n.is_residential,
         n.is_commercial, n.is_public, n.women_impacted, m.meter_type::text as meter_type,
         m.meter_phase::text as meter_phase, n.deleted_at is null as connection_live,
         m.deleted_at is null as meter_live
    from public.meters m
    join public.connections n on n.id = m.connection_id
    join public.customers c on c.id = n.customer_id
    left join public.accounts a on a.id = c.account_id
   where not c.is_hidden_from_reporting and a.deleted_at is null
), counts as (
  select grid_id,
         count(distinct customer_id) filter (where connection_live) as customers,
         count(distinct connection_id) filter (where live and is_residential) as residential,
         count(distinct connection_id) filter (where live and is_commercial) as commercial,
         count(distinct connection_id) filter (where live and is_public) as public_count,
         coalesce(sum(women_impacted) filter (where live and is_residential), 0)
           + coalesce(sum(women_impacted) filter (where live and is_commercial), 0)
           + coalesce(sum(women_impacted) filter (where live and is_public), 0) as women,
         count(*) filter (where meter_type = 'HPS') as hps_meters,
         count(*) filter (where meter_type = 'FS') as fs_meters,
         count(*) filter (where meter_phase = 'SINGLE_PHASE') as single_phase,
         count(*) filter (where meter_phase = 'THREE_PHASE') as three_phase
    from (select *, connection_live and meter_live as live from reported) r
   group by grid_id
), lifeline as (
  select c.grid_id, sum(n.is_lifeline::int) as lifeline
    from public.connections n
    join public.customers c on c.id = n.customer_id
    left join public.accounts a on a.id = c.account_id
   where not c.is_hidden_from_reporting and a.deleted_at is null and n.deleted_at is null
   group by c.grid_id
)
select grid.*, coalesce(k.customers, 0), coalesce(k.residential, 0), coalesce(k.commercial, 0),
       coalesce(k.public_count, 0), coalesce(k.women, 0), coalesce(l.lifeline, 0),
       coalesce(k.hps_meters, 0), coalesce(k.fs_meters, 0), coalesce(k.single_phase, 0),
       coalesce(k.three_phase, 0)
  from grid
  left join counts k on k.grid_id = grid.id
  left join lifeline l on l.grid_id = grid.id
 order by grid.id
"""

# _STATE's columns as the recordset below names and types them.
_GRID_FIELDS: tuple[tuple[str, str], ...] = (
    ("grid_id", "integer"), ("grid_name", "character varying"), ("organization_id", "integer"),
    ("organization_name", "character varying"), ("timezone", "text"),
    ("kwp", "double precision"), ("kwh", "double precision"),
    ("monthly_rental", "double precision"), ("hps_tariff", "double precision"),
    ("fs_tariff", "double precision"), ("hps_fee", "double precision"),
    ("fs_1_phase_fee", "double precision"), ("fs_3_phase_fee", "double precision"),
    ("customers", "integer"), ("residential", "integer"), ("commercial", "integer"),
    ("public_count", "integer"), ("women", "integer"), ("lifeline", "integer"),
    ("hps_meters", "integer"), ("fs_meters", "integer"), ("single_phase", "integer"),
    ("three_phase", "integer"),
)
_GRIDS = ("grid as (select * from jsonb_to_recordset(%(grids)s::jsonb) as r("
          + ", ".join(f"{n} {t}" for n, t in _GRID_FIELDS) + "))")

# The local days of each grid: [lo, hi) the day's start and end in UTC, as the snapshot tables
# hold time (timestamp without time zone); created_at the local date at 00:00.
_DAYS = """
day as (
  select g.*, d::date as day, d::date::timestamp as created_at,
         (d::date::timestamp at time zone g.timezone) at time zone 'UTC' as lo,
         ((d::date + 1)::timestamp at time zone g.timezone) at time zone 'UTC' as hi
    from grid g,
         generate_series((%(now)s::timestamptz at time zone g.timezone)::date - %(days)s,
                         (%(now)s::timestamptz at time zone g.timezone)::date - 1,
                         interval '1 day') as d
)"""

# The measures of each day. A legacy NaN is no consumption (skipped, and an estimated hour);
# a legacy row has no exact value, so its double's numeric is used.
_MEASURES = f"""
with {_GRIDS}, {_DAYS},
energy as (
  select d.grid_id, d.day,
         round(sum(x.kwh) filter (where h.meter_type = 'HPS'), 2) as hps,
         round(sum(x.kwh) filter (where h.meter_type = 'FS'), 2) as fs,
         sum(x.kwh) filter (where h.meter_type in ('HPS', 'FS')) as total,
         count(*) filter (where coalesce(h.is_estimated, false) or x.kwh is null) as estimated,
         count(distinct h.meter_id) filter (where x.kwh > 0) as active
    from day d
    join public.meter_snapshot_1_h h
      on h.grid_id = d.grid_id and h.created_at >= d.lo and h.created_at < d.hi
   cross join lateral (
     select case when h.consumption_kwh = 'NaN'::double precision then null
                 else coalesce(h.consumption_kwh_exact, h.consumption_kwh::numeric) end as kwh) x
   group by d.grid_id, d.day
), money as (
  select d.grid_id, d.day,
         sum(k.amount) filter (where k.topup) as revenue,
         count(*) filter (where k.topup) as orders,
         case when count(distinct o.currency) filter (where k.topup) = 1
              then min(o.currency) filter (where k.topup) end as currency,
         sum(case when o.order_type = 'CONNECTION_PAYMENT' then k.amount
                  when o.order_type = 'CONNECTION_REFUND' then -k.amount end) as fees
    from day d
    join public.order_snapshots o
      on o.grid_id = d.grid_id and o.created_at >= d.lo and o.created_at < d.hi
     and o.status = 'COMPLETED'
   cross join lateral (
     select coalesce(o.amount_exact, o.amount::numeric) as amount,
            o.order_type = 'ENERGY_TOPUP' and o.is_hidden_from_reporting = false as topup) k
   group by d.grid_id, d.day
)
insert into public.grid_business_snapshot_1_d as t (
  created_at, grid_id, grid_name, organization_id, organization_name, timezone,
  hps_consumption_kwh, fs_consumption_kwh, total_consumption_kwh, total_consumption_kwh_exact,
  estimated_hours, active_meter_count, energy_topup_revenue, energy_topup_revenue_exact,
  energy_topup_currency, completed_order_count, connection_fee_revenue, built_at)
select d.created_at, d.grid_id, d.grid_name, d.organization_id, d.organization_name, d.timezone,
       coalesce(e.hps, 0)::double precision, coalesce(e.fs, 0)::double precision,
       -- the legacy adds its two doubles
       coalesce(e.hps, 0)::double precision + coalesce(e.fs, 0)::double precision,
       coalesce(e.total, 0), coalesce(e.estimated, 0), coalesce(e.active, 0),
       coalesce(m.revenue, 0)::double precision, coalesce(m.revenue, 0), m.currency,
       coalesce(m.orders, 0), coalesce(m.fees, 0)::double precision, now()
  from day d
  left join energy e using (grid_id, day)
  left join money m using (grid_id, day)
on conflict (created_at, grid_id) do update set
  timezone = excluded.timezone,
  hps_consumption_kwh = excluded.hps_consumption_kwh,
  fs_consumption_kwh = excluded.fs_consumption_kwh,
  total_consumption_kwh = excluded.total_consumption_kwh,
  total_consumption_kwh_exact = excluded.total_consumption_kwh_exact,
  estimated_hours = excluded.estimated_hours,
  active_meter_count = excluded.active_meter_count,
  energy_topup_revenue = excluded.energy_topup_revenue,
  energy_topup_revenue_exact = excluded.energy_topup_revenue_exact,
  energy_topup_currency = excluded.energy_topup_currency,
  completed_order_count = excluded.completed_order_count,
  connection_fee_revenue = excluded.connection_fee_revenue,
  built_at = excluded.built_at
"""

# The state of each grid, on its latest complete local day.
_STATE_COLUMNS = (
    "grid_name", "organization_id", "organization_name", "timezone", "kwp", "kwh",
    "monthly_rental", "daily_rental", "hps_tariff", "fs_tariff",
    "hps_single_phase_connection_fee", "fs_single_phase_connection_fee",
    "fs_three_phase_connection_fee", "customer_count", "residential_connection_count",
    "commercial_connection_count", "public_connection_count", "total_connection_count",
    "women_impacted_count", "lifeline_connection_count", "hps_meter_count", "fs_meter_count",
    "total_meter_count", "single_phase_meter_count", "three_phase_meter_count", "built_at")
_WRITE_STATE = f"""
with {_GRIDS}, {_DAYS.replace("- %(days)s", "- 1")}
insert into public.grid_business_snapshot_1_d as t (
  created_at, grid_id, {", ".join(_STATE_COLUMNS)})
select created_at, grid_id, grid_name, organization_id, organization_name, timezone, kwp, kwh,
       monthly_rental,
       -- the rental of one day of that month
       round((monthly_rental / extract(day from date_trunc('month', day)
                                       + interval '1 month - 1 day'))::numeric, 2),
       hps_tariff::real, fs_tariff::real, hps_fee::real, fs_1_phase_fee::real,
       fs_3_phase_fee::real, customers, residential, commercial, public_count,
       residential + commercial + public_count, women, lifeline, hps_meters, fs_meters,
       hps_meters + fs_meters, single_phase, three_phase, now()
  from day
on conflict (created_at, grid_id) do update set
  {", ".join(f"{c} = excluded.{c}" for c in _STATE_COLUMNS)}
"""


def _json(value: Any) -> Any:
    # Doubles travel as their shortest text, read back as the same double by the recordset.
    return repr(value) if isinstance(value, float) else value


async def build(ts: Any, transactional: Any, days: int = REBUILD_DAYS,
                now: datetime | None = None) -> dict[str, Any]:
    from psycopg.types.json import Jsonb

    from timeseries.partitions import aensure_partitions

    now = now or datetime.now(UTC)
    async with transactional.transaction("service_role") as conn:
        cur = await conn.execute(_STATE)
        grids = await cur.fetchall()
    if not grids:
        return {"status": "done", "grids": 0, "rows": 0, "days": days}
    names = [n for n, _ in _GRID_FIELDS]
    params = {"grids": Jsonb([{n: _json(v) for n, v in zip(names, g, strict=True)}
                              for g in grids]),
              "now": now, "days": days}
    async with ts.transaction():
        # Local dates are at most a day off UTC's: the partitions of every date written.
        await aensure_partitions(ts, "grid_business_snapshot_1_d",
                                 now - timedelta(days=days + 1), now + timedelta(days=1))
        cur = await ts.execute(_MEASURES, params)
        measured = cur.rowcount
        cur = await ts.execute(_WRITE_STATE, params)
        state = cur.rowcount
    return {"status": "done", "grids": len(grids), "rows": measured, "state_rows": state,
            "days": days}

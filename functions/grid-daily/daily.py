"""The daily per-grid business snapshot, with days in each grid's own time zone.

Each run rebuilds the last few local days of every grid (not only yesterday): late readings
rebuild hourly snapshots, and the days that contain those hours must follow. Re-running a day
gives the same row. Revenue counts completed energy top-ups in the grid's main currency.
The table is the operator's business record, so it counts every meter and order of the grid,
hidden ones included; a hidden grid still gets its own rows (readers filter by grid).
"""

from __future__ import annotations

from typing import Any

REBUILD_DAYS = 7

_GRIDS = """
select id, name, organization_id, timezone from public.grids where deleted_at is null
 order by id
"""

_BUILD = """
with g as (
  select * from unnest(%(ids)s::bigint[], %(names)s::text[], %(orgs)s::bigint[],
                       %(zones)s::text[]) as g(grid_id, grid_name, organization_id, timezone)
), d as (
  select g.*, day::date as day,
         day::timestamp at time zone g.timezone as day_start,
         (day::date + 1)::timestamp at time zone g.timezone as day_end
    from g, generate_series((now() at time zone g.timezone)::date - %(days)s,
                            (now() at time zone g.timezone)::date - 1, interval '1 day') day
), energy as (
  select d.grid_id, d.day, sum(h.consumption_kwh) as kwh,
         count(*) filter (where h.is_estimated or h.consumption_kwh is null) as estimated,
         count(distinct h.meter_id) filter (where h.consumption_kwh > 0) as active
    from d join ts.meter_hourly h
      on h.grid_id = d.grid_id and h.created_at >= d.day_start and h.created_at < d.day_end
   group by d.grid_id, d.day
), money as (
  select d.grid_id, d.day, mode() within group (order by o.currency) as currency,
         count(*) as orders
    from d join ts.order_snapshots o
      on o.grid_id = d.grid_id and o.completed_at >= d.day_start and o.completed_at < d.day_end
   where o.order_status = 'COMPLETED' and o.order_type = 'ENERGY_TOPUP'
   group by d.grid_id, d.day
), revenue as (
  select m.grid_id, m.day, m.currency, m.orders, sum(o.amount) as amount
    from money m join d using (grid_id, day) join ts.order_snapshots o
      on o.grid_id = d.grid_id and o.completed_at >= d.day_start and o.completed_at < d.day_end
     and o.currency = m.currency
   where o.order_status = 'COMPLETED' and o.order_type = 'ENERGY_TOPUP'
   group by m.grid_id, m.day, m.currency, m.orders
)
insert into ts.grid_daily (grid_id, day, timezone, grid_name, organization_id, consumption_kwh,
                           estimated_hours, revenue, currency, active_meters, completed_orders,
                           built_at)
select d.grid_id, d.day, d.timezone, d.grid_name, d.organization_id,
       coalesce(e.kwh, 0), coalesce(e.estimated, 0), coalesce(r.amount, 0), r.currency,
       coalesce(e.active, 0), coalesce(r.orders, 0), now()
  from d left join energy e using (grid_id, day) left join revenue r using (grid_id, day)
on conflict (grid_id, day) do update set
  timezone = excluded.timezone, grid_name = excluded.grid_name,
  organization_id = excluded.organization_id, consumption_kwh = excluded.consumption_kwh,
  estimated_hours = excluded.estimated_hours, revenue = excluded.revenue,
  currency = excluded.currency, active_meters = excluded.active_meters,
  completed_orders = excluded.completed_orders, built_at = excluded.built_at
"""


async def build(ts: Any, transactional: Any, days: int = REBUILD_DAYS) -> dict[str, Any]:
    async with transactional.transaction("service_role") as conn:
        cur = await conn.execute(_GRIDS)
        grids = await cur.fetchall()
    if not grids:
        return {"status": "done", "grids": 0, "rows": 0}
    ids, names, orgs, zones = (list(col) for col in zip(*grids, strict=True))
    async with ts.transaction():
        cur = await ts.execute(_BUILD, {"ids": ids, "names": names, "orgs": orgs,
                                        "zones": zones, "days": days})
    return {"status": "done", "grids": len(grids), "rows": cur.rowcount}

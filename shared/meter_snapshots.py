"""Which rows of the legacy hourly snapshot, `public.meter_snapshot_1_h`, meter-consumption
lists: one fact for the function's pages and for the counts kept of them (timeseries/counts.py),
here because the function's bundle carries `shared/` and not `timeseries/`."""

# Visible, and a real reading: NaN is not one. PostgreSQL orders NaN equal to itself, so
# `<> 'NaN'` is false only for NaN, as the legacy `not (consumption_kwh::text = 'NaN')`.
LISTED = """h.is_hidden_from_reporting = false
   and h.consumption_kwh is not null
   and h.consumption_kwh <> 'NaN'::double precision"""

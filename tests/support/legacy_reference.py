"""The legacy meter-consumption function as a reference for the tests: its query semantics, run
as SQL on the database under test, and its JavaScript post-processing, run by Node on the rows
that query returns. Written from what the legacy function does (see
tests/functions/test_meter_consumption_legacy.py), not copied from it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import psycopg
import pytest

# Its semantics: both ends included, visible rows with a consumption that is not NaN (tested
# on the text, as the legacy did), the grid's name in any case; ordered by time. The legacy
# orders by time alone and leaves rows of the same hour in whatever order the plan gives: the
# reference breaks those ties by meter, as this project does, which is one of the orders the
# legacy could return. FROM and TO are bound as the clients' strings and cast by PostgreSQL,
# as the legacy bound them.
LEGACY_WHERE = """
 where created_at >= %(from)s::text::timestamp and created_at <= %(to)s::text::timestamp
   and is_hidden_from_reporting = false and consumption_kwh is not null
   and not (consumption_kwh::text = 'NaN')
   and (%(site)s::text is null or lower(grid_name) = lower(%(site)s::text))
"""
LEGACY_PAGE = ("select created_at::text, meter_external_reference,"
               " coalesce(consumption_kwh::numeric, 0)::text, customer_id"
               " from public.meter_snapshot_1_h" + LEGACY_WHERE
               + " order by created_at, meter_id limit %(limit)s offset %(offset)s")
LEGACY_COUNT = "select count(*) from public.meter_snapshot_1_h" + LEGACY_WHERE

# Its post-processing. deno-postgres builds the Date of a timestamp without time zone from the
# text as local time (UTC on the legacy runtime), with 1000 * parseFloat(fraction) as the
# milliseconds; the object keys come in the order the legacy SQL selected them.
LEGACY_JS = r"""
const rows = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const date = (text) => {
  const m = /^(\d+)-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d+)?$/.exec(text);
  const ms = m[7] ? 1000 * parseFloat(m[7]) : 0;
  return new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6], ms);
};
const readings = rows.map(([created, meterId, kwh, customer]) => ({
  timestamp: date(created), meterId, energyConsumptionKwh: kwh, timeIntervalMinutes: 60,
  customerAccountId: customer,
})).map(row => ({...row,
  energyConsumptionKwh: Math.round(parseFloat(row.energyConsumptionKwh) * 1000) / 1000}));
process.stdout.write(JSON.stringify(readings));
"""


def legacy_answer(ts_url: str, start: str, end: str, site: str | None, limit: int,
                  offset: int) -> tuple[int, str]:
    """(total, the readings array as the legacy function printed it) for FROM=start, TO=end."""
    if shutil.which("node") is None:
        if os.environ.get("CI"):
            pytest.fail("node is not installed; CI must compare with the legacy JavaScript")
        pytest.skip("node is not installed: the legacy JavaScript cannot run here (the"
                    " half-way cases are still checked by test_legacy_rounding_half_way_cases"
                    " in test_meter_consumption_legacy.py)")
    args = {"from": start, "to": end, "site": site, "limit": limit, "offset": offset}
    with psycopg.connect(ts_url) as conn:
        total = conn.execute(LEGACY_COUNT, args).fetchone()[0]  # type: ignore[index]
        rows = conn.execute(LEGACY_PAGE, args).fetchall()
    done = subprocess.run(["node", "-e", LEGACY_JS], input=json.dumps(rows), text=True,
                          capture_output=True, timeout=60, env={**os.environ, "TZ": "UTC"},
                          check=True)
    return total, done.stdout


def readings_text(body: str) -> str:
    """The readings array of a response, byte for byte as the function wrote it."""
    match = re.search(r'"readings":(\[.*?\])(?:,"|})', body)
    assert match, body
    return match[1]



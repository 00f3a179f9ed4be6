"""The legacy function's output, reproduced exactly, so its clients see the same bytes.

The legacy function (a Deno function with deno-postgres, on a UTC runtime) returned
`created_at` as a JavaScript Date and `energyConsumptionKwh` as
`Math.round(parseFloat(consumption_kwh::numeric::text) * 1000) / 1000`, both through
`JSON.stringify`. Python's own rounding differs on the half-way cases (round() rounds half to
even, Decimal works on the decimal text), so this module does what JavaScript does, step by
step, on the same text the database gives both.
"""

from __future__ import annotations

import math
from datetime import datetime
from fractions import Fraction


def js_timestamp(value: datetime) -> str:
    """`created_at` (UTC, without a zone) as JSON.stringify prints a Date:
    `YYYY-MM-DDTHH:MM:SS.mmmZ`. The driver reads the fraction as milliseconds,
    1000 * parseFloat(".ffffff"), and a Date truncates it; for the six digits PostgreSQL prints
    that is exactly microsecond // 1000 (checked for all of them), which is what isoformat's
    milliseconds are (it truncates too, and pads the year to four digits as a Date does)."""
    return value.isoformat(timespec="milliseconds") + "Z"


def js_round_kwh(numeric_text: str) -> int | float | None:
    """`Math.round(parseFloat(text) * 1000) / 1000` as JSON.stringify prints it.

    - parseFloat and float() both give the double nearest the decimal text;
    - `* 1000` is one IEEE multiplication in both;
    - Math.round is the nearest integer with ties toward +infinity, i.e. floor(x + 1/2)
      computed exactly (not in floating point, where x + 0.5 can round up on its own);
    - `/ 1000` is one IEEE division: the integer is exact in a double, so Python's int / int
      gives the same correctly rounded quotient;
    - JSON.stringify prints an integral number below 1e21 without a fraction (1, not 1.0),
      from 1e21 on in exponent form as Python's float does (1e+21), -0 as 0, and Infinity or
      NaN as null (a legacy row may hold Infinity; NaN rows are filtered out).
    """
    x = float(numeric_text) * 1000
    if not math.isfinite(x):
        return None
    whole = math.floor(x)
    part = x - whole  # at most one rounding, far below 1e-6 while |x| < 2**31
    if abs(part - 0.5) > 1e-6 and abs(x) < 2**31:
        rounded = whole + (part > 0.5)
    else:  # at or near a half: decided exactly
        rounded = math.floor(Fraction(x) + Fraction(1, 2))
    value = rounded / 1000
    return int(value) if value.is_integer() and abs(value) < 1e21 else value

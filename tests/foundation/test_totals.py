"""shared.totals: the list totals cache (expiry, bound, keys); the functions' use of it is
tested over HTTP in test_customers.py and test_orders.py."""

from __future__ import annotations

from shared.auth.caller import Caller
from shared.totals import TotalCache, caller_key


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_total_is_served_until_its_ttl_ends() -> None:
    clock = Clock()
    cache = TotalCache(5.0, clock=clock)
    cache.put("k", 42)
    clock.now += 4.9
    assert cache.get("k") == 42
    clock.now += 0.1
    assert cache.get("k") is None
    assert cache.get("k") is None  # expired entries are gone, not resurrected


def test_a_ttl_of_zero_caches_nothing() -> None:
    cache = TotalCache(0.0)
    cache.put("k", 42)
    assert cache.get("k") is None


def test_the_cache_keeps_the_most_recent_entries_only() -> None:
    cache = TotalCache(60.0, max_entries=3)
    for i in range(5):
        cache.put(i, i)
    assert [cache.get(i) for i in range(5)] == [None, None, 2, 3, 4]


def test_clear_forgets_everything() -> None:
    cache = TotalCache(60.0)
    cache.put("a", 1)
    cache.clear()
    assert cache.get("a") is None


def caller(**fields: object) -> Caller:
    base: dict[str, object] = {"role": "authenticated", "user_id": "u1", "organization_id": 3,
                               "organization_type": "SOLAR_DEVELOPER", "claims": {}}
    return Caller(**{**base, **fields})  # type: ignore[arg-type]


def test_callers_who_may_see_different_rows_never_share_a_key() -> None:
    one = caller_key(caller())
    others = [caller(user_id="u2"), caller(organization_id=4), caller(role="service_role"),
              caller(organization_type="FINANCIAL_INSTITUTION"), caller(via="api_key"),
              caller(api_key_id=7)]
    assert all(caller_key(c) != one for c in others)
    assert caller_key(caller()) == one

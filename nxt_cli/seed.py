"""Deterministic demo data for the transactional plane.

The same data on every run (a seeded PRNG, fixed dates), so tests and screenshots can name
rows. Only the API keys are random: a fixed key would be a secret in the repository. They are
printed once, when created, and stored only as hashes.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from shared.api_keys import generate_api_key

SEED = 20261127
# Orders are spread over the six months before this instant.
ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
CUSTOMERS = 1000

# id, name, type, is_operator. The operator is id 2, as the legacy code hard-codes it.
ORGANIZATIONS = (
    (1, "Sahel Infrastructure Fund", "LENDER", False),
    (2, "Nxt Grid Operations", "SOLAR_DEVELOPER", True),
    (3, "Kano Solar Developers", "SOLAR_DEVELOPER", False),
    (4, "Delta Sun Power", "SOLAR_DEVELOPER", False),
    (5, "Open Energy Data Co.", "DATA_AGGREGATOR", False),
)
OPERATOR_ID, LENDER_ID, DEV_A_ID, DEV_B_ID, AGGREGATOR_ID = 2, 1, 3, 4, 5

# id, name, organization, timezone, tariff per kWh (NGN), hidden, deleted
GRIDS = (
    (1, "Gbamu", DEV_A_ID, "Africa/Lagos", Decimal("215.0000"), False, False),
    (2, "Kurmin Jatau", DEV_A_ID, "Africa/Lagos", Decimal("230.5000"), False, False),
    (3, "Tunga Test Site", DEV_A_ID, "Africa/Lagos", Decimal("200.0000"), True, False),
    (4, "Okpokunou", DEV_B_ID, "Africa/Lagos", Decimal("245.0000"), False, False),
    (5, "Lake Turkana Pilot", DEV_B_ID, "Africa/Nairobi", Decimal("180.2500"), False, False),
    (6, "Akpabom", OPERATOR_ID, "Africa/Lagos", Decimal("225.0000"), False, False),
    (7, "Old Idanre", DEV_A_ID, "Africa/Lagos", Decimal("210.0000"), False, True),
)

# Demo users (Supabase Auth ids fixed, so `nxt token` can name them).
STAFF = (
    ("00000000-0000-4000-8000-000000000002", "Ada Operator", "ops@nxt.example", OPERATOR_ID),
    ("00000000-0000-4000-8000-000000000001", "Lena Lender", "analyst@sahel.example", LENDER_ID),
    ("00000000-0000-4000-8000-000000000003", "Kabir Developer", "kabir@kano.example", DEV_A_ID),
    ("00000000-0000-4000-8000-000000000004", "Dami Developer", "dami@delta.example", DEV_B_ID),
    ("00000000-0000-4000-8000-000000000005", "Aggie Data", "data@openenergy.example",
     AGGREGATOR_ID),
)

FIRST = ("Amina", "Chinedu", "Fatima", "Ibrahim", "Ngozi", "Oluwaseun", "Sani", "Halima",
         "Emeka", "Zainab", "Tunde", "Aisha", "Musa", "Blessing", "Yusuf", "Chiamaka")
LAST = ("Abubakar", "Okafor", "Bello", "Adeyemi", "Eze", "Mohammed", "Danjuma", "Nwosu",
        "Ogunleye", "Lawal", "Umar", "Obi", "Suleiman", "Balogun")

# Weighted like a real book of orders: most complete, some never finish.
STATUS_WEIGHTS = (
    ("COMPLETED", 70), ("PENDING", 6), ("INITIALISED", 5), ("FAILED", 8), ("CANCELLED", 5),
    ("TIMED_OUT", 4), ("IGNORED", 2),
)
OTHER_TYPES = ("CONNECTION_PAYMENT", "CONNECTION_REFUND", "AGENT_TOPUP", "AGENT_WITHDRAWAL",
               "ORGANIZATION_TOPUP", "ORGANIZATION_WITHDRAWAL")


@dataclass
class SeedResult:
    organizations: int = 0
    grids: int = 0
    customers: int = 0
    meters: int = 0
    orders: int = 0
    api_keys: list[tuple[str, str]] = field(default_factory=list)  # (organization, plaintext)
    skipped: bool = False


def _q(conn: psycopg.Connection[Any], sql: str, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        with conn.cursor() as cur:
            cur.executemany(sql, rows)


def is_seeded(conn: psycopg.Connection[Any]) -> bool:
    return conn.execute("select exists (select from public.organizations)").fetchone()[0]  # type: ignore[index]


def wipe(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "truncate public.api_keys, public.credit_ledger, public.orders, public.meters,"
        " public.connections, public.customers, public.dcus, public.grids, public.accounts,"
        " public.organizations restart identity cascade"
    )
    conn.execute("delete from auth.users where email like '%.example'")


SEEDED_TABLES = ("organizations", "accounts", "grids", "dcus", "customers", "connections",
                 "meters", "orders", "credit_ledger")


def seed(url: str, *, force: bool = False, customers: int = CUSTOMERS) -> SeedResult:
    """Load the demo data; does nothing when data exists unless `force` (which wipes first)."""
    rng = random.Random(SEED)
    result = SeedResult()
    with psycopg.connect(url, prepare_threshold=None) as conn:
        if is_seeded(conn):
            if not force:
                result.skipped = True
                return result
            wipe(conn)
        _q(conn, "insert into public.organizations (id, name, organization_type, is_operator,"
           " created_at) values (%s, %s, %s, %s, %s)",
           [(*o, ANCHOR - timedelta(days=400)) for o in ORGANIZATIONS])
        result.organizations = len(ORGANIZATIONS)
        _q(conn, "insert into auth.users (id, aud, role, email) values"
           " (%s, 'authenticated', 'authenticated', %s) on conflict (id) do nothing",
           [(uid, email) for uid, _, email, _ in STAFF])
        _q(conn, "insert into public.accounts (full_name, email, supabase_id, organization_id)"
           " values (%s, %s, %s, %s)", [(name, email, uid, org) for uid, name, email, org in STAFF])
        _q(conn, "insert into public.grids (id, name, organization_id, timezone, kwh_tariff,"
           " is_hidden_from_reporting, deleted_at, created_at) values"
           " (%s, %s, %s, %s, %s, %s, %s, %s)",
           [(g, n, o, tz, t, h, ANCHOR - timedelta(days=30) if d else None,
             ANCHOR - timedelta(days=365)) for g, n, o, tz, t, h, d in GRIDS])
        result.grids = len(GRIDS)
        _q(conn, "insert into public.dcus (id, external_reference, grid_id, rls_organization_id)"
           " values (%s, %s, %s, %s)",
           [(g * 10 + k, f"DCU-{g:02d}-{k}", g, o) for g, _, o, *_ in GRIDS for k in (1, 2)])

        _seed_customers(conn, rng, customers, result)
        _seed_orders(conn, rng, result)
        for table in SEEDED_TABLES:
            conn.execute(
                f"select setval(pg_get_serial_sequence('public.{table}', 'id'),"
                f" greatest((select max(id) from public.{table}), 1))"
            )
        for org_id, name, org_type, _ in ORGANIZATIONS:
            if org_type == "DATA_AGGREGATOR":
                result.api_keys.append((name, create_api_key(conn, org_id, "demo key")))
        conn.commit()
        # Statistics now, as after any bulk load: autovacuum takes a minute or more to get
        # there, and until then the planner reads the lists' row-level security filters as
        # matching a handful of rows and sorts every visible row to return a page of 100.
        conn.autocommit = True
        conn.execute("analyze " + ", ".join(f"public.{t}" for t in SEEDED_TABLES))
    return result


def create_api_key(conn: psycopg.Connection[Any], organization_id: int, name: str) -> str:
    """Store a new key for the organization's first account; returns the plaintext once."""
    row = conn.execute(
        "select id from public.accounts where organization_id = %s order by id limit 1",
        (organization_id,),
    ).fetchone()
    if row is None:
        raise ValueError(f"organization {organization_id} has no account to own an API key")
    key = generate_api_key()
    conn.execute(
        "insert into public.api_keys (key_hash, key_prefix, name, account_id, rls_organization_id)"
        " values (%s, %s, %s, %s, %s)",
        (key.hash, key.prefix, name, row[0], organization_id),
    )
    return key.plaintext


def _seed_customers(conn: psycopg.Connection[Any], rng: random.Random, count: int,
                    result: SeedResult) -> None:
    visible = [g for g in GRIDS if not g[6]]
    accounts, customers, connections, meters = [], [], [], []
    for i in range(1, count + 1):
        grid_id, _, org, _, tariff, _, _ = visible[(i * 7) % len(visible)]
        created = ANCHOR - timedelta(days=rng.randint(20, 360), minutes=rng.randint(0, 1439))
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        account_id = 100 + i
        accounts.append((account_id, name, f"+234{rng.randint(7000000000, 9099999999)}", org))
        hidden = rng.random() < 0.04
        customers.append((i, account_id, grid_id, hidden, org, created))
        commercial = rng.random() < 0.15
        connections.append((i, i, not commercial, commercial, rng.random() < 0.9, org, created))
        meter_type = "FS" if rng.random() < 0.1 else "HPS"
        meters.append((
            i, f"SM{grid_id:02d}{i:06d}", rng.choice(("CALIN", "STRONPOWER")), meter_type,
            "THREE_PHASE" if commercial else "SINGLE_PHASE", i, grid_id * 10 + 1 + (i % 2),
            tariff, i % 97 == 0, org, created,
        ))
    _q(conn, "insert into public.accounts (id, full_name, phone, organization_id)"
       " values (%s, %s, %s, %s)", accounts)
    _q(conn, "insert into public.customers (id, account_id, grid_id, is_hidden_from_reporting,"
       " rls_organization_id, created_at) values (%s, %s, %s, %s, %s, %s)", customers)
    _q(conn, "insert into public.connections (id, customer_id, is_residential, is_commercial,"
       " paid, rls_organization_id, created_at) values (%s, %s, %s, %s, %s, %s, %s)",
       connections)
    _q(conn, "insert into public.meters (id, external_reference, external_system, meter_type,"
       " meter_phase, connection_id, dcu_id, kwh_tariff, is_cabin_meter, rls_organization_id,"
       " created_at) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", meters)
    result.customers = result.meters = count


def _seed_orders(conn: psycopg.Connection[Any], rng: random.Random, result: SeedResult) -> None:
    rows = conn.execute(
        "select m.id, c.id, c.grid_id, g.kwh_tariff, m.meter_type, c.rls_organization_id,"
        " c.is_hidden_from_reporting or g.is_hidden_from_reporting, c.created_at"
        " from public.meters m"
        " join public.connections n on n.id = m.connection_id"
        " join public.customers c on c.id = n.customer_id"
        " join public.grids g on g.id = c.grid_id order by m.id"
    ).fetchall()
    statuses = [s for s, w in STATUS_WEIGHTS for _ in range(w)]
    orders, ledger = [], []
    credit: dict[int, Decimal] = {}
    order_id = 0
    for meter_id, customer_id, grid_id, tariff, meter_type, org, hidden, since in rows:
        for _ in range(rng.randint(1, 5)):
            order_id += 1
            created = since + (ANCHOR - since) * rng.random()
            status = rng.choice(statuses)
            order_type = "ENERGY_TOPUP" if rng.random() < 0.92 else rng.choice(OTHER_TYPES)
            amount = Decimal(rng.choice((500, 1000, 1500, 2000, 2500, 5000, 10000)))
            orders.append((
                order_id, created, created + timedelta(minutes=rng.randint(0, 30)), amount,
                "NGN", status, order_type, tariff, meter_type,
                rng.choice(("CREDIT_CARD", "USSD", "BANK_TRANSFER")),
                rng.choice(("paystack", "flutterwave", "agent")), f"PAY-{order_id:07d}",
                grid_id, hidden, org, meter_id if order_type == "ENERGY_TOPUP" else None,
                customer_id, created if status == "COMPLETED" else None,
            ))
            if status == "COMPLETED" and order_type == "ENERGY_TOPUP":
                kwh = (amount / tariff).quantize(Decimal("0.0001"))
                credit[meter_id] = credit.get(meter_id, Decimal(0)) + kwh
                ledger.append((meter_id, order_id, kwh, amount, "NGN", tariff, org, created))
    _q(conn, "insert into public.orders (id, created_at, updated_at, amount, currency,"
       " order_status, meta_order_type, tariff, tariff_type, payment_method, payment_channel,"
       " external_reference, historical_grid_id, meta_is_hidden_from_reporting,"
       " rls_organization_id, meter_id, customer_id, completed_at) values"
       " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", orders)
    _q(conn, "insert into public.credit_ledger (meter_id, order_id, kwh, amount, currency,"
       " tariff, rls_organization_id, created_at) values (%s, %s, %s, %s, %s, %s, %s, %s)",
       ledger)
    _q(conn, "update public.meters set kwh_credit_available = %s where id = %s",
       [(kwh, meter_id) for meter_id, kwh in credit.items()])
    result.orders = len(orders)


def demo_user_id(organization_id: int) -> str:
    for uid, _, _, org in STAFF:
        if org == organization_id:
            return uid
    raise KeyError(organization_id)


def new_user_id() -> str:
    return str(uuid.uuid4())

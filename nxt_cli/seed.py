"""Deterministic demo data for the transactional plane, shaped as the legacy system writes it.

The same data on every run (a seeded PRNG, fixed dates), so tests and screenshots can name
rows. Only the API keys are random: a fixed key would be a secret in the repository. They are
printed once, when created, and stored only as hashes.

The rows are what the legacy services would have written for the same business: energy
top-ups go from the banking system's wallet to the meter's wallet, with their `meta_*` fields,
two `transactions` rows with running balances when completed, the tariff set at completion
(-1 before, the legacy default) and the meter credited; `rls_organization_id` is set as the
legacy triggers set it.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from shared.auth.api_keys import generate_api_key

SEED = 20261127
# Orders are spread over the six months before this instant.
ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
CUSTOMERS = 1000
BANKING_SYSTEM = "BANKING_SYSTEM"  # the identifier of the wallet that pays every top-up

# id, name, type, is_operator. The operator is id 2, "NXT Grid", as the legacy code has it.
ORGANIZATIONS = (
    (1, "Sahel Infrastructure Fund", "LENDER", False),
    (2, "NXT Grid", "SOLAR_DEVELOPER", True),
    (3, "Kano Solar Developers", "SOLAR_DEVELOPER", False),
    (4, "Delta Sun Power", "SOLAR_DEVELOPER", False),
    (5, "Open Energy Data Co.", "DATA_AGGREGATOR", False),
)
OPERATOR_ID, LENDER_ID, DEV_A_ID, DEV_B_ID, AGGREGATOR_ID = 2, 1, 3, 4, 5
ORGANIZATION_NAMES = {i: name for i, name, _, _ in ORGANIZATIONS}

# id, name, organization, timezone, kWh tariffs (essential service = HPS, full service = FS,
# NGN), hidden from reporting, deleted
GRIDS = (
    (1, "Gbamu", DEV_A_ID, "Africa/Lagos", ("215", "260"), False, False),
    (2, "Kurmin Jatau", DEV_A_ID, "Africa/Lagos", ("230.5", "275"), False, False),
    (3, "Tunga Test Site", DEV_A_ID, "Africa/Lagos", ("200", "240"), True, False),
    (4, "Okpokunou", DEV_B_ID, "Africa/Lagos", ("245", "290"), False, False),
    (5, "Lake Turkana Pilot", DEV_B_ID, "Africa/Nairobi", ("180.25", "220"), False, False),
    (6, "Akpabom", OPERATOR_ID, "Africa/Lagos", ("225", "270"), False, False),
    (7, "Old Idanre", DEV_A_ID, "Africa/Lagos", ("210", "250"), False, True),
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
PAYMENT_CHANNELS = ("USSD", "AYRTON", "NIFFLER", "TELEGRAM")

# Every table seed() writes, in the order a wipe must empty them.
SEEDED_TABLES = ("transactions", "orders", "api_keys", "wallets", "meters", "connections",
                 "customers", "dcus", "grids", "accounts", "organizations")


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
    conn.execute("truncate " + ", ".join(f"public.{t}" for t in SEEDED_TABLES)
                 + " restart identity cascade")
    conn.execute("delete from auth.users where email like '%.example'")


def kwh_for(amount: Decimal, tariff: Decimal) -> Decimal:
    """kWh a completed top-up credits: amount / tariff, up to the next 0.1 kWh (the legacy rule,
    in the customer's favour)."""
    return Decimal(math.ceil(amount / tariff * 10)) / 10


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
        created = ANCHOR - timedelta(days=400)
        _q(conn, "insert into public.organizations (id, name, organization_type, created_at)"
           " values (%s, %s, %s, %s)", [(i, n, t, created) for i, n, t, _ in ORGANIZATIONS])
        conn.execute("update app.settings set operator_organization_id = %s", (OPERATOR_ID,))
        result.organizations = len(ORGANIZATIONS)
        _q(conn, "insert into auth.users (id, aud, role, email) values"
           " (%s, 'authenticated', 'authenticated', %s) on conflict (id) do nothing",
           [(uid, email) for uid, _, email, _ in STAFF])
        # On an adopted database the legacy trigger on auth.users has made each user's
        # account already: it becomes the demo account.
        _q(conn, "insert into public.accounts (id, full_name, email, supabase_id, organization_id)"
           " values (%s, %s, %s, %s, %s) on conflict (supabase_id) do update set"
           " id = excluded.id, full_name = excluded.full_name,"
           " organization_id = excluded.organization_id",
           [(k, name, email, uid, org) for k, (uid, name, email, org) in enumerate(STAFF, 1)])
        _q(conn, "insert into public.grids (id, name, organization_id, timezone, kwh_tariff,"
           " kwh_tariff_essential_service, kwh_tariff_full_service, is_hidden_from_reporting,"
           " deleted_at, created_at) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
           [(g, n, o, tz, hps, hps, fs, h, ANCHOR - timedelta(days=30) if d else None,
             ANCHOR - timedelta(days=365)) for g, n, o, tz, (hps, fs), h, d in GRIDS])
        result.grids = len(GRIDS)
        _q(conn, "insert into public.dcus (id, external_reference, external_system, grid_id,"
           " rls_organization_id) values (%s, %s, 'CALIN', %s, %s)",
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
        "insert into public.api_keys (key_hash, key_prefix, name, account_id)"
        " values (%s, %s, %s, %s)",
        (key.hash, key.prefix, name, row[0]),
    )
    return key.plaintext


def _seed_customers(conn: psycopg.Connection[Any], rng: random.Random, count: int,
                    result: SeedResult) -> None:
    visible = [g for g in GRIDS if not g[6]]
    accounts, customers, connections, meters = [], [], [], []
    for i in range(1, count + 1):
        grid_id, _, org, _, _, _, _ = visible[(i * 7) % len(visible)]
        created = ANCHOR - timedelta(days=rng.randint(20, 360), minutes=rng.randint(0, 1439))
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        account_id = 100 + i
        accounts.append((account_id, name, f"+234{rng.randint(7000000000, 9099999999)}", org))
        hidden = rng.random() < 0.04
        customers.append((i, account_id, grid_id, hidden, org, created))
        commercial = rng.random() < 0.15
        paid = float(rng.choice((0, 5000, 10000, 15000)))
        connections.append((i, i, not commercial, commercial, paid, rng.randint(0, 3), org,
                            created))
        meter_type = "FS" if rng.random() < 0.1 else "HPS"
        # Most meters take their grid's tariff; a few have one of their own.
        tariff = float(rng.choice((199, 205.5))) if i % 50 == 0 else None
        meters.append((
            i, f"SM{grid_id:02d}{i:06d}", rng.choice(("CALIN", "ACREL")), meter_type,
            "THREE_PHASE" if commercial else "SINGLE_PHASE", i, grid_id * 10 + 1 + (i % 2),
            tariff, i % 97 == 0, 200 if meter_type == "HPS" else 0, org, created,
        ))
    _q(conn, "insert into public.accounts (id, full_name, phone, organization_id)"
       " values (%s, %s, %s, %s)", accounts)
    _q(conn, "insert into public.customers (id, account_id, grid_id, is_hidden_from_reporting,"
       " rls_organization_id, created_at) values (%s, %s, %s, %s, %s, %s)", customers)
    _q(conn, "insert into public.connections (id, customer_id, is_residential, is_commercial,"
       " is_public, paid, currency, women_impacted, rls_organization_id, created_at)"
       " values (%s, %s, %s, %s, false, %s, 'NGN', %s, %s, %s)", connections)
    _q(conn, "insert into public.meters (id, external_reference, external_system, meter_type,"
       " meter_phase, connection_id, dcu_id, kwh_tariff, is_cabin_meter, power_limit,"
       " rls_organization_id, created_at, is_on, should_be_on)"
       " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, true, true)", meters)
    result.customers = result.meters = count


def _seed_orders(conn: psycopg.Connection[Any], rng: random.Random, result: SeedResult) -> None:
    rows = conn.execute(
        "select m.id, m.external_reference, c.id, a.full_name, c.grid_id, m.meter_type::text,"
        " coalesce(m.kwh_tariff, case m.meter_type when 'FS' then g.kwh_tariff_full_service"
        "  else g.kwh_tariff_essential_service end), g.organization_id,"
        " c.is_hidden_from_reporting or g.is_hidden_from_reporting, c.created_at"
        " from public.meters m"
        " join public.connections n on n.id = m.connection_id"
        " join public.customers c on c.id = n.customer_id"
        " join public.accounts a on a.id = c.account_id"
        " join public.grids g on g.id = c.grid_id order by m.id"
    ).fetchall()
    # The banking system pays every top-up (its balance goes negative); each meter and each
    # organization has a wallet of its own, as the legacy commissioning creates them.
    wallets = [(1, None, None, BANKING_SYSTEM, "VIRTUAL", None)]
    wallets += [(1 + m[0], m[0], None, None, "REAL", m[7]) for m in rows]
    # Numbered after the meters' wallets: a fixed base collided with them from 10,000 meters.
    after_meters = 1 + max((m[0] for m in rows), default=0)
    org_wallet = {o: after_meters + o for o, *_ in ORGANIZATIONS}
    wallets += [(w, None, o, None, "REAL", o) for o, w in org_wallet.items()]
    balance = {w[0]: Decimal(0) for w in wallets}
    statuses = [s for s, w in STATUS_WEIGHTS for _ in range(w)]
    orders, transactions, credit = [], [], {}
    order_id = transaction_id = 0
    for row in rows:
        meter_id, reference, customer_id, name, grid_id, meter_type, rate, org, hidden, since = row
        tariff = Decimal(str(rate))
        for _ in range(rng.randint(1, 5)):
            order_id += 1
            created = since + (ANCHOR - since) * rng.random()
            status = rng.choice(statuses)
            amount = Decimal(rng.choice((500, 1000, 1500, 2000, 2500, 5000, 10000)))
            energy = rng.random() < 0.92
            sender = 1
            if energy:
                receiver = 1 + meter_id
                meta = ("ENERGY_TOPUP", "METER", reference, meter_id, name, customer_id, hidden)
            else:
                receiver = org_wallet[org]
                meta = (rng.choice(OTHER_TYPES), "ORGANIZATION", ORGANIZATION_NAMES[org], org,
                        None, None, False)
            completed = status == "COMPLETED"
            orders.append((
                order_id, created, created + timedelta(minutes=rng.randint(0, 30)), amount,
                "NGN", status, meta[0], tariff if completed and energy else Decimal(-1),
                meter_type if completed and energy else None,
                rng.choice(("CREDIT_CARD", "USSD", "BANK_TRANSFER")),
                rng.choice(PAYMENT_CHANNELS), f"PAY-{order_id:07d}", grid_id, meta[6], org,
                sender, receiver, "BANKING_SYSTEM", "Banking system", meta[1], meta[2],
                meta[3], meta[4], meta[5],
            ))
            if completed:
                for wallet, delta in ((receiver, amount), (sender, -amount)):
                    transaction_id += 1
                    before = balance[wallet]
                    balance[wallet] = before + delta
                    transactions.append((transaction_id, created, delta, "SUCCESSFUL", before,
                                         balance[wallet], wallet, order_id, org))
                if energy:
                    credit[meter_id] = credit.get(meter_id, Decimal(0)) + kwh_for(amount, tariff)
    _q(conn, "insert into public.wallets (id, meter_id, organization_id, identifier,"
       " wallet_type, rls_organization_id) values (%s, %s, %s, %s, %s, %s)", wallets)
    _q(conn, "insert into public.orders (id, created_at, updated_at, amount_exact, currency,"
       " order_status, meta_order_type, tariff_exact, tariff_type, payment_method,"
       " payment_channel, external_reference, historical_grid_id,"
       " meta_is_hidden_from_reporting, rls_organization_id, sender_wallet_id,"
       " receiver_wallet_id, meta_sender_type, meta_sender_name, meta_receiver_type,"
       " meta_receiver_name, meta_receiver_id, meta_receiver_name_part_2,"
       " meta_receiver_id_part_2) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
       " %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", orders)
    _q(conn, "insert into public.transactions (id, created_at, amount_exact, transaction_status,"
       " balance_before_exact, balance_after_exact, wallet_id, order_id, rls_organization_id)"
       " values (%s, %s, %s, %s, %s, %s, %s, %s, %s)", transactions)
    _q(conn, "update public.wallets set balance_exact = %s, balance_updated_at = %s"
       " where id = %s", [(b, ANCHOR, w) for w, b in balance.items() if b])
    _q(conn, "update public.meters set kwh_credit_available_exact = %s where id = %s",
       [(kwh, meter_id) for meter_id, kwh in credit.items()])
    result.orders = len(orders)


def demo_user_id(organization_id: int) -> str:
    for uid, _, _, org in STAFF:
        if org == organization_id:
            return uid
    raise KeyError(organization_id)


def new_user_id() -> str:
    return str(uuid.uuid4())

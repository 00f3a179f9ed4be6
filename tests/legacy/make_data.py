#!/usr/bin/env python3
"""Writes the legacy-shaped test data: data/transactional.sql and data/timeseries.sql.

    python tests/legacy/make_data.py

Deterministic (fixed seed, fixed absolute dates, standard library only): running it twice gives
byte-identical files. The rows follow what the legacy writers do (nxtgrid/nxt-backend: the
order loop and its order meta, the auth.users triggers, the meter snapshot jobs), quirks
included; README.md beside this file says which quirk is where and why. The facts tests rely on
live in dataset.py; this script refuses to write files that disagree with it.
"""

from __future__ import annotations

import json
import math
import random
import struct
import sys
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

try:
    from tests.legacy import dataset as ds
except ImportError:  # run as a script: python tests/legacy/make_data.py
    import dataset as ds  # type: ignore[no-redef]

SEED = 20260901
HERE = Path(__file__).resolve().parent
OUT = HERE / "data"
NS = uuid.UUID("6f1c2b8e-0d4a-4e59-9a53-2f6a1c3e7b10")  # uuid5 namespace of derived ids

rng = random.Random(SEED)


# -- SQL literals ------------------------------------------------------------------------------


class Raw(str):
    """SQL text written as is."""


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, ms: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, ms * 1000, tzinfo=UTC)


def trunc_ms(t: datetime) -> datetime:
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def lit(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, Raw):
        return str(v)
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "'NaN'::float8"
        if math.isinf(v):
            raise ValueError("no infinities in this data set")
        return repr(v)
    if isinstance(v, datetime):
        base = f"{v:%Y-%m-%d %H:%M:%S}"
        if v.microsecond:
            base += f".{v.microsecond // 1000:03d}"
        if v.tzinfo is not None:
            base += "+00"
        return f"'{base}'"
    if isinstance(v, dict | list):
        v = json.dumps(v, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    raise TypeError(f"no literal for {v!r}")


def naive(t: datetime | None) -> datetime | None:
    return None if t is None else t.astimezone(UTC).replace(tzinfo=None)


class Script:
    def __init__(self, header: str, sep: str = ", ") -> None:
        self.parts: list[str] = [header]
        self.sep = sep  # between the values of a row
        self.counts: Counter[str] = Counter()

    def comment(self, text: str) -> None:
        self.parts.append("\n-- " + text)

    def raw(self, sql: str) -> None:
        self.parts.append(sql.rstrip().removesuffix(";") + ";")

    def insert(self, table: str, columns: list[str], rows: list[list[Any]], chunk: int = 250):
        if not rows:
            return
        self.counts[table] += len(rows)
        for i in range(0, len(rows), chunk):
            body = ",\n".join("(" + self.sep.join(lit(v) for v in row) + ")"
                              for row in rows[i:i + chunk])
            self.parts.append(f"INSERT INTO {table} ({', '.join(columns)}) VALUES\n{body};")

    def text(self) -> str:
        return "\n".join(self.parts) + "\n"


def dumps(v: Any) -> str:
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def uid(*parts: Any) -> str:
    return str(uuid.uuid5(NS, "/".join(str(p) for p in parts)))


def rand_uuid() -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def rand_between(a: datetime, b: datetime) -> datetime:
    span = int((b - a).total_seconds() * 1000)
    return a + timedelta(milliseconds=rng.randrange(span))


def f32(x: float) -> float:
    """The value a `real` column keeps of x, as a double."""
    return struct.unpack("f", struct.pack("f", x))[0]


# -- the world ---------------------------------------------------------------------------------


@dataclass
class Org:
    id: int
    name: str
    type: str
    created_at: datetime
    formal_name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: str | None = None
    deleted_at: datetime | None = None


@dataclass
class Grid:
    id: int
    name: str
    org: Org
    created_at: datetime
    timezone: str = "Africa/Lagos"
    hps: float = 0.0
    fs: float = 0.0
    hidden: bool = False
    deleted_at: datetime | None = None
    dual: bool = False
    three_phase: bool = False
    synced: bool = False
    kwp: float = 0.0
    kwh: float = 0.0
    monthly_rental: float = 0.0
    fees: tuple[float, float, float] = (0.0, 0.0, 0.0)
    identifier: int | None = None
    geom: str | None = None
    currency: str = "NGN"
    should_fs_be_on: bool = False
    deployed_at: datetime | None = None


@dataclass
class Dcu:
    id: int
    ref: str
    system: str
    protocol: str | None
    grid: Grid | None
    created_at: datetime
    is_online: bool = True


@dataclass
class Account:
    id: int
    full_name: str
    created_at: datetime
    email: str | None = None
    phone: str | None = None
    org_id: int | None = None
    supabase_id: str | None = None
    deleted_at: datetime | None = None
    telegram_id: str | None = None
    app_meta: dict[str, Any] = field(default_factory=dict)
    provider: str = "email"
    member: Member | None = None
    agent: Agent | None = None
    customer: Customer | None = None


@dataclass
class Member:
    id: int
    account: Account
    member_type: str
    created_at: datetime
    busy_commissioning_id: int | None = None
    subscribed: bool = False
    training_level: int = 0
    hidden: bool = False


@dataclass
class Agent:
    id: int
    account: Account
    grid: Grid
    created_at: datetime


@dataclass
class Customer:
    id: int
    grid: Grid
    account: Account | None
    created_at: datetime
    hidden: bool = False
    gender: str | None = None
    lat: float | None = None
    lon: float | None = None
    generator: str | None = None
    total_fee: float = 0.0
    in_community: bool = True
    kind: str = "residential"
    connection: Connection | None = None


@dataclass
class Connection:
    id: int
    customer: Customer
    created_at: datetime
    paid: float
    currency: str
    women: int
    residential: bool
    commercial: bool
    public: bool
    lifeline: bool | None
    upload_uuid: str
    document_type: str | None
    document_id: str | None
    wired: bool | None = False
    led: bool | None = False


@dataclass
class Meter:
    id: int
    ref: str
    system: str
    type: str
    phase: str
    protocol: str | None
    connection: Connection | None
    dcu: Dcu | None
    grid: Grid | None  # rls_grid_id, as the install flow sets it
    created_at: datetime
    kwh_tariff: float | None = None
    credit: float | None = None
    power_limit: int | None = None
    power_limit_should_be: int | None = None
    is_on: bool = True
    should_be_on: bool = True
    deleted_at: datetime | None = None
    cabin: bool = False
    version: str | None = None
    has_wallet: bool = True
    last_seen_at: datetime | None = None
    last_sts_token_issued_at: datetime | None = None
    last_non_zero_consumption_at: datetime | None = None
    voltage: float | None = None
    nickname: str | None = None


@dataclass
class Wallet:
    id: int
    kind: str  # BANKING_SYSTEM ORGANIZATION AGENT CUSTOMER CONNECTION METER
    ref: Any
    created_at: datetime
    wallet_type: str = "REAL"
    identifier: str | None = None
    balance: float = 0.0
    balance_updated_at: datetime | None = None


@dataclass
class Order:
    created_at: datetime
    sender: Wallet
    receiver: Wallet
    amount: float
    currency: str
    plan: str  # complete initialised pending verify_failed cancelled timed_out ignored
    author: Account | None = None
    channel: str | None = None
    external_reference: str | None = None
    external_system: str | None = None
    method: str | None = None
    mct: MeterCreditTransfer | None = None
    forced_type: str | None = None  # meta_order_type the legacy set where today's code sets none
    id: int = 0
    status: str = ""
    updated_at: datetime | None = None
    processed_at: datetime | None = None
    lock_session: str | None = None
    tariff: float = -1.0
    tariff_type: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class MeterCreditTransfer:
    id: int
    sender: Meter
    receiver: Meter
    amount: float
    currency: str
    author: Account
    created_at: datetime
    set_to: float = 0.0


ORGS: dict[int, Org] = {}
GRIDS: dict[int, Grid] = {}
DCUS: list[Dcu] = []
ACCOUNTS: dict[int, Account] = {}
MEMBERS: list[Member] = []
AGENTS: dict[int, Agent] = {}
CUSTOMERS: dict[int, Customer] = {}
CONNECTIONS: list[Connection] = []
METERS: dict[int, Meter] = {}
WALLETS: dict[int, Wallet] = {}
WALLET_OF: dict[tuple[str, int], Wallet] = {}
ORDERS: list[Order] = []
MCTS: list[MeterCreditTransfer] = []

FIRST = ["Adewale", "Bisi", "Chinedu", "Ngozi", "Ifeoma", "Obinna", "Kehinde", "Taiwo",
         "Yetunde", "Segun", "Aisha", "Halima", "Sani", "Uche", "Nneka", "Femi", "Kemi",
         "Zainab", "Gbenga", "Olamide", "Chiamaka", "Ebuka", "Amaka", "Rukayat", "Tobi",
         "Damilola", "Abubakar", "Hauwa", "Ikenna", "Folake"]
LAST = ["Okonkwo", "Adebayo", "Eze", "Balogun", "Nwachukwu", "Ogunleye", "Afolabi", "Okeke",
        "Bello", "Ojo", "Lawal", "Obi", "Adeleke", "Chukwu", "Ibekwe", "Salami", "Olawale",
        "Uzor", "Akande", "Musa"]
KE_FIRST = ["Wanjiku", "Kamau", "Achieng", "Otieno", "Njeri", "Kiprono", "Chebet", "Mwangi"]
KE_LAST = ["Kariuki", "Odhiambo", "Wafula", "Kiptoo", "Njoroge", "Omondi", "Mutai", "Wambui"]


def person(kenyan: bool = False) -> str:
    if kenyan:
        return f"{rng.choice(KE_FIRST)} {rng.choice(KE_LAST)}"
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


_phones: set[str] = set()


def phone(country: str = "234") -> str:
    prefixes = ["803", "806", "813", "816", "705", "809"] if country == "234" else [
        "712", "722", "733", "701"]
    while True:
        p = country + rng.choice(prefixes) + f"{rng.randrange(10**7):07d}"
        if p not in _phones:
            _phones.add(p)
            return p


def build_organizations() -> None:
    info = {
        1: ("Sunbridge Capital Partners LLP", "credit@sunbridge.example", "+442071234567",
            "12 Finsbury Square, London", at(2024, 2, 1, 10)),
        2: ("NXT Grid Nigeria Limited", "hello@nxtgrid.example", "+2349012345678",
            "Plot 5, Admiralty Way, Lekki, Lagos", at(2023, 3, 14, 9)),
        3: ("Kilowatt Data Exchange GmbH", "data@kdx.example", "+493012345678",
            "Torstrasse 40, Berlin", at(2025, 1, 20, 12)),
        4: ("Oyo Rural Power Limited", "ops@oyorural.example", "+2348023456789",
            "Ring Road, Ibadan", at(2024, 5, 2, 8)),
        5: ("Rift Valley Microgrids Ltd", "info@riftmicro.example", "+254712345678",
            "Kenyatta Avenue, Nakuru", at(2024, 9, 9, 7)),
        7: ("Harmattan Energy Limited", None, "+2347034567890", "Kano", at(2024, 1, 5, 11)),
    }
    for oid, (name, otype) in ds.ORGANIZATIONS.items():
        formal, email, tel, addr, created = info[oid]
        ORGS[oid] = Org(oid, name, otype, created, formal, email, tel, addr,
                        at(2026, 9, 10, 14, 30) if oid == ds.DELETED_ORG_ID else None)


def build_grids() -> None:
    spec = {
        #     tz        hidden deleted                dual   3ph    synced kwp  kwh  rental
        3: ("Africa/Lagos", False, None, True, True, True, 32.4, 76.8, 150000.0),
        5: ("Africa/Lagos", False, None, False, True, True, 18.0, 43.2, 95000.0),
        8: ("Africa/Lagos", False, None, False, False, True, 12.6, 28.8, 70000.0),
        11: ("Africa/Nairobi", False, None, False, False, True, 9.9, 19.2, 310.0),
        12: ("Africa/Lagos", False, None, False, False, False, 15.3, 38.4, 0.0),
        14: ("Africa/Lagos", True, None, False, False, True, 1.2, 4.8, 0.0),
        15: ("Africa/Lagos", False, at(2026, 9, 20, 9, 15), False, False, False, 7.2, 14.4,
             45000.0),
        17: ("Africa/Lagos", True, at(2026, 9, 10, 14, 35), False, False, False, 5.4, 9.6, 0.0),
    }
    coords = {3: (3.2801, 6.4552), 5: (7.0312, 4.9876), 8: (3.5011, 6.4423), 11: (36.0811, -0.3022),
              12: (3.8012, 7.2481), 14: (3.4210, 6.4300), 15: (3.3870, 6.4640)}
    for gid, name in ds.GRIDS.items():
        tz, hidden, deleted, dual, tph, synced, kwp, kwh, rental = spec[gid]
        hps, fs = ds.GRID_TARIFFS[gid]
        created = at(2024, 6, 1, 9) + timedelta(days=37 * (gid % 11), hours=gid)
        geom = None
        if gid in coords:
            lon, lat = coords[gid]
            geom = f"SRID=4326;POINT({lon} {lat})"
        fees = (5000.0, 15000.0, 30000.0) if gid != 11 else (25.0, 60.0, 120.0)
        if gid in (12, 14):
            fees = (0.0, 0.0, 0.0)
        GRIDS[gid] = Grid(
            gid, name, ORGS[ds.GRID_ORGANIZATION[gid]], created, tz, hps, fs, hidden, deleted,
            dual, tph, synced, kwp, kwh, rental, fees, 100 + gid if gid not in (14, 17) else None,
            geom, "USD" if gid == ds.NAIROBI_GRID_ID else "NGN",
            should_fs_be_on=gid in (3, 5), deployed_at=created + timedelta(days=60))


def build_dcus() -> None:
    spec = [  # id, grid, ref, system, protocol, online
        (21, 3, "230401081", "CALIN", "CALIN_V2", True),
        (22, 3, "230401082", "CALIN", "CALIN_V1", True),
        (23, 5, "2208150044", "CALIN", "CALIN_V1", False),
        (24, 8, "230617003", "CALIN", "CALIN_V2", True),
        (25, 11, "0016C001FF1A0B77", "CALIN", "CALIN_LORAWAN", True),
        (26, 11, "ACR-KNY-01", "ACREL", None, True),
        (27, 12, "230901114", "CALIN", "CALIN_V2", True),
        (28, 14, "229900001", "CALIN", "CALIN_V2", True),
        (29, 15, "STM-0042", "STEAMACO", None, False),
        (30, 17, "221100077", "CALIN", "CALIN_V1", False),
        (31, None, "230401099", "CALIN", "CALIN_V2", False),  # spare, on no grid
    ]
    for did, gid, ref, system, proto, online in spec:
        grid = GRIDS[gid] if gid else None
        created = (grid.created_at if grid else at(2025, 11, 3, 10)) + timedelta(days=20, hours=did)
        DCUS.append(Dcu(did, ref, system, proto, grid, created, online))


def staff_names() -> dict[int, tuple[str, str]]:
    return {
        301: ("Adaeze Okafor", "adaeze.okafor@nxtgrid.example"),
        302: ("Tunde Bakare", "tunde.bakare@nxtgrid.example"),
        303: ("Funmilayo Adeyemi", "funmi.adeyemi@nxtgrid.example"),
        304: ("Emeka Nwosu", "emeka.nwosu@nxtgrid.example"),
        305: ("Grace Mensah", "grace.mensah@sunbridge.example"),
        306: ("Daniel Whitfield", "daniel.whitfield@sunbridge.example"),
        307: ("Priya Raman", "priya.raman@kdx.example"),
        308: ("Lukas Brandt", "lukas.brandt@kdx.example"),
        309: ("Sofia Marquez", "sofia.marquez@kdx.example"),
        310: ("Kilowatt Data Exchange Integration", "integration@kdx.example"),
        311: ("Bola Ahmed", "bola.ahmed@oyorural.example"),
        312: ("Kelechi Umeh", "kelechi.umeh@oyorural.example"),
        313: ("Wanjiru Kamau", "wanjiru.kamau@riftmicro.example"),
        314: ("Ibrahim Danjuma", "ibrahim.danjuma@harmattan.example"),
        321: ("Musa Abdullahi", None),
        322: ("Blessing Eze", None),
        323: ("Chioma Obi", None),
        324: ("Otieno Ouma", None),
        325: ("Test Agent Ayrton", "agent.test@nxtgrid.example"),
        326: ("Yakubu Sani", None),
    }


def build_staff_and_agents() -> None:
    names = staff_names()
    for aid, (sup, org_id, mid, mtype) in ds.STAFF.items():
        name, email = names[aid]
        created = ORGS[org_id].created_at + timedelta(days=3 + aid % 17, hours=aid % 7)
        acc = Account(aid, name, created, email, None, org_id, sup,
                      at(2026, 9, 25, 16, 2) if aid == 309 else None,
                      telegram_id=str(5000000000 + aid * 7919) if aid in (301, 304) else None)
        acc.app_meta = {"account_id": aid, "account_type": "MEMBER", "member_type": mtype,
                        "organization_id": org_id, "organization_type": ORGS[org_id].type}
        ACCOUNTS[aid] = acc
        acc.member = Member(mid, acc, mtype, created + timedelta(seconds=2),
                            busy_commissioning_id=3 if aid == 304 else None,
                            subscribed=aid in (303, 313), training_level=2 if aid == 304 else 0,
                            hidden=aid == 310)
        MEMBERS.append(acc.member)
    for aid, (sup, agid, gid) in ds.AGENTS.items():
        name, email = names[aid]
        grid = GRIDS[gid]
        created = grid.created_at + timedelta(days=90 + aid % 5)
        acc = Account(aid, name, created, email, phone(), grid.org.id, sup,
                      at(2026, 9, 21, 8, 40) if aid == 326 else None, provider="phone")
        acc.app_meta = {"account_id": aid, "account_type": "AGENT", "grid_id": gid,
                        "organization_id": grid.org.id, "organization_type": grid.org.type}
        ACCOUNTS[aid] = acc
        acc.agent = Agent(agid, acc, grid, created + timedelta(seconds=3))
        AGENTS[agid] = acc.agent


# Customers per grid: (kind, meters, flags). meters: HPS / FS / HPS+FS, "3" = three phase.
CUSTOMER_SPEC: dict[int, list[tuple[str, str, str]]] = {
    3: [("residential", "HPS", ""), ("commercial", "HPS+FS3", ""), ("residential", "HPS+FS", ""),
        ("residential", "HPS", "yoruba"), ("commercial", "HPS+FS3", "quote"),
        ("public", "HPS", "clinic"), ("residential", "HPS", "hidden"),
        ("residential", "HPS+FS", "fs_no_wallet"), ("residential", "HPS", "no_account"),
        ("residential", "HPS", "")],
    5: [("residential", "HPS", ""), ("residential", "HPS", "replaced"), ("commercial", "FS3", ""),
        ("residential", "HPS", "deleted_account"), ("residential", "HPS", ""),
        ("residential", "HPS", "hidden"), ("commercial", "HPS", "")],
    8: [("residential", "HPS", ""), ("residential", "HPS", ""), ("residential", "HPS", ""),
        ("commercial", "FS", ""), ("residential", "HPS", "no_account"), ("residential", "HPS", "")],
    11: [("residential", "HPS", "lorawan"), ("residential", "HPS", "lorawan"),
         ("commercial", "HPS", "lorawan"), ("residential", "HPS", "lorawan"),
         ("residential", "HPS", "acrel"), ("commercial", "FS", "acrel")],
    12: [("residential", "HPS", ""), ("residential", "HPS", ""), ("residential", "HPS", ""),
         ("residential", "HPS", ""), ("commercial", "FS", "")],
    14: [("residential", "HPS", "hidden"), ("residential", "HPS", "hidden"),
         ("residential", "HPS", "")],
    15: [("residential", "HPS", ""), ("residential", "HPS", "deleted_account"),
         ("commercial", "HPS", "")],
    17: [("residential", "HPS", ""), ("residential", "HPS", "")],
}
SPECIAL_NAMES = {"yoruba": "Adébáyọ̀ Ògúnlésì", "quote": "Oluwaseun 'Seun' Adeyemi",
                 "clinic": "Oke-Odo Primary Health Centre"}
TEST_NAMES = {507: "NXT Test Customer", 535: "Test Customer One", 536: "Test Customer Two",
              537: "Ayrton Demo Household"}
METER_TARIFFS = {12: [195.0, 195.0, 187.5, 201.25, 240.0]}


def build_customers_and_meters() -> None:
    cid, acc_id, conn_id, meter_id = 501, 341, 601, 701
    pending_fs: list[tuple[Customer, Connection, bool, str]] = []
    deleted_meter_spec: tuple[Customer, Connection] | None = None
    users_left = 0
    for gid, specs in CUSTOMER_SPEC.items():
        grid = GRIDS[gid]
        kenyan = gid == ds.NAIROBI_GRID_ID
        dcus = [d for d in DCUS if d.grid is grid]
        for idx, (kind, meters, flag) in enumerate(specs):
            created = grid.created_at + timedelta(days=70 + 9 * idx, hours=rng.randrange(8, 17),
                                                  minutes=rng.randrange(60),
                                                  milliseconds=rng.randrange(1000))
            account = None
            if flag != "no_account":
                name = SPECIAL_NAMES.get(flag) or TEST_NAMES.get(cid) or person(kenyan)
                with_user = (users_left % 5) in (0, 2, 3) or flag in ("deleted_account", "hidden")
                users_left += 1
                account = Account(acc_id, name, created - timedelta(seconds=4),
                                  org_id=grid.org.id,
                                  deleted_at=(at(2026, 9, 27, 11, 5) if gid == 5
                                              else at(2026, 9, 18, 15, 20))
                                  if flag == "deleted_account" else None)
                if with_user:
                    account.supabase_id = rand_uuid()
                    if rng.random() < 0.6:
                        account.phone = phone("254" if kenyan else "234")
                        account.provider = "phone"
                    else:  # the legacy makes up an address when a customer has none
                        account.email = f"{rand_uuid()}@gmail.com"
                    account.app_meta = {"account_id": acc_id, "account_type": "CUSTOMER",
                                        "grid_id": gid, "organization_id": grid.org.id,
                                        "organization_type": grid.org.type}
                else:  # imported from the field survey: no auth user, no organization
                    account.org_id = None
                    if rng.random() < 0.5:
                        account.phone = phone("254" if kenyan else "234")
                ACCOUNTS[acc_id] = account
                acc_id += 1
            cust = Customer(cid, grid, account, created, hidden=flag == "hidden",
                            gender=rng.choice(["MALE", "FEMALE", "FEMALE", None]),
                            lat=round(rng.uniform(-0.5, 0.5) + (6.45 if not kenyan else -0.3), 6),
                            lon=round(rng.uniform(-0.5, 0.5) + (3.4 if not kenyan else 36.08), 6),
                            generator=rng.choice([None, None, "SMALL", "LARGE"]), kind=kind,
                            in_community=flag != "clinic")
            if account:
                account.customer = cust
            CUSTOMERS[cid] = cust
            hps_fee, fs1_fee, fs3_fee = grid.fees
            fee = hps_fee
            if "FS3" in meters:
                fee += fs3_fee
            elif "FS" in meters:
                fee += fs1_fee
            cust.total_fee = fee
            paid0 = rng.choice([0.0, fee / 2, fee, fee, fee]) if fee else 0.0
            conn = Connection(conn_id, cust, created + timedelta(minutes=11), paid0,
                              grid.currency, rng.randrange(0, 5) if kind != "public" else 12,
                              kind == "residential", kind == "commercial", kind == "public",
                              rng.choice([None, False, True]) if kind == "residential" else None,
                              uid("upload", conn_id),
                              rng.choice(["NATIONAL_ID", "VOTERS_CARD", "PASSPORT", None]),
                              f"{rng.randrange(10**10, 10**11)}",
                              rng.choice([True, False, None]), rng.choice([True, False, None]))
            cust.connection = conn
            CONNECTIONS.append(conn)
            conn_id += 1
            cid += 1
            dcu = dcus[idx % len(dcus)] if flag not in ("lorawan", "acrel") else next(
                d for d in dcus if (d.system == "ACREL") == (flag == "acrel"))
            types = meters.split("+")
            hps_type = types[0]
            m = make_meter(meter_id, cust, conn, dcu, hps_type, idx)
            meter_id += 1
            if gid in METER_TARIFFS:
                m.kwh_tariff = METER_TARIFFS[gid][idx]
            if flag == "replaced":
                deleted_meter_spec = (cust, conn)
            if len(types) > 1:
                pending_fs.append((cust, conn, flag == "fs_no_wallet", types[1]))
    # The dual-meter grid's FS meters, then the odd ones.
    for cust, conn, no_wallet, fs_type in pending_fs:
        dcu = next(d for d in DCUS if d.grid is cust.grid and d.protocol == "CALIN_V1")
        m = make_meter(meter_id, cust, conn, dcu, fs_type, meter_id)
        m.has_wallet = not no_wallet
        meter_id += 1
    # The two meters with explicit tariffs outside the zero-tariff grid.
    METERS[703].kwh_tariff = 175.0
    METERS[724].kwh_tariff = 0.4
    METERS[ds.METER_FRACTIONAL_CREDIT_ID].credit = 12.340000000000002
    METERS[ds.METER_NULL_CREDIT_ID].credit = None
    assert deleted_meter_spec is not None
    cust, conn = deleted_meter_spec
    dcu = next(d for d in DCUS if d.grid is cust.grid)
    new = next(m for m in METERS.values() if m.connection is conn)
    old = make_meter(meter_id, cust, conn, dcu, "HPS", 99)
    new.created_at = at(2026, 9, 15, 12, 31, 8, 407)  # installed when the old one came out
    old.ref = "47000081231"
    old.created_at = cust.created_at + timedelta(days=1)
    old.deleted_at = at(2026, 9, 15, 12, 4, 31, 220)
    old.is_on = old.should_be_on = False
    old.credit = None
    old.version = "0.98"
    meter_id += 1
    cabin_dcu = next(d for d in DCUS if d.id == 21)
    cabin = Meter(meter_id, "47009990001", "CALIN", "HPS", "THREE_PHASE", "CALIN_V2", None,
                  cabin_dcu, GRIDS[3], GRIDS[3].created_at + timedelta(days=45), cabin=True,
                  credit=812.5400000000001, power_limit=0, power_limit_should_be=0,
                  version="1.07", has_wallet=False, nickname="Oke-Odo energy cabin",
                  last_seen_at=at(2026, 10, 15, 21, 58, 12, 5), voltage=231.4)
    METERS[meter_id] = cabin
    meter_id += 1
    stock = Meter(meter_id, "47002377018", "CALIN", "HPS", "SINGLE_PHASE", "CALIN_V2", None,
                  None, None, at(2026, 8, 28, 13, 0, 0, 514), has_wallet=False, is_on=False,
                  should_be_on=False, version="1.07")
    METERS[meter_id] = stock


def make_meter(mid: int, cust: Customer, conn: Connection, dcu: Dcu, mtype: str, idx: int) -> Meter:
    grid = cust.grid
    three = mtype.endswith("3")
    mtype = mtype.rstrip("3")
    if dcu.system == "ACREL":
        ref, system = f"2309{rng.randrange(10**8):08d}", "ACREL"
    elif dcu.system == "STEAMACO":
        ref, system = f"SM{rng.randrange(10**6):06d}", "STEAMACO"
    elif dcu.protocol == "CALIN_LORAWAN":
        ref, system = f"4710{rng.randrange(10**7):07d}", "CALIN"
    else:
        ref, system = f"4700{rng.randrange(10**7):07d}", "CALIN"
    if mtype == "HPS":
        limit = 200
    elif grid.dual:
        limit = 0
    else:
        limit = 2000 if grid.id == ds.ZERO_TARIFF_GRID_ID else 1500
    if system == "ACREL":
        limit = None
    credit_choice = rng.random()
    if credit_choice < 0.2:
        credit = None
    elif credit_choice < 0.3:
        credit = 0.0
    else:
        credit = round(rng.uniform(0.5, 95.0), 2) + rng.choice([0.0, 0.0, 1e-12 * 2.2])
    m = Meter(mid, ref, system, mtype, "THREE_PHASE" if three else "SINGLE_PHASE", dcu.protocol,
              conn, dcu, grid, conn.created_at + timedelta(days=2, minutes=idx % 50),
              credit=credit, power_limit=limit, power_limit_should_be=limit,
              version=rng.choice(["1.02", "1.05", "1.07"]) if system == "CALIN" else None,
              last_seen_at=trunc_ms(at(2026, 10, 15, 20) + timedelta(seconds=rng.randrange(7000))),
              voltage=round(rng.uniform(214.0, 238.0), 1))
    if credit == 0.0:
        m.is_on = False
    METERS[mid] = m
    return m


def build_wallets() -> None:
    def add(wid: int, kind: str, ref: Any, created: datetime, wtype: str = "REAL",
            identifier: str | None = None) -> Wallet:
        w = Wallet(wid, kind, ref, created, wtype, identifier)
        WALLETS[wid] = w
        if ref is not None:
            WALLET_OF[(kind, ref.id)] = w
        return w

    add(ds.BANKING_SYSTEM_WALLET_ID, "BANKING_SYSTEM", None, at(2023, 4, 2, 10, 0, 0, 0),
        identifier=ds.BANKING_SYSTEM_IDENTIFIER)
    for oid, wid in ds.ORGANIZATION_WALLETS.items():
        add(wid, "ORGANIZATION", ORGS[oid], ORGS[oid].created_at + timedelta(hours=1))
    for agid, wid in ds.AGENT_WALLETS.items():
        add(wid, "AGENT", AGENTS[agid], AGENTS[agid].created_at + timedelta(seconds=1))
    for i, cid in enumerate((501, 503, 511, 518, 530, 535)):
        c = CUSTOMERS[cid]
        add(1021 + i, "CUSTOMER", c, c.created_at + timedelta(days=30))
    for i, conn in enumerate(CONNECTIONS):
        add(1101 + i, "CONNECTION", conn, conn.created_at + timedelta(milliseconds=240), "VIRTUAL")
    wid = 1201
    for m in METERS.values():
        if m.has_wallet:
            add(wid, "METER", m, m.created_at + timedelta(seconds=5))
            wid += 1


# -- orders ------------------------------------------------------------------------------------


class MetaError(Exception):
    """What the legacy order meta hits (a TypeError) when a customer has no account."""


def _full_name(customer: Customer) -> str:
    if customer.account is None:
        raise MetaError
    return customer.account.full_name


def _meter_customer(m: Meter) -> Customer:
    if m.connection is None:
        raise MetaError
    return m.connection.customer


def infer_meta(o: Order) -> dict[str, Any]:
    """The legacy order meta, as tiamat's inferOrderMeta computes it (all or nothing)."""
    try:
        meta: dict[str, Any] = {}
        a = o.author
        if a is not None:
            if a.agent:
                meta.update(meta_author_type="AGENT", meta_author_id=a.agent.id)
            elif a.customer:
                meta.update(meta_author_type="CUSTOMER", meta_author_id=a.customer.id)
            elif a.member:
                meta.update(meta_author_type="MEMBER", meta_author_id=a.member.id)
            if "meta_author_type" in meta:
                meta["meta_author_name"] = a.full_name
        s = o.sender
        if s.kind == "AGENT":
            meta.update(meta_sender_type="AGENT", meta_sender_name=s.ref.account.full_name,
                        meta_sender_id=s.ref.id)
        elif s.kind == "METER":
            meta.update(meta_sender_type="METER", meta_sender_name=s.ref.ref,
                        meta_sender_id=s.ref.id,
                        meta_sender_name_part_2=_full_name(_meter_customer(s.ref)))
        elif s.kind == "ORGANIZATION":
            meta.update(meta_sender_type="ORGANIZATION", meta_sender_name=s.ref.name,
                        meta_sender_id=s.ref.id)
        elif s.kind == "CONNECTION":
            meta.update(meta_sender_type="CONNECTION", meta_sender_name=s.ref.upload_uuid,
                        meta_sender_id=s.ref.id,
                        meta_sender_name_part_2=_full_name(s.ref.customer))
        elif s.identifier == ds.BANKING_SYSTEM_IDENTIFIER:
            meta.update(meta_sender_type="BANKING_SYSTEM", meta_sender_name="Banking system")
        r = o.receiver
        if r.kind == "AGENT":
            ag: Agent = r.ref
            meta.update(meta_receiver_type="AGENT", meta_receiver_name=ag.account.full_name,
                        meta_receiver_id=ag.id, meta_order_type="AGENT_TOPUP",
                        meta_is_hidden_from_reporting=ag.grid.hidden,
                        historical_grid_id=ag.grid.id, rls_organization_id=ag.grid.org.id)
        elif r.kind == "CUSTOMER":
            c: Customer = r.ref
            meta.update(meta_receiver_type="CUSTOMER", meta_receiver_name=_full_name(c),
                        meta_receiver_id=c.id,
                        meta_is_hidden_from_reporting=c.hidden or c.grid.hidden,
                        historical_grid_id=c.grid.id, rls_organization_id=c.grid.org.id)
        elif r.kind == "ORGANIZATION":
            org: Org = r.ref
            meta.update(meta_receiver_type="ORGANIZATION", meta_receiver_name=org.name,
                        meta_receiver_id=org.id)
            if s.kind == "CONNECTION":
                c = s.ref.customer
                meta.update(meta_is_hidden_from_reporting=c.hidden or c.grid.hidden,
                            meta_order_type="CONNECTION_REFUND", historical_grid_id=c.grid.id,
                            rls_organization_id=c.grid.org.id)
            elif s.kind == "ORGANIZATION":
                if s.ref.name == ds.OPERATOR_ORG_NAME:
                    meta.update(meta_order_type="ORGANIZATION_TOPUP", rls_organization_id=org.id)
                else:
                    meta.update(meta_order_type="ORGANIZATION_WITHDRAWAL",
                                rls_organization_id=s.ref.id)
            elif s.identifier == ds.BANKING_SYSTEM_IDENTIFIER:
                meta.update(meta_order_type="ORGANIZATION_TOPUP", rls_organization_id=org.id,
                            meta_is_hidden_from_reporting=False)
            elif s.kind == "AGENT":
                g = s.ref.grid
                meta.update(meta_order_type="AGENT_WITHDRAWAL", historical_grid_id=g.id,
                            rls_organization_id=g.org.id, meta_is_hidden_from_reporting=False)
            elif s.kind == "METER":
                g = _meter_customer(s.ref).grid
                meta.update(historical_grid_id=g.id, rls_organization_id=g.org.id,
                            meta_is_hidden_from_reporting=False)
        elif r.kind == "METER":
            m: Meter = r.ref
            c = _meter_customer(m)
            meta.update(meta_receiver_type="METER", meta_receiver_name=m.ref,
                        meta_receiver_id=m.id, meta_receiver_name_part_2=_full_name(c),
                        meta_receiver_id_part_2=c.id, meta_order_type="ENERGY_TOPUP",
                        historical_grid_id=c.grid.id, rls_organization_id=c.grid.org.id,
                        meta_is_hidden_from_reporting=c.hidden or c.grid.hidden
                        or o.mct is not None)
        elif r.kind == "CONNECTION":
            c = r.ref.customer
            meta.update(meta_receiver_type="CONNECTION", meta_receiver_name=r.ref.upload_uuid,
                        meta_receiver_id=r.ref.id, meta_receiver_name_part_2=_full_name(c),
                        meta_receiver_id_part_2=c.id, meta_order_type="CONNECTION_PAYMENT",
                        historical_grid_id=c.grid.id, rls_organization_id=c.grid.org.id,
                        meta_is_hidden_from_reporting=c.hidden or c.grid.hidden)
        if o.forced_type and "meta_order_type" not in meta:
            meta["meta_order_type"] = o.forced_type
        return meta
    except MetaError:
        return {}


NGN_AMOUNTS = [500.0, 1000.0, 1000.0, 1500.0, 2000.0, 2000.0, 2500.0, 3000.0, 5000.0, 750.0,
               1234.56, 333.33, 2222.22, 1999.99, 850.5, 4321.1]
USD_AMOUNTS = [1.0, 2.5, 0.75, 3.1, 1.15, 0.35, 4.2, 0.1, 0.2, 1.3]


def amount_for(currency: str) -> float:
    return rng.choice(USD_AMOUNTS if currency == "USD" else NGN_AMOUNTS)


def flw_reference(org: Org, meter_ref: str, t: datetime) -> str:
    iso = f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z"
    return f"{org.name.replace(' ', '')}+{meter_ref}__{iso}"


def banking() -> Wallet:
    return WALLETS[ds.BANKING_SYSTEM_WALLET_ID]


def org_wallet(oid: int) -> Wallet:
    return WALLETS[ds.ORGANIZATION_WALLETS[oid]]


def agent_wallet(agid: int) -> Wallet:
    return WALLETS[ds.AGENT_WALLETS[agid]]


def grid_active(grid: Grid, t: datetime) -> bool:
    return grid.deleted_at is None or t < grid.deleted_at - timedelta(hours=2)


def meter_connected(m: Meter, t: datetime) -> bool:
    return m.deleted_at is None or t < m.deleted_at


def build_orders() -> None:
    acc = ACCOUNTS
    bank = banking()

    def add(**kw: Any) -> Order:
        o = Order(**kw)
        ORDERS.append(o)
        return o

    # Organizations: funding from the bank, the operator passing money on, withdrawals.
    add(created_at=at(2026, 9, 1, 9, 12, 4, 310), sender=bank, receiver=org_wallet(2),
        amount=2500000.0, currency="NGN", plan="complete", author=acc[303], channel="AYRTON",
        external_reference="NXT-FUND-2026-09-01", method="BANK_TRANSFER")
    add(created_at=at(2026, 9, 2, 10, 3, 55, 1), sender=bank, receiver=org_wallet(4),
        amount=800000.0, currency="NGN", plan="complete", author=acc[311], channel="AYRTON",
        external_reference="ORP-TOPUP-0902", method="BANK_TRANSFER")
    add(created_at=at(2026, 9, 2, 11, 47, 21, 998), sender=bank, receiver=org_wallet(5),
        amount=600000.0, currency="NGN", plan="complete", author=acc[313], channel="AYRTON",
        external_reference="RVM-0902-A", method="BANK_TRANSFER", external_system="FLUTTERWAVE")
    add(created_at=at(2026, 9, 15, 8, 30, 0, 125), sender=bank, receiver=org_wallet(2),
        amount=1200000.5, currency="NGN", plan="complete", author=acc[303], channel="AYRTON",
        external_reference="NXT-FUND-2026-09-15", method="BANK_TRANSFER")
    add(created_at=at(2026, 9, 29, 13, 0, 12, 700), sender=bank, receiver=org_wallet(2),
        amount=1500.0, currency="EUR", plan="complete", author=acc[301], channel="AYRTON",
        external_reference="NXT-EUR-2026-09-29", method="CREDIT_CARD")
    add(created_at=at(2026, 10, 12, 17, 41, 9, 12), sender=bank, receiver=org_wallet(4),
        amount=250000.0, currency="NGN", plan="initialised", author=acc[311], channel="AYRTON",
        external_reference="ORP-TOPUP-1012")
    add(created_at=at(2026, 9, 3, 9, 5, 0, 0), sender=org_wallet(2), receiver=org_wallet(7),
        amount=50000.0, currency="NGN", plan="complete", author=acc[302], channel="AYRTON")
    add(created_at=at(2026, 9, 5, 12, 20, 44, 61), sender=org_wallet(2), receiver=org_wallet(4),
        amount=150000.0, currency="NGN", plan="complete", author=acc[302], channel="AYRTON")
    add(created_at=at(2026, 9, 20, 15, 2, 1, 876), sender=org_wallet(2), receiver=org_wallet(5),
        amount=99999.99, currency="NGN", plan="complete", author=acc[303], channel="AYRTON")
    add(created_at=at(2026, 9, 9, 16, 45, 0, 333), sender=org_wallet(7), receiver=org_wallet(2),
        amount=50000.0, currency="NGN", plan="complete", author=acc[314], channel="AYRTON")
    add(created_at=at(2026, 9, 28, 10, 10, 10, 10), sender=org_wallet(4), receiver=org_wallet(2),
        amount=120000.0, currency="NGN", plan="complete", author=acc[311], channel="AYRTON")
    add(created_at=at(2026, 10, 3, 9, 59, 58, 402), sender=org_wallet(5), receiver=org_wallet(2),
        amount=45000.45, currency="NGN", plan="complete", author=acc[313], channel="AYRTON")
    add(created_at=at(2026, 10, 14, 11, 0, 3, 3), sender=org_wallet(4), receiver=org_wallet(2),
        amount=10000000.0, currency="NGN", plan="complete", author=acc[311], channel="AYRTON")

    # Agents: float bought through the bank or handed over by the grid's organization.
    agent_float = {61: (20000.0, (1, 10, 20, 30, 40)), 62: (8000.0, (1, 8, 15, 22, 29, 36, 43)),
                   63: (15000.0, (1, 12, 24, 36)), 64: (60.0, (1, 15, 29, 43))}
    for agid, (base, days) in agent_float.items():
        ag = AGENTS[agid]
        cur = ag.grid.currency
        for k, day in enumerate(days):
            t = at(2026, 9, 1, 7) + timedelta(days=day - 1, hours=agid % 5,
                                              minutes=rng.randrange(50), seconds=rng.randrange(60),
                                              milliseconds=rng.randrange(1000))
            plan = "complete"
            if agid == 62 and k == 3:
                plan = "verify_failed"
            if agid == 63 and k == 3:
                plan = "initialised"
            add(created_at=t, sender=bank, receiver=agent_wallet(agid),
                amount=base * rng.choice([1.0, 1.0, 0.5, 1.5]), currency=cur, plan=plan,
                author=ag.account, channel="AYRTON", method="BANK_TRANSFER",
                external_reference=f"AGT{agid}-{t:%m%d%H%M%S}")
    add(created_at=at(2026, 9, 1, 10, 0, 2, 451), sender=org_wallet(2), receiver=agent_wallet(61),
        amount=30000.0, currency="NGN", plan="complete", author=acc[302], channel="AYRTON")
    add(created_at=at(2026, 9, 2, 12, 30, 0, 50), sender=org_wallet(4), receiver=agent_wallet(63),
        amount=20000.0, currency="NGN", plan="complete", author=acc[311], channel="AYRTON")
    add(created_at=at(2026, 9, 3, 6, 15, 30, 0), sender=org_wallet(5), receiver=agent_wallet(64),
        amount=200.0, currency="USD", plan="complete", author=acc[313], channel="AYRTON")
    add(created_at=at(2026, 9, 2, 9, 1, 1, 1), sender=org_wallet(2), receiver=agent_wallet(65),
        amount=3000.0, currency="NGN", plan="complete", author=acc[304], channel="AYRTON")
    add(created_at=at(2026, 9, 3, 10, 44, 0, 870), sender=org_wallet(4), receiver=agent_wallet(66),
        amount=15000.0, currency="NGN", plan="complete", author=acc[311], channel="AYRTON")
    # Withdrawals back to the organization (one more than the agent holds: a FAILED pair).
    add(created_at=at(2026, 9, 30, 17, 0, 0, 0), sender=agent_wallet(61), receiver=org_wallet(2),
        amount=20000.0, currency="NGN", plan="complete", author=acc[303], channel="AYRTON")
    add(created_at=at(2026, 10, 7, 12, 12, 12, 120), sender=agent_wallet(63),
        receiver=org_wallet(4), amount=5000.0, currency="NGN", plan="complete", author=acc[311],
        channel="AYRTON")
    add(created_at=at(2026, 10, 10, 8, 30, 45, 9), sender=agent_wallet(64), receiver=org_wallet(5),
        amount=50.5, currency="USD", plan="complete", author=acc[313], channel="AYRTON")
    add(created_at=at(2026, 10, 13, 19, 5, 0, 700), sender=agent_wallet(62),
        receiver=org_wallet(2), amount=900000.0, currency="NGN", plan="complete",
        author=acc[303], channel="AYRTON")
    # The agent of the deleted grid hands back what is left (filled in when processed).
    add(created_at=at(2026, 9, 20, 7, 55, 0, 0), sender=agent_wallet(66), receiver=org_wallet(4),
        amount=0.0, currency="NGN", plan="complete", author=acc[311], channel="AYRTON")

    # Customer wallets (the legacy code today sets no meta_order_type for them).
    for i, cid in enumerate((501, 503, 511, 518, 530, 535, 501)):
        c = CUSTOMERS[cid]
        t = at(2026, 9, 4, 18, 20 + i, 3 * i, 111 * i) + timedelta(days=5 * i)
        add(created_at=t, sender=bank, receiver=WALLET_OF[("CUSTOMER", cid)],
            amount=amount_for(c.grid.currency), currency=c.grid.currency,
            plan="complete" if i != 3 else "cancelled", channel="NIFFLER",
            external_reference=f"CUS{cid}-{t:%m%d%H%M}",
            forced_type=None if i == 6 else "CUSTOMER_TOPUP")

    # Connection fees: paid through the bank (public page or staff), or to an agent. Three
    # customers get their fee back later (CONNECTION_REFUND: the connection wallet empties).
    refund_at = {514: at(2026, 9, 29, 10, 0, 0, 0), 539: at(2026, 9, 19, 11, 30, 0, 0),
                 507: at(2026, 10, 2, 14, 0, 0, 0)}
    for cid in refund_at:
        CUSTOMERS[cid].connection.paid = 0.0
    payable = [c for c in CONNECTIONS if c.customer.total_fee > c.paid]
    for i, conn in enumerate(payable):
        c = conn.customer
        grid = c.grid
        t = at(2026, 9, 1, 8) + timedelta(days=1 + (i * 3) % 30, hours=rng.randrange(1, 10),
                                          seconds=rng.randrange(3600))
        if not grid_active(grid, t):
            t = grid.deleted_at - timedelta(days=2 + i % 4, hours=3)
        due = c.total_fee - conn.paid
        amount = due if i % 3 else round(due / 2, 2)
        plan = {4: "initialised", 9: "verify_failed", 13: "cancelled", 17: "initialised"}.get(
            i, "complete")
        if c.id in refund_at:
            t, plan, amount = refund_at[c.id] - timedelta(days=3, hours=i), "complete", due
        agents = [a for a in AGENTS.values() if a.grid is grid]
        if i % 4 == 1 and agents and plan == "complete" and c.id not in refund_at:
            ag = agents[0]
            add(created_at=t, sender=agent_wallet(ag.id), receiver=WALLET_OF[("CONNECTION",
                                                                                conn.id)],
                amount=amount, currency=conn.currency, plan=plan, author=ag.account,
                channel="TELEGRAM")
        else:
            author = acc[304] if i % 2 else None
            add(created_at=t, sender=bank, receiver=WALLET_OF[("CONNECTION", conn.id)],
                amount=amount, currency=conn.currency, plan=plan, author=author,
                channel="AYRTON" if author else "NIFFLER",
                external_reference=f"CONN{conn.id}-{t:%y%m%d%H%M%S}")
    for cid, t in refund_at.items():
        conn = CUSTOMERS[cid].connection
        add(created_at=t, sender=WALLET_OF[("CONNECTION", conn.id)],
            receiver=org_wallet(CUSTOMERS[cid].grid.org.id), amount=0.0, currency=conn.currency,
            plan="complete", author=acc[303], channel="AYRTON")

    # The replaced meter's money goes back to its organization before it is uninstalled.
    old = METERS[ds.DELETED_METER_ID]
    add(created_at=at(2026, 9, 15, 10, 2, 0, 0), sender=WALLET_OF[("METER", old.id)],
        receiver=org_wallet(4), amount=0.0, currency="NGN", plan="complete", author=acc[311],
        channel="AYRTON")

    # Meter credit transfers between a customer's two meters (hidden from reporting).
    for i, (cid, t) in enumerate(((502, at(2026, 9, 24, 16, 5, 0, 0)),
                                   (503, at(2026, 10, 6, 9, 40, 0, 0)))):
        hps, fs = [m for m in METERS.values() if m.connection is CUSTOMERS[cid].connection]
        mct = MeterCreditTransfer(31 + i, hps, fs, 0.0, "NGN", acc[304], t)
        MCTS.append(mct)
        add(created_at=t + timedelta(milliseconds=180), sender=WALLET_OF[("METER", hps.id)],
            receiver=WALLET_OF[("METER", fs.id)], amount=0.0, currency="NGN", plan="complete",
            author=acc[304], channel="AYRTON", mct=mct)

    # A public top-up for the meter of a customer without an account: the legacy order meta
    # fails on the missing account (all meta NULL) and the page errors out after creating it.
    m709 = METERS[709]
    t709 = at(2026, 10, 3, 19, 14, 51, 630)
    add(created_at=t709, sender=bank, receiver=WALLET_OF[("METER", m709.id)], amount=1000.0,
        currency="NGN", plan="initialised", channel="NIFFLER",
        external_reference=flw_reference(GRIDS[3].org, m709.ref, t709))

    # Energy top-ups.
    rates = {3: 1.9, 5: 1.1, 8: 0.9, 11: 0.6, 12: 0.5, 14: 0.25, 15: 0.35, 17: 0.35}
    energy: list[Order] = []
    for day in range(45):
        d0 = at(2026, 9, 1) + timedelta(days=day)
        for gid, rate in rates.items():
            grid = GRIDS[gid]
            n = int(rate) + (1 if rng.random() < rate - int(rate) else 0)
            for _ in range(n):
                local = rng.choice([7, 8, 12, 17, 18, 18, 19, 19, 20, 21])
                offset = 3 if grid.timezone == "Africa/Nairobi" else 1
                t = d0 + timedelta(hours=local - offset, minutes=rng.randrange(60),
                                   seconds=rng.randrange(60), milliseconds=rng.randrange(1000))
                if not grid_active(grid, t) or t >= ds.ORDERS_TO:
                    continue
                meters = [m for m in METERS.values() if m.has_wallet and m.connection
                          and m.connection.customer.grid is grid and meter_connected(m, t)
                          and m.created_at <= t]
                weights = [0.15 if m.connection.customer.account is None
                           else 3 if m.connection.customer.id == 512 else 1 for m in meters]
                m = rng.choices(meters, weights)[0]
                agents = [a for a in AGENTS.values() if a.grid is grid
                          and (a.account.deleted_at is None or t < a.account.deleted_at)]
                roll = rng.random()
                cur = grid.currency
                if agents and roll < 0.35:
                    ag = rng.choice(agents)
                    o = add(created_at=t, sender=agent_wallet(ag.id),
                            receiver=WALLET_OF[("METER", m.id)], amount=amount_for(cur) * (
                                4 if ag.id == 62 else 1), currency=cur, plan="complete",
                            author=ag.account, channel=rng.choice(["TELEGRAM", "AYRTON"]))
                elif roll < 0.45:
                    members = [a for a in ACCOUNTS.values() if a.member and a.org_id in
                               (grid.org.id, ds.OPERATOR_ORG_ID) and a.supabase_id
                               and not a.deleted_at]
                    author = rng.choice(members)
                    o = add(created_at=t, sender=bank, receiver=WALLET_OF[("METER", m.id)],
                            amount=amount_for(cur), currency=cur, plan="complete",
                            author=author, channel="AYRTON",
                            external_reference=f"AYR-{uid('ayr', t.isoformat())[:13]}")
                elif roll < 0.57 and cur == "NGN":
                    o = add(created_at=t, sender=bank, receiver=WALLET_OF[("METER", m.id)],
                            amount=amount_for(cur), currency=cur, plan="complete",
                            channel="USSD", external_reference=f"USSD-{rng.randrange(10**9)}")
                else:
                    o = add(created_at=t, sender=bank, receiver=WALLET_OF[("METER", m.id)],
                            amount=amount_for(cur), currency=cur, plan="complete",
                            channel="NIFFLER",
                            external_reference=flw_reference(grid.org, m.ref, t),
                            external_system="FLUTTERWAVE" if day < 10 else None)
                energy.append(o)
    # Statuses other than COMPLETED, on orders the bank pays (the agent ones fail on balance).
    banked = [o for o in energy if o.sender is bank]
    recent = [o for o in banked if o.created_at >= at(2026, 10, 14)]
    for o in rng.sample(recent, 6):
        o.plan = "pending"
    pool = [o for o in banked if o.plan == "complete"]
    for plan, n in (("initialised", 8), ("verify_failed", 7), ("timed_out", 8), ("ignored", 5)):
        for o in rng.sample(pool, n):
            o.plan = plan
            pool.remove(o)
    public = [o for o in pool if o.channel == "NIFFLER"]
    for o in rng.sample(public, 7):
        o.plan = "cancelled"


def process_orders() -> list[list[Any]]:
    """Ids in creation order, then the legacy order loop in processing order; transactions."""
    ORDERS.sort(key=lambda o: o.created_at)
    for i, o in enumerate(ORDERS):
        o.id = ds.FIRST_ORDER_ID + i
        o.meta = infer_meta(o)
        meta_done = o.created_at + timedelta(milliseconds=rng.randrange(80, 600))
        o.updated_at = meta_done
        bank_paid = o.sender.kind == "BANKING_SYSTEM"
        if o.plan == "complete":
            if bank_paid:  # the payment is verified first, then the loop picks it up
                verified = meta_done + timedelta(seconds=rng.randrange(40, 540))
                o.processed_at = verified + timedelta(milliseconds=rng.randrange(300, 2500))
                o.method = o.method or rng.choice(["CREDIT_CARD", "USSD", "BANK_TRANSFER"])
                if o.channel == "USSD":
                    o.method = "USSD"
            else:
                o.processed_at = meta_done + timedelta(milliseconds=rng.randrange(150, 1500))
        elif o.plan == "initialised":
            o.status = "INITIALISED"
        elif o.plan == "pending":
            o.status = "PENDING"
            o.method = rng.choice(["CREDIT_CARD", "BANK_TRANSFER"])
            o.updated_at = meta_done + timedelta(seconds=rng.randrange(60, 480))
        elif o.plan == "verify_failed":
            o.status = "FAILED"
            o.updated_at = meta_done + timedelta(seconds=rng.randrange(60, 900))
        elif o.plan == "cancelled":
            o.status = "CANCELLED"
            o.updated_at = meta_done + timedelta(seconds=rng.randrange(30, 300))
        elif o.plan == "timed_out":
            o.status = "TIMED_OUT"
            nxt = (o.created_at + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
            o.updated_at = nxt + timedelta(hours=1, milliseconds=rng.randrange(200, 900))
        elif o.plan == "ignored":
            o.status = "IGNORED"
            o.updated_at = meta_done + timedelta(hours=rng.randrange(2, 48),
                                                 seconds=rng.randrange(3600))
        else:
            raise ValueError(o.plan)
    txs: list[list[Any]] = []
    tx_id = ds.FIRST_TRANSACTION_ID
    queue = sorted((o for o in ORDERS if o.processed_at), key=lambda o: (o.processed_at, o.id))
    for o in queue:
        t = trunc_ms(o.processed_at)
        o.processed_at = t
        s, r = o.sender, o.receiver
        if o.amount == 0.0:  # "everything that is left" orders
            o.amount = s.balance
            if o.mct:
                o.amount = round(s.balance / 2, 2)
                o.mct.amount = o.amount
                o.mct.set_to = s.balance - o.amount
        amount = abs(o.amount)
        ok = s.balance >= amount or s.kind == "BANKING_SYSTEM"
        o.lock_session = rand_uuid()
        s_before, r_before = s.balance, r.balance
        status = "SUCCESSFUL" if ok else "FAILED"
        r_after = r_before + amount if ok else r_before
        s_after = s_before - amount if ok else s_before
        txs.append([tx_id, t, amount, status, r_before, r_after, r.id, o.id])
        txs.append([tx_id + 1, t, amount * -1, status, s_before, s_after, s.id, o.id])
        tx_id += 2
        done = t + timedelta(milliseconds=rng.randrange(40, 220))
        o.updated_at = done
        if ok:
            s.balance, r.balance = s_after, r_after
            s.balance_updated_at = r.balance_updated_at = t + timedelta(milliseconds=20)
            o.status = "COMPLETED"
            if r.kind == "CONNECTION":
                r.ref.paid += amount
            if s.kind == "CONNECTION":
                s.ref.paid -= amount
            if r.kind == "METER":
                tariff_meter: Meter = o.mct.sender if o.mct else r.ref
                if tariff_meter.kwh_tariff is not None:
                    o.tariff = tariff_meter.kwh_tariff
                else:
                    g = _meter_customer(tariff_meter).grid
                    o.tariff = g.hps if tariff_meter.type == "HPS" else g.fs
                o.tariff_type = r.ref.type
                o.updated_at = done + timedelta(milliseconds=rng.randrange(100, 700))
                r.ref.last_sts_token_issued_at = o.updated_at
        else:
            o.status = "FAILED"
    for o in ORDERS:
        o.created_at = trunc_ms(o.created_at)
        o.updated_at = trunc_ms(o.updated_at)
        assert o.updated_at > o.created_at, o.id
    return txs


# -- transactional SQL -------------------------------------------------------------------------


def serial_setval(tables: tuple[str, ...]) -> str:
    body = "\n".join(f"  PERFORM setval(pg_get_serial_sequence('public.{t}', 'id'), "
                     f"(SELECT max(id) FROM public.{t}));" for t in tables)
    return f"DO $$\nBEGIN\n{body}\nEND\n$$"


SEQUENCED = ("organizations", "accounts", "members", "agents", "grids", "dcus", "customers",
             "connections", "meters", "wallets", "meter_credit_transfers", "orders",
             "transactions", "meter_interactions", "api_keys", "audits", "notes", "issues")


def transactional_sql(txs: list[list[Any]]) -> Script:
    sc = Script(
        "-- Legacy-shaped test data for the legacy transactional (Supabase) database.\n"
        "-- GENERATED by tests/legacy/make_data.py: do not edit, regenerate.\n"
        "-- Load: build-legacy-db.sh DBNAME --data tests/legacy/data/transactional.sql\n"
        "-- (one transaction, after the legacy migrations). Row-level-security columns that\n"
        "-- the legacy BEFORE INSERT triggers fill are left to them.\n"
        "SET client_encoding = 'UTF8';\nSET client_min_messages = warning;")

    sc.comment("organizations")
    sc.insert("public.organizations",
              ["id", "created_at", "name", "formal_name", "email", "phone", "address",
               "organization_type", "deleted_at", "developer_group_telegram_chat_id"],
              [[o.id, o.created_at, o.name, o.formal_name, o.email, o.phone, o.address, o.type,
                o.deleted_at, f"-100{1800000000 + o.id * 1013}" if o.type == "SOLAR_DEVELOPER"
                else None] for o in ORGS.values()])

    sc.comment("grids (final values: their AFTER UPDATE triggers call net.http_post)")
    grid_rows = []
    for g in GRIDS.values():
        grid_rows.append([
            g.id, g.created_at, g.deleted_at, g.deployed_at, g.deployed_at and g.deployed_at +
            timedelta(days=14), g.name, g.timezone, g.kwp, g.kwh, g.hps, g.hps, g.fs,
            g.fees[0], g.fees[1], g.fees[2], g.monthly_rental, g.hidden, g.three_phase, g.dual,
            g.synced, g.identifier, g.org.id, Raw(f"'{g.geom}'") if g.geom else None,
            g.should_fs_be_on, g.should_fs_be_on, g.id != 14, g.id in (3, 5, 8, 11, 12),
            {"telegram": {"enabled": g.id in (3, 5)}} if g.id in (3, 5) else {},
            {"autopilot": g.id == 3} if g.id == 3 else {},
            "VICTRON" if g.id != 11 else "SOLCAST",
        ])
    sc.insert("public.grids",
              ["id", "created_at", "deleted_at", "deployed_at", "commissioned_at", "name",
               "timezone", "kwp", "kwh", "kwh_tariff", "kwh_tariff_essential_service",
               "kwh_tariff_full_service", "default_hps_connection_fee",
               "default_fs_1_phase_connection_fee", "default_fs_3_phase_connection_fee",
               "monthly_rental", "is_hidden_from_reporting", "is_three_phase_supported",
               "uses_dual_meter_setup", "is_automatic_meter_energy_consumption_data_sync_enabled",
               "identifier", "organization_id", "location_geom", "is_fs_on", "should_fs_be_on",
               "is_hps_on", "are_all_dcus_online", "telegram_config", "feature_access_config",
               "generation_external_system"], grid_rows)

    sc.comment("dcus (rls_organization_id: trigger, from the grid)")
    sc.insert("public.dcus",
              ["id", "created_at", "external_reference", "external_system",
               "communication_protocol", "grid_id", "is_online", "last_online_at",
               "location_geom"],
              [[d.id, d.created_at, d.ref, d.system, d.protocol, d.grid.id if d.grid else None,
                d.is_online, at(2026, 10, 15, 21, 59, 0, 0) if d.is_online
                else at(2026, 10, 11, 4, 17, 0, 0),
                Raw("'SRID=4326;POINT(3.2803 6.4550)'") if d.id == 21 else None]
               for d in DCUS])

    sc.comment("auth.users: GoTrue inserts the user, handle_new_user creates its account; the\n"
               "-- accounts sequence is set before each insert so the account gets a known id")
    users = [a for a in ACCOUNTS.values() if a.supabase_id]
    for a in users:
        sc.raw(f"DO $$ BEGIN PERFORM setval(pg_get_serial_sequence('public.accounts', 'id'), "
               f"{a.id}, false); END $$")
        created = a.created_at - timedelta(seconds=1)
        sc.insert("auth.users",
                  ["instance_id", "id", "aud", "role", "email", "encrypted_password",
                   "email_confirmed_at", "phone", "phone_confirmed_at", "raw_app_meta_data",
                   "raw_user_meta_data", "created_at", "updated_at", "last_sign_in_at"],
                  [["00000000-0000-0000-0000-000000000000", a.supabase_id, "authenticated",
                    "authenticated", a.email, "$2a$10$" + uid("pw", a.id).replace("-", "")[:53],
                    created if a.email else None, a.phone, created if a.phone else None,
                    {"provider": a.provider, "providers": [a.provider]},
                    {"full_name": a.full_name}, created, created,
                    at(2026, 10, 14, 8) + timedelta(minutes=a.id) if a.member else None]])
    sc.comment("... then it stores the ACL claims (handle_update_user sets the account's\n"
               "-- organization_id from them)")
    for a in users:
        meta = {"provider": a.provider, "providers": [a.provider], **a.app_meta}
        sc.raw(f"UPDATE auth.users SET raw_app_meta_data = {lit(meta)}::jsonb, "
               f"updated_at = {lit(a.created_at + timedelta(seconds=2))} "
               f"WHERE id = {lit(a.supabase_id)}")
    sc.comment("accounts: what the trigger could not know (a deterministic telegram link token\n"
               "-- replaces its gen_random_uuid()), then the accounts without an auth user")
    for a in users:
        sc.raw(f"UPDATE public.accounts SET created_at = {lit(a.created_at)}, "
               f"telegram_link_token = {lit(uid('telegram', a.id))}, "
               f"telegram_id = {lit(a.telegram_id)}, deleted_at = {lit(naive(a.deleted_at))} "
               f"WHERE id = {a.id}")
    sc.insert("public.accounts",
              ["id", "created_at", "full_name", "email", "phone", "organization_id",
               "deleted_at"],
              [[a.id, a.created_at, a.full_name, a.email, a.phone, a.org_id, naive(a.deleted_at)]
               for a in ACCOUNTS.values() if not a.supabase_id])

    sc.comment("members (rls_organization_id: trigger, from the account) and agents (from grid)")
    sc.insert("public.members",
              ["id", "created_at", "member_type", "account_id", "busy_commissioning_id",
               "subscribed_to_telegram_revenue_notifications", "training_level", "hidden"],
              [[m.id, m.created_at, m.member_type, m.account.id, m.busy_commissioning_id,
                m.subscribed, m.training_level, m.hidden] for m in MEMBERS])
    sc.insert("public.agents", ["id", "created_at", "grid_id", "account_id"],
              [[a.id, a.created_at, a.grid.id, a.account.id] for a in AGENTS.values()])

    sc.comment("customers, connections, meters (rls_organization_id: triggers)")
    sc.insert("public.customers",
              ["id", "created_at", "gender", "total_connection_fee", "total_connection_paid",
               "is_hidden_from_reporting", "lives_primarily_in_the_community", "latitude",
               "longitude", "generator_owned", "grid_id", "account_id"],
              [[c.id, c.created_at, c.gender, c.total_fee, c.connection.paid, c.hidden,
                c.in_community, c.lat, c.lon, c.generator, c.grid.id,
                c.account.id if c.account else None] for c in CUSTOMERS.values()])
    sc.insert("public.connections",
              ["id", "created_at", "document_type", "document_id", "upload_uuid",
               "external_system", "paid", "currency", "women_impacted", "is_lifeline",
               "is_public", "is_commercial", "is_residential", "is_building_wired",
               "is_using_led_bulbs", "customer_id"],
              [[c.id, c.created_at, c.document_type, c.document_id, c.upload_uuid, "EPICOLLECT",
                c.paid, c.currency, c.women, c.lifeline, c.public, c.commercial, c.residential,
                c.wired, c.led, c.customer.id] for c in CONNECTIONS])
    meter_rows = []
    for m in METERS.values():
        credit_at = at(2026, 10, 15, 21, 0, 0, 0) if m.credit is not None else None
        meter_rows.append([
            m.id, m.created_at, m.ref, naive(m.deleted_at), m.credit, credit_at,
            m.is_on, m.should_be_on, m.power_limit, m.power_limit_should_be, m.system, m.type,
            m.phase, m.protocol, m.version,
            m.connection.id if m.connection and not m.deleted_at else None,
            m.dcu.id if m.dcu and not m.deleted_at else None,
            m.grid.id if m.grid and not m.deleted_at else None, m.kwh_tariff, m.cabin,
            m.last_seen_at, m.last_sts_token_issued_at, m.voltage,
            m.voltage and m.last_seen_at, m.nickname,
            uid("decoder", m.id).replace("-", "")[:16] if m.system == "CALIN" else None,
            m.last_non_zero_consumption_at, m.id == 702,
        ])
    sc.insert("public.meters",
              ["id", "created_at", "external_reference", "deleted_at", "kwh_credit_available",
               "kwh_credit_available_updated_at", "is_on", "should_be_on", "power_limit",
               "power_limit_should_be", "external_system", "meter_type", "meter_phase",
               "communication_protocol", "version", "connection_id", "dcu_id", "rls_grid_id",
               "kwh_tariff", "is_cabin_meter", "last_seen_at", "last_sts_token_issued_at",
               "voltage", "voltage_updated_at", "nickname", "decoder_key",
               "last_non_zero_consumption_at", "is_starred"], meter_rows)

    sc.comment("wallets: final balances (each the last balance_after of its transactions);\n"
               "-- rls_organization_id: trigger")
    wallet_rows = []
    for w in WALLETS.values():
        ref_id = w.ref.id if w.ref is not None else None
        wallet_rows.append([
            w.id, w.created_at, ref_id if w.kind == "ORGANIZATION" else None,
            ref_id if w.kind == "AGENT" else None, ref_id if w.kind == "CUSTOMER" else None,
            ref_id if w.kind == "METER" else None, ref_id if w.kind == "CONNECTION" else None,
            w.balance, w.balance_updated_at, w.identifier, w.wallet_type])
    sc.insert("public.wallets",
              ["id", "created_at", "organization_id", "agent_id", "customer_id", "meter_id",
               "connection_id", "balance", "balance_updated_at", "identifier", "wallet_type"],
              wallet_rows)

    sc.comment("meter credit transfers (legacy-only; rls_organization_id: trigger)")
    sc.insert("public.meter_credit_transfers",
              ["id", "created_at", "amount", "meter_credit_transfer_status",
               "sender_meter_set_to_amount", "currency", "sender_meter_id", "receiver_meter_id",
               "author_id"],
              [[t.id, trunc_ms(t.created_at), t.amount, "SUCCESSFUL", t.set_to, t.currency,
                t.sender.id, t.receiver.id, t.author.id] for t in MCTS])

    sc.comment("orders (no trigger: meta_* and rls_organization_id as the legacy order meta sets\n"
               "-- them), then their transactions (rls_organization_id: trigger, from the order)")
    order_cols = ["id", "created_at", "updated_at", "amount", "order_status", "lock_session",
                  "external_reference", "currency", "external_system", "tariff_type", "tariff",
                  "payment_method", "payment_channel", "author_id", "meter_credit_transfer_id",
                  "sender_wallet_id", "receiver_wallet_id"]
    meta_cols = ["historical_grid_id", "meta_author_type", "meta_author_name", "meta_author_id",
                 "meta_order_type", "meta_sender_id", "meta_sender_name",
                 "meta_sender_name_part_2", "meta_sender_type", "meta_receiver_name",
                 "meta_receiver_name_part_2", "meta_receiver_id", "meta_receiver_id_part_2",
                 "meta_receiver_type", "meta_is_hidden_from_reporting", "rls_organization_id"]
    sc.insert("public.orders", order_cols + meta_cols,
              [[o.id, o.created_at, o.updated_at, o.amount, o.status, o.lock_session,
                o.external_reference, o.currency, o.external_system, o.tariff_type, o.tariff,
                o.method, o.channel, o.author.id if o.author else None,
                o.mct.id if o.mct else None, o.sender.id, o.receiver.id]
               + [o.meta.get(c) for c in meta_cols] for o in ORDERS])
    sc.insert("public.transactions",
              ["id", "created_at", "amount", "transaction_status", "balance_before",
               "balance_after", "wallet_id", "order_id"], txs)

    sc.comment("meter interactions of the latest completed energy top-ups (legacy-only)")
    mi_rows = []
    latest = [o for o in ORDERS if o.status == "COMPLETED" and o.receiver.kind == "METER"
              and o.processed_at >= at(2026, 10, 12)]
    for i, o in enumerate(latest):
        kwh = math.ceil(abs(o.amount) / o.tariff * 10) / 10
        created = o.processed_at + timedelta(milliseconds=420)
        mi_rows.append([90001 + i, created, created + timedelta(seconds=rng.randrange(5, 90)),
                        o.receiver.ref.id, f"{rng.randrange(10**19, 10**20)}", o.id, kwh,
                        "TOP_UP", "SUCCESSFUL" if i % 9 else "FAILED"])
    sc.insert("public.meter_interactions",
              ["id", "created_at", "updated_at", "meter_id", "token", "order_id",
               "transactive_kwh", "meter_interaction_type", "meter_interaction_status"], mi_rows)

    sc.comment("api keys: plain text, as the legacy keeps them")
    sc.insert("public.api_keys", ["id", "created_at", "is_locked", "key", "account_id"],
              [[kid, at(2026, 3, 1, 12) + timedelta(days=9 * (kid - 10), minutes=kid), locked,
                key, account] for kid, (key, account, locked) in ds.API_KEYS.items()])

    sc.comment("audits, notes, issues (legacy-only)")
    audits = []
    for i, m in enumerate(MEMBERS[:8]):
        a = m.account
        audits.append([7001 + i, m.created_at + timedelta(seconds=1),
                       f"Adaeze Okafor invited a new member {a.full_name} ({a.email}) with "
                       f"{m.member_type} role", 301, a.org_id, m.id, None, None, None])
    for i, ag in enumerate(AGENTS.values()):
        audits.append([7101 + i, ag.created_at + timedelta(seconds=2),
                       f"Tunde Bakare created a new agent {ag.account.full_name}", 302,
                       ag.grid.org.id, None, ag.id, ag.grid.id, None])
    for i, c in enumerate(list(CUSTOMERS.values())[:6]):
        audits.append([7201 + i, c.created_at + timedelta(seconds=5),
                       f"Emeka Nwosu created a new customer "
                       f"{c.account.full_name if c.account else ''}", 304, c.grid.org.id, None,
                       None, c.grid.id, c.id])
    sc.insert("public.audits",
              ["id", "created_at", "message", "author_id", "organization_id", "member_id",
               "agent_id", "grid_id", "customer_id"], audits)
    notes = [[8001, at(2026, 9, 3, 11, 0, 0, 0), "Customer asked for a second socket.", 501,
              None, 304],
             [8002, at(2026, 9, 16, 9, 30, 0, 0), "Old meter 47000081231 replaced (tamper).",
              512, ds.DELETED_METER_ID, 311],
             [8003, at(2026, 9, 27, 11, 10, 0, 0), "Customer moved away; account closed.", 514,
              None, 311],
             [8004, at(2026, 10, 2, 14, 5, 0, 0), "Test customer: refund of the fee, ignore.",
              507, None, 303],
             [8005, at(2026, 10, 9, 17, 45, 0, 0), "Meter reads no consumption since Oct 6.",
              523, None, 312],
             [8006, at(2026, 10, 11, 8, 0, 0, 0), "Ọjà closed; meter off — customer told.", 531,
              None, 313]]
    sc.insert("public.notes", ["id", "created_at", "message", "customer_id", "meter_id",
                               "author_id"], notes)
    issues = [[9001, at(2026, 10, 5, 6, 0, 0, 0), "NO_CREDIT", "OPEN", "JIRA", 712],
              [9002, at(2026, 10, 6, 6, 0, 0, 0), "NO_CONSUMPTION", "OPEN", "JIRA", 723],
              [9003, at(2026, 10, 11, 4, 20, 0, 0), "NO_COMMUNICATION", "OPEN", "JIRA", 713],
              [9004, at(2026, 9, 12, 7, 0, 0, 0), "TAMPER", "CLOSED", "JIRA",
               ds.DELETED_METER_ID],
              [9005, at(2026, 10, 8, 12, 0, 0, 0), "POWER_LIMIT_BREACHED", "OVERRIDDEN", "JIRA",
               705]]
    sc.insert("public.issues", ["id", "created_at", "issue_type", "issue_status",
                                "external_system", "meter_id"], issues)

    sc.comment("sequences past every id inserted")
    sc.raw(serial_setval(SEQUENCED))
    return sc


# -- time-series -------------------------------------------------------------------------------

SNAP_COLS = ["created_at", "meter_id", "meter_type", "meter_external_reference",
             "meter_external_system", "meter_phase", "customer_full_name", "customer_id",
             "dcu_id", "dcu_external_reference", "dcu_external_system", "grid_id",
             "organization_id", "grid_name", "organization_name", "consumption_kwh",
             "power_limit_kw", "power_limit_kw_should_be", "is_fs_consumption",
             "is_hps_consumption", "is_on", "should_be_on", "connection_id",
             "is_hidden_from_reporting", "is_cabin_meter", "counter_kwh", "kwh_credit_available"]


def hourly_kwh(m: Meter, local_hour: int) -> float:
    if m.type == "HPS" and not m.cabin:
        base = {0: 0.02, 1: 0.01, 2: 0.01, 3: 0.01, 4: 0.01, 5: 0.03, 6: 0.06, 7: 0.05}.get(
            local_hour, 0.04 if local_hour < 18 else 0.15 if local_hour < 23 else 0.05)
        v = base * rng.uniform(0.0, 1.6)
        return round(min(v, 0.2), 2)
    base = 0.2 if local_hour < 7 or local_hour > 21 else 1.1
    return round(base * rng.uniform(0.0, 1.8), 2)


def snapshot_rows() -> list[list[Any]]:
    rows: list[list[Any]] = []
    pl_start, pl_end = ds.POWER_LIMIT_HOURS
    hours = int((pl_end - pl_start).total_seconds() // 3600) + 1
    download_days = [datetime(2026, 10, 1) + timedelta(days=i) for i in range(8)]
    nan_day = (715, datetime(2026, 10, 4))  # a Calin V1 meter whose day came back empty
    zero_day = (723, datetime(2026, 10, 6))  # a Calin V2 meter without a daily report
    for m in METERS.values():
        grid = m.grid
        if grid is None or not grid.synced or m.deleted_at or m.dcu is None:
            continue
        cust = m.connection.customer if m.connection else None
        if m.protocol is None:  # Not('CALIN_LORAWAN') does not match NULL: no rows at all
            continue
        common = {
            "meter_id": m.id, "meter_type": m.type, "meter_external_reference": m.ref,
            "meter_external_system": m.system, "meter_phase": m.phase,
            "customer_full_name": cust.account.full_name if cust and cust.account else None,
            "customer_id": cust.id if cust else None, "dcu_id": m.dcu.id,
            "dcu_external_reference": m.dcu.ref, "dcu_external_system": m.dcu.system,
            "grid_id": grid.id, "organization_id": grid.org.id, "grid_name": grid.name,
            "organization_name": grid.org.name,
            "connection_id": m.connection.id if m.connection else None,
            "is_cabin_meter": m.cabin,
        }
        offset = 3 if grid.timezone == "Africa/Nairobi" else 1
        if m.protocol == "CALIN_LORAWAN":
            rows.extend(lorawan_rows(m, cust, common, pl_start, hours, offset))
            continue
        by_time: dict[datetime, dict[str, Any]] = {}
        for h in range(hours):
            t = pl_start + timedelta(hours=h)
            local = (t.hour + offset) % 24
            if grid.dual:
                plk = 0.0 if m.type == "FS" else 0.2
                fs_on = 6 <= local < 19
                should = 0.2 if m.type == "HPS" else (0.0 if fs_on else 0.2)
            else:
                plk = (m.power_limit or 0) / 1000
                should = (m.power_limit_should_be or 0) / 1000
            is_on = m.is_on
            if m.id == 712 and datetime(2026, 10, 5, 6) <= t < datetime(2026, 10, 6, 18):
                is_on = False  # ran out of credit
            by_time[t] = {**common, "created_at": t, "power_limit_kw": plk,
                          "power_limit_kw_should_be": should, "is_on": is_on,
                          "should_be_on": m.should_be_on,
                          "is_hidden_from_reporting": cust.hidden if cust else False}
        # The nightly Calin download: 24 local hours of each day, merged into those rows.
        for day in download_days:
            for hour in range(24):
                t = day + timedelta(hours=hour - offset)
                if m.id == nan_day[0] and day == nan_day[1]:
                    kwh = math.nan
                elif m.id == zero_day[0] and day == zero_day[1]:
                    kwh = 0.0
                elif m.id == 702 and day == datetime(2026, 10, 2) and hour == 14:
                    kwh = math.nan
                else:
                    kwh = hourly_kwh(m, hour)
                row = by_time.get(t)
                if row is not None and t.hour == 0 and t.minute == 0:
                    # The row found as "preexisting" (only midnight UTC is looked up): its flags
                    # are set from the new reading, the reading itself is written back as NULL.
                    if row["power_limit_kw"] == 0.2:
                        row.update(is_hps_consumption=True, is_fs_consumption=None)
                    elif kwh >= row["power_limit_kw"]:
                        row.update(is_hps_consumption=None, is_fs_consumption=True)
                    else:
                        row.update(is_hps_consumption=True, is_fs_consumption=True)
                    row["consumption_kwh"] = None
                    continue
                flags = ({"is_hps_consumption": None, "is_fs_consumption": True} if kwh >= 0
                         else {"is_hps_consumption": True, "is_fs_consumption": True})
                if row is None:  # no power-limit row for that hour: the reading alone
                    row = by_time[t] = {**common, "created_at": t, "power_limit_kw": None,
                                        "power_limit_kw_should_be": None, "is_on": None,
                                        "should_be_on": None,
                                        "is_hidden_from_reporting": cust.hidden if cust else False}
                row.update(consumption_kwh=kwh, **flags)
                if kwh and kwh > 0:
                    m.last_non_zero_consumption_at = datetime(t.year, t.month, t.day, t.hour,
                                                              tzinfo=UTC)
        for t in sorted(by_time):
            r = by_time[t]
            if m.cabin:  # as the older writer recorded the cabin meter: no customer
                r.update(customer_full_name=None, customer_id=None, connection_id=None)
            rows.append([r.get(c) for c in SNAP_COLS])
    return rows


def lorawan_rows(m: Meter, cust: Customer, common: dict[str, Any], start: datetime, hours: int,
                 offset: int) -> list[list[Any]]:
    rows = []
    counter = round(rng.uniform(150.0, 900.0), 2)
    credit = round(rng.uniform(5.0, 60.0), 2)
    prev: float | None = None
    hidden = cust.hidden or cust.grid.hidden
    for h in range(hours):
        if m.id == 725 and 100 <= h < 106:  # six hours without uplink
            continue
        t = start + timedelta(hours=h, minutes=1 + (m.id * 7 + h) % 8,
                              seconds=(m.id * 13 + h * 31) % 60,
                              milliseconds=(m.id * 101 + h * 37) % 1000)
        local = (t.hour + offset) % 24
        step = hourly_kwh(m, local)
        counter = round(counter + step, 2)
        credit = max(0.0, round(credit - step, 2))
        consumption = None if prev is None else counter - prev
        prev = f32(counter)
        limit = m.power_limit
        if limit == 200:
            flags = (True, None)
        elif consumption is not None and consumption >= (limit or 0):
            flags = (None, True)
        else:
            flags = (True, True)
        rows.append([{**common, "created_at": t, "consumption_kwh": consumption,
                      "counter_kwh": counter, "kwh_credit_available": credit,
                      "power_limit_kw": (limit or 0) / 1000,
                      "power_limit_kw_should_be": (m.power_limit_should_be or 0) / 1000,
                      "is_hps_consumption": flags[0], "is_fs_consumption": flags[1],
                      "is_on": m.is_on, "should_be_on": m.should_be_on,
                      "is_hidden_from_reporting": hidden}.get(c) for c in SNAP_COLS])
    return rows


def order_snapshot_rows() -> list[list[Any]]:
    rows = []
    grid_by_id = GRIDS
    for o in ORDERS:
        if o.created_at >= at(2026, 10, 5) or o.id % 3 == 0:
            continue
        meta = o.meta
        gid = meta.get("historical_grid_id")
        oid = meta.get("rls_organization_id")

        def subtype(w: Wallet) -> str | None:
            return w.ref.type if w.kind == "METER" else None

        sender_hidden = receiver_hidden = meta.get("meta_is_hidden_from_reporting")
        if o.sender.kind == "BANKING_SYSTEM":
            sender_hidden = False
        rows.append([
            o.id, o.amount, naive(o.created_at), o.currency, o.sender.id, o.receiver.id,
            meta.get("meta_sender_type"), meta.get("meta_receiver_type"),
            meta.get("meta_sender_name"), meta.get("meta_receiver_name"), o.status,
            o.external_reference, o.author.id if o.author else None,
            meta.get("meta_author_name"), o.method, o.channel, o.tariff_type, o.tariff,
            subtype(o.sender), subtype(o.receiver), grid_by_id[gid].name if gid else None, gid,
            ORGS[oid].name if oid else None, oid, sender_hidden, receiver_hidden,
            meta.get("meta_is_hidden_from_reporting")])
    return rows


def business_rows(snapshots: list[list[Any]]) -> list[list[Any]]:
    idx = {c: i for i, c in enumerate(SNAP_COLS)}
    consumption: dict[tuple[int, datetime, str], float] = defaultdict(float)
    for r in snapshots:
        kwh = r[idx["consumption_kwh"]]
        if kwh is None or math.isnan(kwh) or r[idx["is_hidden_from_reporting"]]:
            continue
        t = r[idx["created_at"]]
        day = datetime(t.year, t.month, t.day)
        consumption[(r[idx["grid_id"]], day, r[idx["meter_type"]])] += kwh
    revenue: dict[tuple[int, datetime, str], float] = defaultdict(float)
    for o in ORDERS:
        if o.status != "COMPLETED" or o.meta.get("meta_is_hidden_from_reporting") is not False:
            continue
        kind = o.meta.get("meta_order_type")
        if kind not in ("ENERGY_TOPUP", "CONNECTION_PAYMENT"):
            continue
        t = naive(o.created_at)
        revenue[(o.meta["historical_grid_id"], datetime(t.year, t.month, t.day), kind)] += \
            o.amount
    rows = []
    first, last = ds.BUSINESS_DAYS
    days = (last - first).days + 1
    for gid in ds.VISIBLE_GRID_IDS:
        g = GRIDS[gid]
        custs = [c for c in CUSTOMERS.values() if c.grid is g and not c.hidden]
        conns = [c.connection for c in custs]
        meters = [m for m in METERS.values() if m.connection in conns and not m.deleted_at]
        hps = sum(m.type == "HPS" for m in meters)
        fs = sum(m.type == "FS" for m in meters)
        for d in range(days):
            day = first + timedelta(days=d)
            month_days = 30 if day.month == 9 else 31
            cons = [consumption.get((gid, day, t)) for t in ("HPS", "FS")]
            have = any(v is not None for v in cons)
            issues = 1 if gid == 3 and day >= datetime(2026, 10, 5) else 0
            rows.append([
                day, gid, g.name, g.org.id, g.org.name,
                round(revenue.get((gid, day, "ENERGY_TOPUP"), 0.0), 2), g.kwp, g.kwh,
                g.monthly_rental, sum(c.residential for c in conns),
                sum(c.commercial for c in conns), sum(c.public for c in conns), len(conns),
                sum(c.women for c in conns), fs, hps, fs + hps, len(custs), g.fs, g.hps,
                round(g.monthly_rental / month_days, 2), 0, 0, issues, issues,
                None, round(cons[1], 4) if cons[1] is not None else None,
                round(cons[0], 4) if cons[0] is not None else None,
                round(sum(v or 0.0 for v in cons), 4) if have else None, None, None, None, None,
                round(revenue.get((gid, day, "CONNECTION_PAYMENT"), 0.0), 2), g.fees[1],
                g.fees[0], g.fees[2], 0, 0, 0, 0, 0, 0, 0,
                sum(bool(c.lifeline) for c in conns),
                sum(m.phase == "THREE_PHASE" for m in meters),
                sum(m.phase == "SINGLE_PHASE" for m in meters)])
    return rows


BUSINESS_COLS = ["created_at", "grid_id", "grid_name", "organization_id", "organization_name",
                 "energy_topup_revenue", "kwp", "kwh", "monthly_rental",
                 "residential_connection_count", "commercial_connection_count",
                 "public_connection_count", "total_connection_count", "women_impacted_count",
                 "fs_meter_count", "hps_meter_count", "total_meter_count", "customer_count",
                 "fs_tariff", "hps_tariff", "daily_rental", "no_communication_issue_count",
                 "no_consumption_issue_count", "no_credit_issue_count", "total_issue_count",
                 "cuf", "fs_consumption_kwh", "hps_consumption_kwh", "total_consumption_kwh",
                 "total_estimated_mppt_production_kwh", "total_mppt_production_kwh",
                 "battery_modules_on_count", "battery_modules_off_count",
                 "connection_fee_revenue", "fs_single_phase_connection_fee",
                 "hps_single_phase_connection_fee", "fs_three_phase_connection_fee",
                 "not_activated_issue_count", "tamper_issue_count",
                 "power_limit_breached_issue_count", "over_voltage_issue_count",
                 "low_voltage_issue_count", "unexpected_power_limit_issue_count",
                 "unexpected_meter_status_issue_count", "lifeline_connection_count",
                 "three_phase_meter_count", "single_phase_meter_count"]
ORDER_SNAPSHOT_COLS = ["order_id", "amount", "created_at", "currency", "sender_wallet_id",
                       "receiver_wallet_id", "sender_type", "receiver_type", "sender_name",
                       "receiver_name", "status", "external_reference", "created_by_id",
                       "created_by_name", "payment_method", "payment_channel", "tariff_type",
                       "tariff", "sender_subtype", "receiver_subtype", "grid_name", "grid_id",
                       "organization_name", "organization_id",
                       "sender_is_hidden_from_reporting", "receiver_is_hidden_from_reporting",
                       "is_hidden_from_reporting"]


def timeseries_sql(snapshots: list[list[Any]]) -> Script:
    sc = Script(
        "-- Legacy-shaped test data for the legacy time-series database.\n"
        "-- GENERATED by tests/legacy/make_data.py: do not edit, regenerate.\n"
        "-- Load: build-legacy-ts.sh URL [--plain --recreate] --data tests/legacy/data/"
        "timeseries.sql\n"
        "-- Plain INSERTs: loads the same on TimescaleDB and on plain PostgreSQL. Timestamps\n"
        "-- are UTC (timestamp without time zone), as the legacy writes them.\n"
        "SET client_encoding = 'UTF8';\nSET client_min_messages = warning;", sep=",")
    sc.comment("meter_snapshot_1_h: power-limit rows, Calin consumption merged into them, LoRaWAN"
               "\n-- read reports")
    sc.insert("meter_snapshot_1_h", SNAP_COLS, snapshots, chunk=500)
    sc.comment("order_snapshots")
    sc.insert("order_snapshots", ORDER_SNAPSHOT_COLS, order_snapshot_rows())
    sc.comment("grid_business_snapshot_1_d: one row per visible grid per day")
    sc.insert("grid_business_snapshot_1_d", BUSINESS_COLS, business_rows(snapshots))
    sc.comment("device_data_sink (legacy-only, no primary key)")
    sink = []
    for i in range(12):
        m = METERS[ds.LORAWAN_METER_IDS[i % 4]]
        t = datetime(2026, 10, 10, 12, 0) + timedelta(minutes=5 * i, seconds=i * 7)
        sink.append([t + timedelta(milliseconds=850), t, 880000 + m.id,
                     {"counter_kwh": round(400.0 + i * 0.37, 2), "voltage": 228.5 + i % 3,
                      "relay": "ON", "meter": m.ref},
                     {"f_port": 2, "gateway": "0016C001FF1A0B77", "rssi": -97 - i,
                      "snr": 7.5 - i / 4}])
    sink.append(sink[-1][:])  # the sink keeps duplicates: it has no key
    sc.insert("device_data_sink", ["created_at", "timestamp", "device_id", "data", "meta"], sink)
    sc.comment("dcu_snapshot_1_min (legacy-only)")
    dcu_rows = []
    for d in DCUS:
        if d.grid is None or d.grid.deleted_at:
            continue
        for minute in range(10):
            t = datetime(2026, 10, 10, 12, minute)
            online = d.is_online or minute < 4
            dcu_rows.append([t, d.id, d.ref, d.system, online, d.grid.id, d.grid.name,
                             d.grid.org.id, d.grid.org.name])
    sc.insert("dcu_snapshot_1_min",
              ["created_at", "dcu_id", "dcu_external_reference", "dcu_external_system",
               "is_online", "grid_id", "grid_name", "organization_id", "organization_name"],
              dcu_rows)
    return sc


# -- consistency with dataset.py ---------------------------------------------------------------


def facts(tx: Script, ts: Script, snapshots: list[list[Any]]) -> dict[str, Any]:
    idx = {c: i for i, c in enumerate(SNAP_COLS)}
    reportable = [r for r in snapshots if not r[idx["is_hidden_from_reporting"]]
                  and r[idx["consumption_kwh"]] is not None
                  and not math.isnan(r[idx["consumption_kwh"]])]
    by_site = Counter(r[idx["grid_name"]] for r in reportable)
    times = [r[idx["created_at"]] for r in snapshots]
    counts = dict(tx.counts)
    counts["public.accounts"] = len(ACCOUNTS)
    return {
        "ROW_COUNTS": {k.removeprefix("public."): v for k, v in sorted(counts.items())},
        "TS_ROW_COUNTS": dict(sorted(ts.counts.items())),
        "REPORTABLE_SNAPSHOT_ROWS": len(reportable),
        "REPORTABLE_SNAPSHOT_ROWS_BY_SITE": dict(sorted(by_site.items())),
        "SNAPSHOT_FIRST_AT": min(times),
        "SNAPSHOT_LAST_AT": max(times),
        "SITE_NAMES": tuple(sorted({r[idx["grid_name"]] for r in snapshots})),
    }


def check_against_dataset(f: dict[str, Any]) -> list[str]:
    problems = []
    for name, value in f.items():
        want = getattr(ds, name)
        if name == "SITE_NAMES":
            want = tuple(sorted(want))
        if name in ("ROW_COUNTS", "TS_ROW_COUNTS"):
            want = dict(sorted(want.items()))
        if want != value:
            problems.append(f"dataset.{name} = {want!r}\n    generated: {value!r}")
    m = METERS
    checks = {
        "METER_WITH_WALLET_ID": m[ds.METER_WITH_WALLET_ID].has_wallet
        and m[ds.METER_WITH_WALLET_ID].kwh_tariff is None,
        "METER_WITH_WALLET_AND_TARIFF_ID": m[ds.METER_WITH_WALLET_AND_TARIFF_ID].has_wallet
        and m[ds.METER_WITH_WALLET_AND_TARIFF_ID].kwh_tariff is not None,
        "METER_WITHOUT_WALLET_ID": not m[ds.METER_WITHOUT_WALLET_ID].has_wallet
        and m[ds.METER_WITHOUT_WALLET_ID].connection is not None,
        "METER_WITHOUT_CONNECTION_ID": m[ds.METER_WITHOUT_CONNECTION_ID].connection is None
        and not m[ds.METER_WITHOUT_CONNECTION_ID].cabin,
        "CABIN_METER_ID": m[ds.CABIN_METER_ID].cabin,
        "DELETED_METER_ID": m[ds.DELETED_METER_ID].deleted_at is not None,
        "METER_NULL_CREDIT_ID": m[ds.METER_NULL_CREDIT_ID].credit is None,
        "METER_FRACTIONAL_CREDIT_ID": m[ds.METER_FRACTIONAL_CREDIT_ID].credit is not None
        and len(repr(m[ds.METER_FRACTIONAL_CREDIT_ID].credit)) > 8,
        "METERS_WITH_TARIFF": tuple(sorted(i for i, x in m.items() if x.kwh_tariff is not None))
        == ds.METERS_WITH_TARIFF,
        "LORAWAN_METER_IDS": tuple(i for i, x in m.items() if x.protocol == "CALIN_LORAWAN")
        == ds.LORAWAN_METER_IDS,
        "ACREL_METER_IDS": tuple(i for i, x in m.items() if x.system == "ACREL")
        == ds.ACREL_METER_IDS,
        "CUSTOMER_IDS": tuple(CUSTOMERS) == ds.CUSTOMER_IDS,
        "HIDDEN_CUSTOMER_IDS": tuple(i for i, c in CUSTOMERS.items() if c.hidden)
        == ds.HIDDEN_CUSTOMER_IDS,
        "CUSTOMERS_WITHOUT_ACCOUNT": tuple(i for i, c in CUSTOMERS.items() if c.account is None)
        == ds.CUSTOMERS_WITHOUT_ACCOUNT,
        "CUSTOMERS_WITH_DELETED_ACCOUNT": tuple(
            i for i, c in CUSTOMERS.items() if c.account and c.account.deleted_at)
        == ds.CUSTOMERS_WITH_DELETED_ACCOUNT,
        "DELETED_ACCOUNT_IDS": tuple(sorted(i for i, a in ACCOUNTS.items() if a.deleted_at))
        == tuple(sorted(ds.DELETED_ACCOUNT_IDS)),
        "auth users": sum(1 for a in ACCOUNTS.values() if a.supabase_id)
        == ds.ROW_COUNTS["auth.users"],
    }
    problems += [f"dataset.{k} does not match the generated data" for k, ok in checks.items()
                 if not ok]
    return problems


def coverage_problems(txs: list[list[Any]]) -> list[str]:
    """What the adoption tests need to be there, checked on the generated data."""
    p = []
    energy = Counter(o.status for o in ORDERS if o.meta.get("meta_order_type") == "ENERGY_TOPUP")
    for s in ("INITIALISED", "PENDING", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT",
              "IGNORED"):
        if energy[s] < 4:
            p.append(f"ENERGY_TOPUP {s}: {energy[s]}")
    types = Counter(o.meta.get("meta_order_type") for o in ORDERS)
    for t in ("ENERGY_TOPUP", "CONNECTION_PAYMENT", "CONNECTION_REFUND", "AGENT_WITHDRAWAL",
              "AGENT_TOPUP", "ORGANIZATION_TOPUP", "ORGANIZATION_WITHDRAWAL", "CUSTOMER_TOPUP"):
        if types[t] < 1:
            p.append(f"no {t}")
    if len(ORDERS) < 300:
        p.append(f"{len(ORDERS)} orders")
    failed_pairs = {t[7] for t in txs if t[3] == "FAILED"}
    if not any(o.id in failed_pairs and o.meta.get("meta_order_type") == "ENERGY_TOPUP"
               for o in ORDERS):
        p.append("no FAILED transaction pair for an energy top-up")
    if not any(len(repr(w.balance)) >= 17 for w in WALLETS.values()):
        p.append("no wallet balance with float noise")
    if banking().balance >= 0:
        p.append("the banking wallet is not negative")
    p += [f"order {o.id} has amount 0" for o in ORDERS if o.amount == 0]
    return p


def main(argv: list[str]) -> int:
    out = OUT
    if argv[:1] == ["--out"] and len(argv) == 2:
        out = Path(argv[1])
    elif argv:
        print("usage: make_data.py [--out DIR]", file=sys.stderr)
        return 2
    build_organizations()
    build_grids()
    build_dcus()
    build_staff_and_agents()
    build_customers_and_meters()
    build_wallets()
    build_orders()
    txs = process_orders()
    snapshots = snapshot_rows()  # before the meters are written: last_non_zero_consumption_at
    tx = transactional_sql(txs)
    ts = timeseries_sql(snapshots)
    f = facts(tx, ts, snapshots)
    problems = check_against_dataset(f) + coverage_problems(txs)
    if problems:
        print("make_data: refusing to write, the data and dataset.py disagree:", file=sys.stderr)
        for line in problems:
            print("  " + line, file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    for name, script in (("transactional.sql", tx), ("timeseries.sql", ts)):
        (out / name).write_text(script.text(), encoding="utf-8")
        size = (out / name).stat().st_size
        print(f"wrote {out / name} ({size / 1e6:.2f} MB)")
    for table, n in {**f["ROW_COUNTS"], **f["TS_ROW_COUNTS"]}.items():
        print(f"  {table}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

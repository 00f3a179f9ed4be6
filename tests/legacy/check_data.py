#!/usr/bin/env python3
"""Checks two loaded legacy databases against the coverage the adoption tests rely on.

    .venv/bin/python tests/legacy/check_data.py TRANSACTIONAL_URL TIMESERIES_URL [--regenerate]

TRANSACTIONAL_URL: a database built by build-legacy-db.sh with data/transactional.sql;
TIMESERIES_URL: one built by build-legacy-ts.sh with data/timeseries.sql. Read only. With
--regenerate it also runs make_data.py into a temporary directory and compares the files with
data/ byte for byte. Prints one line per check; exits 1 naming every check that fails.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

try:
    from tests.legacy import dataset as ds
except ImportError:  # run as a script
    import dataset as ds  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
FAILED: list[str] = []


def check(name: str, ok: Any, detail: Any = "") -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if not ok and detail else ""))
    if not ok:
        FAILED.append(name)


class Db:
    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute("set default_transaction_read_only = on")

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params or None).fetchall()

    def one(self, sql: str, *params: Any) -> Any:
        row = self.conn.execute(sql, params or None).fetchone()
        return row[0] if row and len(row) == 1 else row

    def count(self, table: str, where: str = "true", *params: Any) -> int:
        return self.one(f"select count(*) from {table} where {where}", *params)


def check_counts(db: Db, counts: dict[str, int], schema: str) -> None:
    for table, want in counts.items():
        name = table if "." in table else f"{schema}.{table}"
        got = db.count(name)
        check(f"row count {table} = {want}", got == want, f"{got} rows")


def transactional(db: Db) -> None:
    check_counts(db, ds.ROW_COUNTS, "public")

    # organizations
    orgs = {r[0]: r[1:] for r in db.rows(
        "select id, name, organization_type::text, deleted_at is not null from organizations")}
    check("organizations as dataset.ORGANIZATIONS",
          {k: v[:2] for k, v in orgs.items()} == ds.ORGANIZATIONS, orgs)
    check("operator org 2 is 'NXT Grid', SOLAR_DEVELOPER",
          orgs.get(2) == ("NXT Grid", "SOLAR_DEVELOPER", False))
    check("one LENDER, one DATA_AGGREGATOR",
          orgs[ds.LENDER_ORG_ID][1] == "LENDER"
          and orgs[ds.AGGREGATOR_ORG_ID][1] == "DATA_AGGREGATOR")
    check("two more SOLAR_DEVELOPERs",
          all(orgs[i][1] == "SOLAR_DEVELOPER" and not orgs[i][2] for i in ds.DEVELOPER_ORG_IDS))
    check("one deleted organization", [k for k, v in orgs.items() if v[2]] == [ds.DELETED_ORG_ID])

    # auth.users and the accounts their triggers made
    users = db.rows("""
        select u.id::text, u.raw_app_meta_data, u.raw_user_meta_data ->> 'full_name', u.email,
               u.phone, a.id, a.organization_id, a.full_name, a.email, a.phone,
               a.telegram_link_token
          from auth.users u left join accounts a on a.supabase_id = u.id""")
    check("every auth user has its account (handle_new_user)", all(u[5] for u in users))
    meta_keys = {"organization_id", "organization_type", "account_type", "account_id"}
    check("raw_app_meta_data carries organization_id/_type, account_type, account_id",
          all(meta_keys <= set(u[1]) for u in users))
    check("accounts.organization_id from raw_app_meta_data (handle_update_user)",
          all(u[6] == u[1]["organization_id"] for u in users))
    check("app_meta account_id is the account", all(u[5] == u[1]["account_id"] for u in users))
    check("app_meta organization_type is the organization's",
          all(orgs[u[1]["organization_id"]][1] == u[1]["organization_type"] for u in users))
    check("account name/email/phone copied from the user",
          all((u[7], u[8], u[9]) == (u[2], u[3], u[4]) for u in users))
    check("telegram_link_token set on every user's account", all(u[10] for u in users))
    types = {u[1]["account_type"] for u in users}
    check("users of account types MEMBER, AGENT, CUSTOMER",
          types == {"MEMBER", "AGENT", "CUSTOMER"}, types)
    staff_orgs = {u[1]["organization_id"] for u in users if u[1]["account_type"] == "MEMBER"}
    check("staff users of several organizations", len(staff_orgs) >= 5, staff_orgs)
    by_user = {u[0]: u for u in users}
    for aid, (sup, org, _mid, mtype) in ds.STAFF.items():
        if sup is None:
            continue
        u = by_user.get(sup)
        check(f"staff user {sup[:8]} -> account {aid}, org {org}",
              u is not None and u[5] == aid and u[6] == org
              and u[1].get("member_type") == mtype)
    for aid, (sup, _agent_id, gid) in ds.AGENTS.items():
        u = by_user.get(sup)
        check(f"agent user {sup[:8]} -> account {aid}",
              u is not None and u[5] == aid and u[1].get("grid_id") == gid)

    # accounts
    check("accounts without an auth user", db.count("accounts", "supabase_id is null") >= 10)
    deleted = tuple(r[0] for r in db.rows(
        "select id from accounts where deleted_at is not null order by id"))
    check("deleted accounts as dataset.DELETED_ACCOUNT_IDS",
          deleted == tuple(sorted(ds.DELETED_ACCOUNT_IDS)), deleted)
    check("account 310 (API only) has no auth user",
          db.one("select supabase_id is null and organization_id = 3 from accounts "
                 "where id = %s", ds.API_ONLY_ACCOUNT_ID))
    kinds = db.one("""select count(distinct c.account_id), count(distinct ag.account_id),
                             count(distinct m.account_id)
                        from accounts a left join customers c on c.account_id = a.id
                        left join agents ag on ag.account_id = a.id
                        left join members m on m.account_id = a.id""")
    check("accounts of customers, agents and members", all(k > 0 for k in kinds), kinds)

    # members and agents (legacy-only), their triggers
    members = db.rows("select m.id, m.account_id, m.member_type::text, m.rls_organization_id, "
                      "a.organization_id from members m join accounts a on a.id = m.account_id")
    check("members as dataset.STAFF",
          sorted((m[1], m[0], m[2], m[3]) for m in members)
          == sorted((a, s[2], s[3], s[1]) for a, s in ds.STAFF.items()))
    check("members.rls_organization_id from the account (trigger)",
          all(m[3] == m[4] for m in members))
    check("members rows for operator staff",
          sum(1 for m in members if m[3] == ds.OPERATOR_ORG_ID) >= 4)
    agents = db.rows("select ag.id, ag.account_id, ag.grid_id, ag.rls_organization_id, "
                     "g.organization_id from agents ag join grids g on g.id = ag.grid_id")
    check("agents as dataset.AGENTS",
          sorted(a[:3] for a in agents) == sorted((s[1], a, s[2]) for a, s in ds.AGENTS.items()))
    check("agents.rls_organization_id from the grid (trigger)", all(a[3] == a[4] for a in agents))

    # grids
    grids = {r[0]: r[1:] for r in db.rows("""
        select id, name, organization_id, timezone, is_hidden_from_reporting, deleted_at is not
               null, kwh_tariff_essential_service, kwh_tariff_full_service, location_geom is
               not null from grids""")}
    check("grids as dataset.GRIDS", {k: v[0] for k, v in grids.items()} == ds.GRIDS)
    check("grid organizations", {k: v[1] for k, v in grids.items()} == ds.GRID_ORGANIZATION)
    check("visible grids (the legacy default is hidden)",
          tuple(k for k, v in grids.items() if not v[3]) == ds.VISIBLE_GRID_IDS)
    check("hidden grids", tuple(k for k, v in grids.items() if v[3]) == ds.HIDDEN_GRID_IDS)
    check("deleted grids", tuple(k for k, v in grids.items() if v[4]) == ds.DELETED_GRID_IDS)
    check("one grid in Africa/Nairobi, the rest Africa/Lagos",
          [k for k, v in grids.items() if v[2] != "Africa/Lagos"] == [ds.NAIROBI_GRID_ID]
          and grids[ds.NAIROBI_GRID_ID][2] == "Africa/Nairobi")
    check("tariffs > 0 on all grids but one (zero there)",
          [k for k, v in grids.items() if not (v[5] > 0 and v[6] > 0)] == [ds.ZERO_TARIFF_GRID_ID]
          and grids[ds.ZERO_TARIFF_GRID_ID][5:7] == (0.0, 0.0))
    check("grid tariffs as dataset.GRID_TARIFFS",
          {k: v[5:7] for k, v in grids.items()} == ds.GRID_TARIFFS)
    check("grid names in a case a client would not type",
          any(n != n.lower() and n != n.title() for n in ds.SITE_NAMES)
          and all(ds.GRIDS[ds_id] == name for name, ds_id in
                  ((v, k) for k, v in ds.GRIDS.items()) if name in ds.SITE_SPELLINGS.values()))
    check("PostGIS location_geom on some grids (legacy-only column)",
          0 < sum(v[7] for v in grids.values()) < len(grids))
    check("no grid update trigger fired (net.http_request_queue empty)",
          db.count("net.http_request_queue") == 0)

    # dcus
    dcus = db.rows("select d.external_system::text, d.rls_organization_id, g.organization_id, "
                   "d.grid_id from dcus d left join grids g on g.id = d.grid_id")
    systems = {d[0] for d in dcus}
    check("dcus: CALIN and others", "CALIN" in systems and len(systems) >= 3, systems)
    check("dcus.rls_organization_id from the grid (trigger; NULL without grid)",
          all(d[1] == d[2] for d in dcus) and any(d[3] is None and d[1] is None for d in dcus))

    # customers
    custs = {r[0]: r[1:] for r in db.rows("""
        select c.id, c.is_hidden_from_reporting, c.account_id, a.deleted_at is not null,
               c.grid_id, g.is_hidden_from_reporting, g.deleted_at is not null,
               c.rls_organization_id, g.organization_id, c.total_connection_paid
          from customers c join grids g on g.id = c.grid_id
          left join accounts a on a.id = c.account_id""")}
    check("customer ids", tuple(sorted(custs)) == ds.CUSTOMER_IDS)
    check("hidden customers", tuple(k for k, v in custs.items() if v[0])
          == ds.HIDDEN_CUSTOMER_IDS)
    check("customers without account", tuple(k for k, v in custs.items() if v[1] is None)
          == ds.CUSTOMERS_WITHOUT_ACCOUNT)
    check("customers with a deleted account", tuple(k for k, v in custs.items() if v[2])
          == ds.CUSTOMERS_WITH_DELETED_ACCOUNT)
    check("visible customers on visible grids",
          sum(1 for v in custs.values() if not v[0] and not v[4] and not v[5]) >= 20)
    check("customers on hidden grids and on deleted grids",
          any(v[4] for v in custs.values()) and any(v[5] for v in custs.values()))
    check("customers.rls_organization_id from the grid (trigger)",
          all(v[6] == v[7] for v in custs.values()))

    # connections
    conns = db.rows("""select n.paid, n.currency::text, n.is_residential, n.is_commercial,
                              n.is_public, n.women_impacted, n.rls_organization_id,
                              c.rls_organization_id, n.customer_id, c.total_connection_paid
                         from connections n join customers c on c.id = n.customer_id""")
    check("connections: one per customer", len(conns) == len(custs)
          and len({c[8] for c in conns}) == len(custs))
    check("connections paid as doubles, some not round",
          any(c[0] != int(c[0]) for c in conns) and any(c[0] == 0 for c in conns))
    check("connection currencies NGN and USD", {c[1] for c in conns} == {"NGN", "USD"})
    check("residential, commercial and public connections",
          all(any(c[i] for c in conns) for i in (2, 3, 4)))
    check("women_impacted varies", len({c[5] for c in conns}) >= 3)
    check("connections.rls_organization_id from the customer's grid (trigger)",
          all(c[6] == c[7] for c in conns))
    check("customers.total_connection_paid = connections.paid", all(c[0] == c[9] for c in conns))

    # meters
    meters = {r[0]: r[1:] for r in db.rows("""
        select m.id, m.meter_type::text, m.meter_phase::text, m.kwh_tariff, m.kwh_credit_available,
               m.deleted_at is not null, m.connection_id, m.external_system::text,
               m.rls_organization_id, g.organization_id, w.id, m.is_cabin_meter,
               m.communication_protocol::text, m.rls_grid_id, c.grid_id
          from meters m left join connections n on n.id = m.connection_id
          left join customers c on c.id = n.customer_id left join grids g on g.id = c.grid_id
          left join wallets w on w.meter_id = m.id""")}
    check("HPS and FS meters", {v[0] for v in meters.values()} == {"HPS", "FS"})
    check("single and three phase meters",
          {v[1] for v in meters.values()} == {"SINGLE_PHASE", "THREE_PHASE"})
    tariffed = tuple(k for k, v in meters.items() if v[2] is not None)
    check("kwh_tariff set on some meters, NULL on most",
          tariffed == ds.METERS_WITH_TARIFF and len(tariffed) < len(meters) / 2, tariffed)
    credits = [v[3] for v in meters.values()]
    check("kwh_credit_available NULL on some, fractional doubles on others",
          None in credits and any(c is not None and len(repr(c)) > 10 for c in credits)
          and meters[ds.METER_FRACTIONAL_CREDIT_ID][3] == 12.340000000000002
          and meters[ds.METER_NULL_CREDIT_ID][3] is None)
    check("the deleted meter", [k for k, v in meters.items() if v[4]] == [ds.DELETED_METER_ID]
          and meters[ds.DELETED_METER_ID][5] is None and meters[ds.DELETED_METER_ID][9])
    check("meters without connection (cabin, stock, deleted)",
          sorted(k for k, v in meters.items() if v[5] is None)
          == sorted((ds.CABIN_METER_ID, ds.METER_WITHOUT_CONNECTION_ID, ds.DELETED_METER_ID)))
    check("meter without wallet and connection (stock)",
          meters[ds.METER_WITHOUT_CONNECTION_ID][9] is None
          and meters[ds.METER_WITHOUT_CONNECTION_ID][12] is None)
    check("installed meter without wallet", meters[ds.METER_WITHOUT_WALLET_ID][9] is None
          and meters[ds.METER_WITHOUT_WALLET_ID][5] is not None)
    check("meters with wallet (grid tariff / own tariff)",
          meters[ds.METER_WITH_WALLET_ID][9] and meters[ds.METER_WITH_WALLET_ID][2] is None
          and meters[ds.METER_WITH_WALLET_AND_TARIFF_ID][9]
          and meters[ds.METER_WITH_WALLET_AND_TARIFF_ID][2] is not None)
    systems = [v[6] for v in meters.values()]
    check("meters: external_system CALIN mostly", systems.count("CALIN") > len(systems) * 0.8
          and len(set(systems)) >= 3)
    check("meters.rls_organization_id from the connection (trigger; NULL without one)",
          all(v[7] == v[8] for v in meters.values()))
    check("meters.rls_grid_id as the install flow sets it",
          all(v[12] == v[13] for v in meters.values() if v[5] is not None))
    check("cabin meter", meters[ds.CABIN_METER_ID][10])
    check("LoRaWAN and ACREL meters",
          tuple(k for k, v in meters.items() if v[11] == "CALIN_LORAWAN") == ds.LORAWAN_METER_IDS
          and tuple(k for k, v in meters.items() if v[6] == "ACREL") == ds.ACREL_METER_IDS)

    # wallets
    wallets = {r[0]: r[1:] for r in db.rows("""
        select w.id, w.identifier, w.organization_id, w.agent_id, w.customer_id, w.meter_id,
               w.connection_id, w.balance, w.balance::text, w.rls_organization_id, w.lock_session
          from wallets w""")}
    bank = wallets[ds.BANKING_SYSTEM_WALLET_ID]
    check("banking-system wallet 968: identifier, no owner, negative balance",
          bank[0] == ds.BANKING_SYSTEM_IDENTIFIER and bank[1:6] == (None,) * 5 and bank[6] < 0
          and bank[8] is None)
    check("organization wallets (operator's included)",
          {v[1]: k for k, v in wallets.items() if v[1]} == ds.ORGANIZATION_WALLETS)
    check("agent wallets", {v[2]: k for k, v in wallets.items() if v[2]} == ds.AGENT_WALLETS)
    check("customer, meter and connection wallets",
          all(sum(1 for v in wallets.values() if v[i]) >= 5 for i in (3, 4, 5)))
    check("one wallet per meter that can be topped up",
          {v[4] for v in wallets.values() if v[4]}
          == {k for k, v in meters.items() if v[9]})
    check("balances with float noise (e.g. ...0000000002)",
          any(re.search(r"\.\d*(0000000\d|9999999)\d*$", v[7]) for v in wallets.values()))
    check("no wallet locked", all(v[9] is None for v in wallets.values()))
    rls = dict(db.rows("""
        select w.id, coalesce(cg.organization_id, ag.organization_id, ng.organization_id,
                              o.id, mg.organization_id)
          from wallets w
          left join customers c on c.id = w.customer_id left join grids cg on cg.id = c.grid_id
          left join agents a on a.id = w.agent_id left join grids ag on ag.id = a.grid_id
          left join connections n on n.id = w.connection_id
          left join customers nc on nc.id = n.customer_id left join grids ng on ng.id = nc.grid_id
          left join organizations o on o.id = w.organization_id
          left join meters m on m.id = w.meter_id left join connections mn on mn.id =
               m.connection_id left join customers mc on mc.id = mn.customer_id
          left join grids mg on mg.id = mc.grid_id"""))
    check("wallets.rls_organization_id as the trigger derives it",
          all(v[8] == rls[k] for k, v in wallets.items()))

    # orders
    orders = db.rows("""
        select o.id, o.created_at, o.updated_at, o.amount, o.order_status::text,
               o.meta_order_type::text, o.tariff, o.tariff_type::text, o.author_id,
               o.historical_grid_id, o.meta_is_hidden_from_reporting, o.meta_sender_type::text,
               o.meta_sender_name, o.meta_receiver_type::text, o.meta_receiver_name,
               o.meta_receiver_name_part_2, o.meta_receiver_id, o.meta_receiver_id_part_2,
               o.rls_organization_id, o.sender_wallet_id, o.receiver_wallet_id,
               o.meter_credit_transfer_id, o.currency::text
          from orders o order by o.id""")
    check("at least 300 orders", len(orders) >= 300, len(orders))
    all_types = ("ENERGY_TOPUP", "CONNECTION_PAYMENT", "CONNECTION_REFUND", "AGENT_WITHDRAWAL",
                 "AGENT_TOPUP", "ORGANIZATION_TOPUP", "ORGANIZATION_WITHDRAWAL", "CUSTOMER_TOPUP")
    seen = {o[5] for o in orders}
    check("every order_type_enum value", all(t in seen for t in all_types), seen)
    statuses = ("INITIALISED", "PENDING", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT",
                "IGNORED")
    energy = [o for o in orders if o[5] == "ENERGY_TOPUP"]
    per = {s: sum(1 for o in energy if o[4] == s) for s in statuses}
    check("ENERGY_TOPUP in every order_status_enum value, several times",
          all(n >= 4 for n in per.values()), per)
    check("orders of other types in several statuses",
          len({o[4] for o in orders if o[5] != "ENERGY_TOPUP"}) >= 4)
    hidden = {o[10] for o in orders}
    check("meta_is_hidden_from_reporting true, false and NULL", hidden == {True, False, None})
    check("orders without historical_grid_id", sum(1 for o in orders if o[9] is None) >= 5)
    check("orders without any meta (customer without account)",
          any(o[5] is None and o[11] is None and o[13] is None for o in orders))
    check("tariff -1 on every order never completed",
          all(o[6] == -1 for o in orders if o[4] != "COMPLETED"))
    check("amounts as doubles, some not round", any(o[3] != int(o[3]) for o in orders))
    check("author_id on some orders, not all",
          0 < sum(1 for o in orders if o[8]) < len(orders))
    check("updated_at later than created_at", all(o[2] > o[1] for o in orders))
    days = {o[1].date() for o in orders}
    check("created_at spread over the period",
          len(days) >= 40 and min(o[1] for o in orders) >= ds.ORDERS_FROM
          and max(o[1] for o in orders) < ds.ORDERS_TO, len(days))
    check("order ids from dataset.FIRST_ORDER_ID", orders[0][0] == ds.FIRST_ORDER_ID)
    check("currencies NGN, USD and EUR", {o[22] for o in orders} == {"NGN", "USD", "EUR"})

    wallet_owner = wallets
    meter_info = dict((r[0], r[1:]) for r in db.rows("""
        select m.id, m.external_reference, c.id, a.full_name, c.grid_id, g.organization_id,
               m.kwh_tariff, m.meter_type::text, g.kwh_tariff_essential_service,
               g.kwh_tariff_full_service, c.is_hidden_from_reporting or g.is_hidden_from_reporting
          from meters m
          join connections n on n.id = m.connection_id
          join customers c on c.id = n.customer_id join grids g on g.id = c.grid_id
          left join accounts a on a.id = c.account_id"""))
    # (the deleted meter lost its connection: its orders carry the customer it had then)
    bad = []
    for o in energy:
        if o[11] is None:
            continue
        mid = wallet_owner[o[20]][4]
        if mid == ds.DELETED_METER_ID:
            continue
        ref, cid, name, gid, org, mt, mtype, hps, fs, hid = meter_info[mid]
        ok = (o[13] == "METER" and o[14] == ref and o[16] == mid and o[17] == cid
              and o[15] == name and o[9] == gid and o[18] == org
              and o[10] == (hid or o[21] is not None))
        if o[19] == ds.BANKING_SYSTEM_WALLET_ID:
            ok = ok and o[11] == "BANKING_SYSTEM" and o[12] == "Banking system"
        if o[4] == "COMPLETED" and o[21] is None:
            want = mt if mt is not None else hps if mtype == "HPS" else fs
            ok = ok and o[6] == want and o[7] == mtype
        if not ok:
            bad.append(o[0])
    check("energy top-ups: meta_* as the legacy order meta fills them, tariffs", not bad, bad)
    check("completed energy top-ups on hidden grids / for hidden customers are hidden",
          any(o[10] for o in energy if o[4] == "COMPLETED")
          and all(o[10] for o in energy if o[4] == "COMPLETED" and o[11] is not None
                  and wallet_owner[o[20]][4] != ds.DELETED_METER_ID
                  and meter_info[wallet_owner[o[20]][4]][9]))
    banked = [o for o in orders if o[19] == ds.BANKING_SYSTEM_WALLET_ID and o[11]]
    check("public top-ups: meta_sender BANKING_SYSTEM 'Banking system'",
          banked and all(o[11] == "BANKING_SYSTEM" and o[12] == "Banking system" for o in banked))

    # transactions
    txs = db.rows("""select t.id, t.order_id, t.wallet_id, t.amount, t.transaction_status::text,
                            t.balance_before, t.balance_after, t.rls_organization_id,
                            g.organization_id, t.created_at
                       from transactions t join orders o on o.id = t.order_id
                       left join grids g on g.id = o.historical_grid_id order by t.id""")
    by_order: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for t in txs:
        by_order[t[1]].append(t)
    bad = []
    for o in orders:
        pair = by_order.get(o[0], [])
        if o[4] == "COMPLETED":
            ok = (len(pair) == 2 and pair[0][2] == o[20] and pair[0][3] == abs(o[3])
                  and pair[1][2] == o[19] and pair[1][3] == -abs(o[3])
                  and all(t[4] == "SUCCESSFUL" for t in pair))
        elif pair:
            ok = (len(pair) == 2 and o[4] == "FAILED" and all(t[4] == "FAILED" for t in pair)
                  and all(t[5] == t[6] for t in pair))
        else:
            ok = True
        if not ok:
            bad.append(o[0])
    check("two SUCCESSFUL rows per completed order (receiver +, sender -), FAILED pairs "
          "unchanged", not bad, bad)
    failed_pairs = [o for o in orders if o[4] == "FAILED" and by_order.get(o[0])]
    check("FAILED pairs for some failed orders (energy top-ups among them)",
          len(failed_pairs) >= 3 and any(o[5] == "ENERGY_TOPUP" for o in failed_pairs))
    check("failed orders without transactions too",
          any(o[4] == "FAILED" and not by_order.get(o[0]) for o in orders))
    running: dict[int, float] = defaultdict(float)
    bad = []
    for t in txs:
        if t[4] != "SUCCESSFUL":
            if t[5] != running[t[2]]:
                bad.append(t[0])
            continue
        if t[5] != running[t[2]] or t[6] != t[5] + t[3]:
            bad.append(t[0])
        running[t[2]] = t[6]
    check("balance_before/after chain per wallet (from 0)", not bad, bad[:10])
    check("wallet balance = its last balance_after",
          all(v[6] == running.get(k, 0.0) for k, v in wallets.items()))
    check("transactions.rls_organization_id from the order's grid (trigger)",
          all(t[7] == t[8] for t in txs) and any(t[7] is None for t in txs))
    check("transaction ids from dataset.FIRST_TRANSACTION_ID",
          txs[0][0] == ds.FIRST_TRANSACTION_ID)

    # api keys
    keys = {r[0]: r[1:] for r in db.rows("""
        select k.id, k.key, k.account_id, k.is_locked, a.deleted_at is not null,
               o.deleted_at is not null, o.id, o.organization_type::text
          from api_keys k left join accounts a on a.id = k.account_id
          left join organizations o on o.id = a.organization_id""")}
    check("api_keys as dataset.API_KEYS", {k: v[:3] for k, v in keys.items()} == ds.API_KEYS)
    by_key = {v[0]: v for v in keys.values()}
    agg = by_key[ds.API_KEY_AGGREGATOR]
    check("unlocked key of the data aggregator", not agg[2] and agg[6] == "DATA_AGGREGATOR"
          and not agg[3] and not agg[4])
    check("locked key", by_key[ds.API_KEY_LOCKED][2])
    jwt = ds.API_KEY_JWT_SHAPED
    check("JWT-shaped key (three base64url parts, eyJ...)",
          jwt in by_key and jwt.startswith("eyJ")
          and re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", jwt))
    check("key of a deleted account", by_key[ds.API_KEY_DELETED_ACCOUNT][3])
    deleted_org_key = by_key[ds.API_KEY_DELETED_ORGANIZATION]
    check("key of an account of a deleted organization",
          deleted_org_key[4] and not deleted_org_key[3])
    check("key of the operator's account", by_key[ds.API_KEY_OPERATOR][5] == ds.OPERATOR_ORG_ID)
    check("plain random string key (a solar developer's)",
          by_key[ds.API_KEY_RANDOM_STRING][6] == "SOLAR_DEVELOPER")
    check("NULL key on one row", keys[ds.API_KEY_NULL_KEY_ROW_ID][0] is None
          and sum(1 for v in keys.values() if v[0] is None) == 1)
    check("a key without account", by_key[ds.API_KEY_ORPHAN][1] is None)

    # legacy-only tables and their triggers
    check("meter_credit_transfers: rls from the receiver meter (trigger), orders point at them",
          db.one("""select bool_and(t.rls_organization_id = m.rls_organization_id)
                      from meter_credit_transfers t join meters m on m.id = t.receiver_meter_id""")
          and db.count("orders", "meter_credit_transfer_id is not null") == 2)
    check("notes and issues: rls_organization_id by trigger",
          db.count("notes", "rls_organization_id is null") == 0
          and db.count("issues", "rls_organization_id is null") == 1)  # the deleted meter's
    check("meter_interactions point at completed energy top-ups",
          db.one("""select bool_and(o.order_status = 'COMPLETED' and o.receiver_wallet_id = w.id)
                      from meter_interactions i join orders o on o.id = i.order_id
                      join wallets w on w.meter_id = i.meter_id"""))

    # sequences
    owned = db.rows("""
        select t.relname, a.attname, s.last_value
          from pg_depend d join pg_class sq on sq.oid = d.objid and sq.relkind = 'S'
          join pg_class t on t.oid = d.refobjid and t.relnamespace = 'public'::regnamespace
          join pg_attribute a on a.attrelid = t.oid and a.attnum = d.refobjsubid
          join pg_sequences s on s.schemaname = 'public' and s.sequencename = sq.relname
         where d.deptype in ('a', 'i')""")
    behind, filled = [], 0
    for table, column, last in owned:
        top = db.one(f'select max("{column}") from public."{table}"')
        if top is not None:
            filled += 1
            if last is None or last < top:
                behind.append((table, last, top))
    check("every sequence at or past the ids inserted", filled >= 15 and not behind, behind)


def timeseries(ts: Db, tx: Db) -> None:
    check_counts(ts, ds.TS_ROW_COUNTS, "public")
    rows = ts.rows("""select created_at, meter_id, customer_id, grid_id, grid_name, dcu_id,
                             consumption_kwh, is_hidden_from_reporting, power_limit_kw,
                             counter_kwh, kwh_credit_available, is_on, organization_id,
                             is_hps_consumption, is_fs_consumption, connection_id,
                             customer_full_name
                        from meter_snapshot_1_h""")
    times = [r[0] for r in rows]
    check("snapshot range as dataset", (min(times), max(times))
          == (ds.SNAPSHOT_FIRST_AT, ds.SNAPSHOT_LAST_AT), (min(times), max(times)))
    kwh = [r[6] for r in rows]
    check("consumption_kwh: normal doubles, 0, NULL and NaN",
          None in kwh and 0.0 in kwh and any(k is not None and math.isnan(k) for k in kwh)
          and sum(1 for k in kwh if k and k > 0) > 1000)
    check("both power-limit-only rows and consumption rows",
          any(r[6] is None and r[8] is not None for r in rows)
          and any(r[6] is not None and r[8] is not None for r in rows)
          and any(r[6] is not None and r[8] is None for r in rows))
    check("counter_kwh and kwh_credit_available (real) on the LoRaWAN rows",
          {r[1] for r in rows if r[9] is not None} == set(ds.LORAWAN_METER_IDS)
          and all(r[10] is not None for r in rows if r[9] is not None))
    check("LoRaWAN rows a few minutes past the hour, the others on the hour",
          all((r[0].minute != 0) == (r[1] in ds.LORAWAN_METER_IDS) for r in rows))
    check("customer_id NULL on a few rows (the cabin meter)",
          {r[1] for r in rows if r[2] is None} == {ds.CABIN_METER_ID})
    check("grid_name values are dataset.SITE_NAMES",
          sorted({r[4] for r in rows}) == sorted(ds.SITE_NAMES))
    reportable = [r for r in rows if not r[7] and r[6] is not None and not math.isnan(r[6])]
    check("reportable rows as dataset", len(reportable) == ds.REPORTABLE_SNAPSHOT_ROWS,
          len(reportable))
    by_site: dict[str, int] = defaultdict(int)
    for r in reportable:
        by_site[r[4]] += 1
    check("reportable rows by site as dataset", by_site == ds.REPORTABLE_SNAPSHOT_ROWS_BY_SITE,
          dict(by_site))
    meters = {r[0]: r[1:] for r in tx.rows("""
        select m.id, c.id, c.grid_id, g.name, m.dcu_id, g.organization_id, m.connection_id,
               c.is_hidden_from_reporting, a.full_name, m.rls_grid_id
          from meters m left join connections n on n.id = m.connection_id
          left join customers c on c.id = n.customer_id left join grids g on g.id = c.grid_id
          left join accounts a on a.id = c.account_id""")}
    grid_names = dict(tx.rows("select id, name from grids"))
    bad = set()
    for r in rows:
        m = meters.get(r[1])
        if m is None:
            bad.add(r[1])
        elif r[1] == ds.CABIN_METER_ID:
            if (r[3], r[4], r[5]) != (m[8], grid_names[m[8]], m[3]):
                bad.add(r[1])
        elif (r[2], r[3], r[4], r[5], r[12], r[15], r[16]) != (m[0], m[1], m[2], m[3], m[4],
                                                                m[5], m[7]):
            bad.add(r[1])
    check("snapshot meter/customer/grid/dcu/org ids consistent with the transactional data",
          not bad, sorted(bad))
    hidden = {r[1] for r in rows if r[7]}
    hidden_meters = {k for k, v in meters.items() if v[0] in ds.HIDDEN_CUSTOMER_IDS}
    check("is_hidden_from_reporting true exactly on hidden customers' meters",
          hidden and hidden == (hidden_meters & {r[1] for r in rows}), hidden)
    check("the visible customer on the hidden grid is not hidden in snapshots",
          any(r[2] == ds.VISIBLE_CUSTOMER_ON_HIDDEN_GRID and not r[7] for r in rows))
    check("no snapshot rows for ACREL, deleted, stock or unsynced meters",
          not ({r[1] for r in rows} & {*ds.ACREL_METER_IDS, ds.DELETED_METER_ID,
                                        ds.METER_WITHOUT_CONNECTION_ID}))

    # order_snapshots
    snaps = ts.rows("select order_id, amount, created_at, status, grid_id, organization_id, "
                    "is_hidden_from_reporting, tariff from order_snapshots")
    orders = {r[0]: r[1:] for r in tx.rows(
        "select id, amount, created_at, order_status::text, historical_grid_id, "
        "rls_organization_id, meta_is_hidden_from_reporting, tariff from orders")}
    check("order_snapshots: a subset of the orders, same values",
          0 < len(snaps) < len(orders) and all(
              s[0] in orders and (s[1], s[3], s[4], s[5], s[6], s[7])
              == (orders[s[0]][0], *orders[s[0]][2:])
              and s[2] == orders[s[0]][1].replace(tzinfo=None) for s in snaps))
    check("order_snapshots in several statuses", len({s[3] for s in snaps}) >= 4)

    # grid_business_snapshot_1_d
    biz = ts.rows("select created_at, grid_id, grid_name, organization_id "
                  "from grid_business_snapshot_1_d")
    first, last = ds.BUSINESS_DAYS
    n_days = (last - first).days + 1
    want = {(first + timedelta(days=d), g) for d in range(n_days) for g in ds.VISIBLE_GRID_IDS}
    check("one business row per visible grid per day", {(b[0], b[1]) for b in biz} == want)
    check("business rows carry the grids' names and organizations",
          all(b[2] == ds.GRIDS[b[1]] and b[3] == ds.GRID_ORGANIZATION[b[1]] for b in biz))

    # legacy-only time-series tables
    dcu_ids = {r[0] for r in tx.rows("select id from dcus")}
    check("dcu_snapshot_1_min rows of known dcus",
          ts.count("dcu_snapshot_1_min") > 0
          and {r[0] for r in ts.rows("select dcu_id from dcu_snapshot_1_min")} <= dcu_ids)
    check("device_data_sink rows (a duplicate among them: no key)",
          ts.one("select count(*) - count(distinct (created_at, timestamp, device_id, data::text,"
                 " meta::text)) from device_data_sink") == 1)


def files() -> None:
    for name in ("transactional.sql", "timeseries.sql"):
        path = HERE / "data" / name
        size = path.stat().st_size
        check(f"{name} under 2 MB", size < 2_000_000, size)
    text = (HERE / "data" / "timeseries.sql").read_text(encoding="utf-8")
    stmts = [re.sub(r"^(--[^\n]*\n|\s)*", "", s) for s in re.split(r";\n", text)]
    stmts = [s for s in stmts if s]
    check("timeseries.sql: plain INSERTs only, nothing from the TimescaleDB stub",
          stmts[:2] == ["SET client_encoding = 'UTF8'", "SET client_min_messages = warning"]
          and all(s.startswith("INSERT INTO ") for s in stmts[2:])
          and not re.search(r"tsdb_stub|time_bucket|create_hypertable", text))


def regeneration() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(HERE / "make_data.py"), "--out", tmp], check=True,
                       capture_output=True)
        for name in ("transactional.sql", "timeseries.sql"):
            same = (Path(tmp) / name).read_bytes() == (HERE / "data" / name).read_bytes()
            check(f"regenerating gives a byte-identical {name}", same)


def section(name: str, fn: Any, *args: Any) -> None:
    """Runs one group of checks; data too far off to check further fails the group by name."""
    try:
        fn(*args)
    except Exception as e:  # a missing row or table: the checks after it cannot run
        check(f"{name} checks ran to the end", False, f"stopped by {type(e).__name__}: {e}")


def main(argv: list[str]) -> int:
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    tx, ts = Db(args[0]), Db(args[1])
    section("transactional", transactional, tx)
    section("time-series", timeseries, ts, tx)
    section("files", files)
    if "--regenerate" in argv:
        section("regeneration", regeneration)
    if FAILED:
        print(f"\n{len(FAILED)} check(s) failed:", file=sys.stderr)
        for name in FAILED:
            print(f"  - {name}", file=sys.stderr)
        return 1
    print("\nall checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Facts about the legacy test data set (`data/transactional.sql`, `data/timeseries.sql`).

`make_data.py` builds the data from these facts and refuses to write files that disagree with
them; `check_data.py` checks a loaded database against them. Importing this module touches no
database. Timestamps are UTC: aware where the legacy column is `timestamptz`, naive where it is
`timestamp without time zone` (every time-series column).
"""

from __future__ import annotations

from datetime import UTC, datetime

# -- organizations -----------------------------------------------------------------------------

OPERATOR_ORG_ID = 2  # hard-coded in the legacy code (NXT_ORG_ID)
OPERATOR_ORG_NAME = "NXT Grid"  # the legacy order meta compares the sender org's name with it
LENDER_ORG_ID = 1
AGGREGATOR_ORG_ID = 3
DEVELOPER_ORG_IDS = (4, 5)  # SOLAR_DEVELOPERs besides the operator
DELETED_ORG_ID = 7  # SOLAR_DEVELOPER, deleted_at set; its grid is deleted and hidden too

ORGANIZATIONS: dict[int, tuple[str, str]] = {  # id -> (name, organization_type)
    1: ("Sunbridge Capital", "LENDER"),
    2: ("NXT Grid", "SOLAR_DEVELOPER"),
    3: ("Kilowatt Data Exchange", "DATA_AGGREGATOR"),
    4: ("Oyo Rural Power Ltd", "SOLAR_DEVELOPER"),
    5: ("Rift Valley Microgrids", "SOLAR_DEVELOPER"),
    7: ("Harmattan Energy", "SOLAR_DEVELOPER"),
}

# -- grids -------------------------------------------------------------------------------------

GRIDS: dict[int, str] = {  # id -> name, spelled as the legacy has it (case matters to it)
    3: "Oke-Odo",
    5: "Umuchem",
    8: "GBEDU Island",
    11: "Kanyeri",
    12: "Idi-Ayunre",
    14: "Software Test Grid",
    15: "Ebute Old Site",
    17: "Harmattan Pilot",
}
GRID_ORGANIZATION: dict[int, int] = {3: 2, 5: 4, 8: 4, 11: 5, 12: 5, 14: 2, 15: 4, 17: 7}
VISIBLE_GRID_IDS = (3, 5, 8, 11, 12, 15)  # is_hidden_from_reporting false (15 is deleted)
HIDDEN_GRID_IDS = (14, 17)  # is_hidden_from_reporting true
DELETED_GRID_IDS = (15, 17)  # deleted_at set
NAIROBI_GRID_ID = 11  # Africa/Nairobi, orders in USD; every other grid is Africa/Lagos
ZERO_TARIFF_GRID_ID = 12  # grid tariffs 0: its meters carry their own kwh_tariff
DUAL_METER_GRID_ID = 3  # uses_dual_meter_setup: customers have an HPS and an FS meter
GRID_TARIFFS: dict[int, tuple[float, float]] = {  # id -> (essential/HPS, full service/FS)
    3: (180.0, 250.0),
    5: (210.5, 290.0),
    8: (200.0, 275.0),
    11: (0.35, 0.45),
    12: (0.0, 0.0),
    14: (100.0, 100.0),
    15: (190.0, 260.0),
    17: (150.0, 220.0),
}

# `site` values of the meter-consumption API: grid_name in meter_snapshot_1_h, in the grid's own
# spelling. A client types them in any case (the legacy filter is lower() = lower()).
SITE_NAMES = ("Oke-Odo", "Umuchem", "GBEDU Island", "Kanyeri", "Software Test Grid")
SITE_SPELLINGS = {"oke-odo": "Oke-Odo", "gbedu island": "GBEDU Island", "KANYERI": "Kanyeri"}

# -- accounts, auth users, members, agents -----------------------------------------------------

# Staff: account id -> (supabase user id or None, organization id, member id, member_type).
# Every one of them has a `members` row; account 310 has no auth user (an API-only account).
STAFF: dict[int, tuple[str | None, int, int, str]] = {
    301: ("41933fc6-fe7d-45b7-bce4-f1b03ffc9960", 2, 41, "SUPERADMIN"),
    302: ("7ef8205a-3b9c-4029-9d0f-855656376183", 2, 42, "ADMIN"),
    303: ("ee91c0e1-2f57-45d1-ba18-378c9dedc7f3", 2, 43, "FINANCE"),
    304: ("df6d1a46-2ca7-4d59-96ab-9c4042d3587c", 2, 44, "TECH"),
    305: ("39f7c517-d473-4418-9adf-cc074a62c690", 1, 45, "PARTNER"),
    306: ("03aaf006-5251-4b75-a004-5a63fe2d3ecc", 1, 46, "FINANCE"),
    307: ("bbf9b583-0047-462b-b053-c0c56ba880ed", 3, 47, "ADMIN"),
    308: ("112b94ce-10bc-4728-b09f-be810ec3e1dc", 3, 48, "DEVELOPER"),
    309: ("4f7528fd-7aef-47f7-a3dc-a7961cb7828d", 3, 49, "DEVELOPER"),  # account deleted
    310: (None, 3, 50, "DEVELOPER"),
    311: ("c8c8d018-d4e7-405e-957c-9698ebf8564a", 4, 51, "MANAGER"),
    312: ("2b094c59-0dc3-4789-97f3-fe9942c6b712", 4, 52, "DEVELOPER"),
    313: ("0b4f3c50-2e10-4ed0-8f03-4087b5f3f905", 5, 53, "ADMIN"),
    314: ("b60704ee-2470-44c5-9969-e750b378794d", 7, 54, "ADMIN"),  # org deleted
}
# Agents: account id -> (supabase user id, agent id, grid id). Account 326 is deleted.
AGENTS: dict[int, tuple[str, int, int]] = {
    321: ("0a4a38d0-78e9-4d0c-b9ba-aba98ca12242", 61, 3),
    322: ("690381c7-8adb-4f06-baba-5eccb32f2b0f", 62, 3),
    323: ("a219f6be-1792-478f-aa94-48d2324c51dd", 63, 5),
    324: ("db590c66-61bd-45cd-9fde-ad64021eea24", 64, 11),
    325: ("f7e34da3-6f99-4d57-9f0b-d0125b8e6e1b", 65, 14),
    326: ("be02df3e-c455-4bb1-9dfe-b7a29b1b4e37", 66, 15),
}
DELETED_ACCOUNT_IDS = (309, 326, 353, 377)  # 353, 377: the accounts of customers 514, 539

OPERATOR_SUPERADMIN_USER_ID = STAFF[301][0]
OPERATOR_ADMIN_USER_ID = STAFF[302][0]
OPERATOR_FINANCE_USER_ID = STAFF[303][0]
LENDER_USER_ID = STAFF[305][0]
AGGREGATOR_USER_ID = STAFF[307][0]
AGGREGATOR_DELETED_USER_ID = STAFF[309][0]  # its account has deleted_at set
DEVELOPER_USER_ID = STAFF[311][0]  # Oyo Rural Power Ltd (4)
DELETED_ORG_USER_ID = STAFF[314][0]  # Harmattan Energy (7), deleted
AGENT_USER_ID = AGENTS[321][0]
API_ONLY_ACCOUNT_ID = 310  # data aggregator account without an auth user

# -- customers, connections, meters, wallets ---------------------------------------------------

CUSTOMER_IDS = tuple(range(501, 543))
HIDDEN_CUSTOMER_IDS = (507, 516, 535, 536)  # customers.is_hidden_from_reporting
CUSTOMERS_WITHOUT_ACCOUNT = (509, 522)  # account_id NULL
CUSTOMERS_WITH_DELETED_ACCOUNT = (514, 539)
# Customer 537 is not hidden but lives on the hidden grid 14: the legacy meter snapshot writer
# copies only the customer's flag, so its snapshot rows are not hidden (see README).
VISIBLE_CUSTOMER_ON_HIDDEN_GRID = 537

BANKING_SYSTEM_WALLET_ID = 968  # hard-coded in the legacy code; no owner; pays every top-up
BANKING_SYSTEM_IDENTIFIER = "BANKING_SYSTEM"
ORGANIZATION_WALLETS: dict[int, int] = {2: 1001, 4: 1002, 5: 1003, 7: 1004}  # org -> wallet
OPERATOR_WALLET_ID = ORGANIZATION_WALLETS[2]
AGENT_WALLETS: dict[int, int] = {61: 1011, 62: 1012, 63: 1013, 64: 1014, 65: 1015, 66: 1016}

METER_WITH_WALLET_ID = 701  # Oke-Odo HPS meter, grid tariff (kwh_tariff NULL)
METER_WITH_WALLET_AND_TARIFF_ID = 730  # Idi-Ayunre: the meter's own kwh_tariff
METER_WITHOUT_WALLET_ID = 746  # Oke-Odo FS meter: installed (connection, DCU), no wallet
METER_WITHOUT_CONNECTION_ID = 749  # in stock: no connection, no DCU, no wallet
CABIN_METER_ID = 748  # Oke-Odo energy cabin: no connection; snapshot rows without customer
DELETED_METER_ID = 747  # replaced (deleted_at, connection removed); its wallet keeps history
METER_NULL_CREDIT_ID = 704  # kwh_credit_available NULL
METER_FRACTIONAL_CREDIT_ID = 701  # kwh_credit_available 12.340000000000002
METERS_WITH_TARIFF = (703, 724, 730, 731, 732, 733, 734)  # kwh_tariff set; NULL on the rest
LORAWAN_METER_IDS = (724, 725, 726, 727)  # Kanyeri: hourly read reports, minutes off the hour
ACREL_METER_IDS = (728, 729)  # Kanyeri: no snapshot rows (communication_protocol NULL)

# -- API keys (plain text in api_keys.key, as the legacy stores them) --------------------------

API_KEY_AGGREGATOR = "kdx_live_bedTExZ2XQbXcIiJIlZSqHPN73XflS3m"  # unlocked, account 307
API_KEY_LOCKED = "kdx_live_tj8zbBLxTxTfr3vc9kkMjU9VAw2z0HfV"  # is_locked, account 308
API_KEY_JWT_SHAPED = (  # unlocked, account 310 (no auth user); three base64url parts, no valid sig
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJpc3MiOiJraWxvd2F0dC1kYXRhLWV4Y2hhbmdlIiwic3ViIjoib2R5c3NleS1pbmdlc3QiLCJpYXQiOjE3ODgyMjA4MDB9"
    ".tfsBby-18Bu6PAL08jzlYs6-pyPQaU15zuS6-M1DWH8"
)
API_KEY_DELETED_ACCOUNT = "38585e767880fe48635a34f76f6dbf33e29d555de86d385e"  # account 309
API_KEY_DELETED_ORGANIZATION = "e4a87c698eb61e03a286bda7ff40879b99d36643c77db257"  # acct 314
API_KEY_OPERATOR = "eTuq82VWccVQt9sLPTyYsA2DswXtqawd4f0MEVeO"  # account 302 (NXT Grid)
API_KEY_RANDOM_STRING = "f_uw9wBYckp7qNqY_sYuREtl2F3"  # account 311, a SOLAR_DEVELOPER
API_KEY_ORPHAN = "e648ef11-2afa-4e33-b0a4-f838606633bc"  # account_id NULL
API_KEY_NULL_KEY_ROW_ID = 18  # key NULL (the column is nullable), account 305

# id -> (key, account_id, is_locked)
API_KEYS: dict[int, tuple[str | None, int | None, bool]] = {
    11: (API_KEY_AGGREGATOR, 307, False),
    12: (API_KEY_LOCKED, 308, True),
    13: (API_KEY_JWT_SHAPED, 310, False),
    14: (API_KEY_DELETED_ACCOUNT, 309, False),
    15: (API_KEY_DELETED_ORGANIZATION, 314, False),
    16: (API_KEY_OPERATOR, 302, False),
    17: (API_KEY_RANDOM_STRING, 311, False),
    18: (None, 305, False),
    19: (API_KEY_ORPHAN, None, False),
}

# -- time ---------------------------------------------------------------------------------------

ORDERS_FROM = datetime(2026, 9, 1, tzinfo=UTC)  # every order is created in [FROM, TO)
ORDERS_TO = datetime(2026, 10, 16, tzinfo=UTC)
FIRST_ORDER_ID = 20001
FIRST_TRANSACTION_ID = 50001

# meter_snapshot_1_h (naive UTC). Power-limit rows: every hour of 2026-10-01 .. 2026-10-10.
# Consumption (Calin download): Lagos local days 2026-10-01 .. 2026-10-08, i.e. UTC
# 2026-09-30 23:00 .. 2026-10-08 22:00; LoRaWAN read reports: a few minutes past each hour.
SNAPSHOT_FIRST_AT = datetime(2026, 9, 30, 23, 0)
SNAPSHOT_LAST_AT = datetime(2026, 10, 10, 23, 4, 21, 967000)
POWER_LIMIT_HOURS = (datetime(2026, 10, 1, 0, 0), datetime(2026, 10, 10, 23, 0))
CONSUMPTION_HOURS = (datetime(2026, 9, 30, 23, 0), datetime(2026, 10, 8, 22, 0))

# grid_business_snapshot_1_d: one row per visible grid per UTC day (created_at = the day).
BUSINESS_DAYS = (datetime(2026, 9, 1), datetime(2026, 10, 14))

# -- row counts (make_data.py and check_data.py both hold the data to these) -------------------

ROW_COUNTS: dict[str, int] = {
    "organizations": 6,
    "auth.users": 46,
    "accounts": 60,
    "members": 14,
    "agents": 6,
    "grids": 8,
    "dcus": 11,
    "customers": 42,
    "connections": 42,
    "meters": 49,
    "wallets": 105,
    "meter_credit_transfers": 2,
    "orders": 312,
    "transactions": 528,
    "meter_interactions": 13,
    "api_keys": 9,
    "audits": 20,
    "notes": 6,
    "issues": 5,
}
TS_ROW_COUNTS: dict[str, int] = {
    "meter_snapshot_1_h": 8425,
    "order_snapshots": 165,
    "grid_business_snapshot_1_d": 264,
    "device_data_sink": 13,
    "dcu_snapshot_1_min": 80,
}
# meter_snapshot_1_h rows the legacy meter-consumption function returns over the whole range
# (is_hidden_from_reporting false, consumption_kwh neither NULL nor NaN), in total and by site.
REPORTABLE_SNAPSHOT_ROWS = 5894
REPORTABLE_SNAPSHOT_ROWS_BY_SITE: dict[str, int] = {
    "GBEDU Island": 1104,
    "Kanyeri": 950,
    "Oke-Odo": 2575,
    "Software Test Grid": 184,
    "Umuchem": 1081,
}

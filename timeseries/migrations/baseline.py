"""The baseline of the time-series plane: the legacy snapshot tables this data layer owns.

`meter_snapshot_1_h`, `order_snapshots` and `grid_business_snapshot_1_d`, in schema `public`,
as the legacy TypeORM migrations (nxtgrid/nxt-backend `libs/timeseries/migration/`) leave them:
columns, types, nullability, defaults, primary keys and the `created_at desc` index TimescaleDB
gives each hypertable. Revision ts0001 creates them on a fresh database (hypertables with 7-day
chunks on TimescaleDB, as the legacy has them; range partitions on native PostgreSQL);
`nxt db adopt` checks a live legacy time-series database against them before it stamps ts0001.
Timestamps are `timestamp without time zone` holding UTC, as the legacy writes them.

The other legacy time-series tables (DCU, MPPT, router, forecasts, the raw device sink, ...)
are not part of it: an adopted database keeps them, untouched.
"""

from __future__ import annotations

from migrations.baseline import C, Index, Table

METER_SNAPSHOT_1_H = Table(
    "meter_snapshot_1_h",
    columns=(
        C("created_at", "timestamp without time zone", null=False),
        C("meter_id", "integer", null=False),
        C("meter_type", "character varying"),
        C("meter_external_reference", "character varying"),
        C("meter_external_system", "character varying"),
        C("meter_phase", "character varying"),
        C("customer_full_name", "character varying"),
        C("customer_id", "integer"),
        C("dcu_id", "integer"),
        C("dcu_external_reference", "character varying"),
        C("dcu_external_system", "character varying"),
        C("grid_id", "integer"),
        C("organization_id", "integer"),
        C("grid_name", "character varying"),
        C("organization_name", "character varying"),
        C("consumption_kwh", "double precision"),
        C("power_limit_kw", "double precision"),
        C("power_limit_kw_should_be", "double precision"),
        C("is_fs_consumption", "boolean"),
        C("is_hps_consumption", "boolean"),
        C("is_on", "boolean"),
        C("should_be_on", "boolean"),
        C("connection_id", "integer"),
        C("is_hidden_from_reporting", "boolean", null=False, default="false"),
        C("is_cabin_meter", "boolean", null=False, default="false"),
        C("counter_kwh", "real"),
        C("kwh_credit_available", "real"),
    ),
    primary_key=("created_at", "meter_id"),
    indexes=(Index("created_at DESC"),),
    row_level_security=False,
)

ORDER_SNAPSHOTS = Table(
    "order_snapshots",
    columns=(
        C("order_id", "integer", null=False),
        C("amount", "double precision"),
        C("created_at", "timestamp without time zone", null=False),
        C("currency", "character varying"),
        C("sender_wallet_id", "integer"),
        C("receiver_wallet_id", "integer"),
        C("sender_type", "character varying"),
        C("receiver_type", "character varying"),
        C("sender_name", "character varying"),
        C("receiver_name", "character varying"),
        C("status", "character varying"),
        C("external_reference", "character varying"),
        C("created_by_id", "integer"),
        C("created_by_name", "character varying"),
        C("payment_method", "character varying"),
        C("payment_channel", "character varying"),
        C("tariff_type", "character varying"),
        C("tariff", "double precision"),
        C("sender_subtype", "character varying"),
        C("receiver_subtype", "character varying"),
        C("grid_name", "character varying"),
        C("grid_id", "integer"),
        C("organization_name", "character varying"),
        C("organization_id", "integer"),
        C("sender_is_hidden_from_reporting", "boolean"),
        C("receiver_is_hidden_from_reporting", "boolean"),
        C("is_hidden_from_reporting", "boolean"),
    ),
    primary_key=("order_id", "created_at"),
    indexes=(Index("created_at DESC"),),
    row_level_security=False,
)

GRID_BUSINESS_SNAPSHOT_1_D = Table(
    "grid_business_snapshot_1_d",
    columns=(
        C("created_at", "timestamp without time zone", null=False),
        C("grid_id", "integer", null=False),
        C("grid_name", "character varying"),
        C("organization_id", "integer"),
        C("organization_name", "character varying"),
        C("energy_topup_revenue", "double precision"),
        C("kwp", "double precision"),
        C("kwh", "double precision"),
        C("monthly_rental", "double precision"),
        C("residential_connection_count", "integer"),
        C("commercial_connection_count", "integer"),
        C("public_connection_count", "integer"),
        C("total_connection_count", "integer"),
        C("women_impacted_count", "integer"),
        C("fs_meter_count", "integer"),
        C("hps_meter_count", "integer"),
        C("total_meter_count", "integer"),
        C("customer_count", "integer"),
        C("fs_tariff", "real"),
        C("hps_tariff", "real"),
        C("daily_rental", "double precision"),
        C("no_communication_issue_count", "integer"),
        C("no_consumption_issue_count", "integer"),
        C("no_credit_issue_count", "integer"),
        C("total_issue_count", "integer"),
        C("cuf", "double precision"),
        C("fs_consumption_kwh", "double precision"),
        C("hps_consumption_kwh", "double precision"),
        C("total_consumption_kwh", "double precision"),
        C("total_estimated_mppt_production_kwh", "double precision"),
        C("total_mppt_production_kwh", "double precision"),
        C("battery_modules_on_count", "integer"),
        C("battery_modules_off_count", "integer"),
        C("connection_fee_revenue", "double precision"),
        C("fs_single_phase_connection_fee", "real"),
        C("hps_single_phase_connection_fee", "real"),
        C("fs_three_phase_connection_fee", "real"),
        C("not_activated_issue_count", "integer"),
        C("tamper_issue_count", "integer"),
        C("power_limit_breached_issue_count", "integer"),
        C("over_voltage_issue_count", "integer"),
        C("low_voltage_issue_count", "integer"),
        C("unexpected_power_limit_issue_count", "integer"),
        C("unexpected_meter_status_issue_count", "integer"),
        C("lifeline_connection_count", "integer"),
        C("three_phase_meter_count", "integer"),
        C("single_phase_meter_count", "integer"),
    ),
    primary_key=("created_at", "grid_id"),
    indexes=(Index("created_at DESC"),),
    row_level_security=False,
)

TABLES: tuple[Table, ...] = (METER_SNAPSHOT_1_H, ORDER_SNAPSHOTS, GRID_BUSINESS_SNAPSHOT_1_D)
TABLE_NAMES = tuple(t.name for t in TABLES)

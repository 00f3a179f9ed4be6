"""The baseline of the transactional plane: the part of the legacy schema this data layer owns.

Facts, not DDL: every table, column (type, nullability, default), key, unique constraint, foreign
key and index of the owned tables, and every enumeration their columns use, as the legacy
Supabase migrations leave them (nxtgrid/nxt-backend `supabase/migrations/`, read through the
PostgreSQL catalogs of a database built from them). One declaration serves two readers:

- revision 0002 renders it into DDL for a fresh database (`create_sql`);
- `nxt db adopt` compares a live legacy database's catalogs with it (`nxt_cli.catalog`) and
  refuses to stamp the baseline when anything declared here is missing or different.

What is left out, on purpose:
- the PostGIS columns (`grids.location_geom`, `dcus.location_geom`): PostGIS is not on every
  server this project runs on (the embedded PostgreSQL has none); an adopted database keeps
  them, as legacy-only columns;
- foreign keys to tables this project does not own (directives, poles, issues, agents, ...):
  the columns are here, the constraints stay legacy-only;
- the legacy policies, triggers, functions, views and grants: they belong to the legacy
  services and are left alone on an adopted database (the project's own come in later
  revisions, which run on fresh and adopted databases alike).

Constraint and index names are not part of the baseline: a fresh database gets PostgreSQL's
default names, and the comparison matches keys and indexes by definition.

Types and defaults are spelled as PostgreSQL prints them (`format_type`, `pg_get_expr` with
`public` on the search path), so the comparison is a string match after normalisation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class C:
    """A column. `serial`: an integer key fed by its own sequence `<table>_<name>_seq`."""

    name: str
    type: str
    null: bool = True
    default: str | None = None
    serial: bool = False


@dataclass(frozen=True)
class FK:
    columns: tuple[str, ...]
    references: str  # an owned table, or auth.users
    referenced: tuple[str, ...]


@dataclass(frozen=True)
class Index:
    """A plain btree index: its key (`columns` as PostgreSQL prints it) and predicate."""

    columns: str
    where: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[C, ...]
    primary_key: tuple[str, ...]
    unique: tuple[tuple[str, ...], ...] = ()
    foreign_keys: tuple[FK, ...] = ()
    indexes: tuple[Index, ...] = ()
    row_level_security: bool = True

    def column(self, name: str) -> C:
        return next(c for c in self.columns if c.name == name)


ENUMS: dict[str, tuple[str, ...]] = {
    "account_type_enum": (
        "AGENT",
        "MEMBER",
        "CUSTOMER",
    ),
    "communication_protocol_enum": (
        "CALIN_V1",
        "CALIN_V2",
        "CALIN_LORAWAN",
    ),
    "currency_enum": (
        "USD",
        "NGN",
        "EUR",
    ),
    "directive_special_status_enum": (
        "POWER_LIMIT_BREACHED",
        "CREDIT_EXHAUSTED",
        "REMOTE_SWITCHED_OFF",
        "OVER_VOLTAGE",
        "METER_NOT_ACTIVATED",
        "TAMPER",
        "LOW_VOLTAGE",
    ),
    "external_system_enum": (
        "STEAMACO",
        "CALIN",
        "SOLCAST",
        "VICTRON",
        "FLUTTERWAVE",
        "AFRICASTALKING",
        "JOTFORM",
        "EPICOLLECT",
        "JIRA",
        "TELEGRAM",
        "ZEROTIER",
        "MAKE",
        "FLOW_XO",
        "SENDGRID",
        "ACREL",
    ),
    "gender_enum": (
        "MALE",
        "FEMALE",
    ),
    "generator_type_enum": (
        "SMALL",
        "LARGE",
    ),
    "id_document_type_enum": (
        "PASSPORT",
        "NATIONAL_ID",
        "DRIVING_LICENSE",
        "VOTERS_CARD",
    ),
    "meter_phase_enum": (
        "SINGLE_PHASE",
        "THREE_PHASE",
    ),
    "meter_type_enum": (
        "HPS",
        "FS",
    ),
    "order_actor_type_enum": (
        "BANKING_SYSTEM",
        "ORGANIZATION",
        "CONNECTION",
        "METER",
        "AGENT",
        "CUSTOMER",
    ),
    "order_status_enum": (
        "INITIALISED",
        "PENDING",
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMED_OUT",
        "IGNORED",
    ),
    "order_type_enum": (
        "ENERGY_TOPUP",
        "CONNECTION_PAYMENT",
        "CONNECTION_REFUND",
        "AGENT_WITHDRAWAL",
        "AGENT_TOPUP",
        "ORGANIZATION_TOPUP",
        "ORGANIZATION_WITHDRAWAL",
        "CUSTOMER_TOPUP",
    ),
    "organization_type_enum": (
        "SOLAR_DEVELOPER",
        "LENDER",
        "DATA_AGGREGATOR",
    ),
    "payment_channel_enum": (
        "USSD",
        "AYRTON",
        "NIFFLER",
        "TELEGRAM",
    ),
    "payment_method_enum": (
        "CREDIT_CARD",
        "USSD",
        "BANK_TRANSFER",
    ),
    "transaction_status_enum": (
        "SUCCESSFUL",
        "FAILED",
    ),
    "wallet_type_enum": (
        "VIRTUAL",
        "REAL",
    ),
    "weather_type_enum": (
        "CLOUDY",
        "CLOUDS",
        "SHOWERS",
        "SUNNY",
        "UNKNOWN",
        "CLOUDY_WITH_RAIN",
    ),
}

ORGANIZATIONS = Table(
    "organizations",
    columns=(
        C("id", "integer", serial=True),
        C("created_at", "timestamp(3) with time zone", null=False, default="now()"),
        C("name", "character varying", null=False),
        C("formal_name", "character varying"),
        C("email", "character varying"),
        C("phone", "character varying"),
        C("address", "character varying"),
        C("epicollect_contract_survey_slug", "character varying"),
        C("epicollect_contract_survey_secret", "character varying"),
        C("epicollect_contract_survey_client_id", "character varying"),
        C("epicollect_contract_last_sync_at", "timestamp(3) with time zone"),
        C("developer_group_telegram_chat_id", "character varying"),
        C("deleted_at", "timestamp with time zone"),
        C("pd_hero_google_drive_folder_id", "text"),
        C(
            "organization_type",
            "organization_type_enum",
            null=False,
            default="'SOLAR_DEVELOPER'::organization_type_enum",
        ),
    ),
    primary_key=("id",),
)

ACCOUNTS = Table(
    "accounts",
    columns=(
        C("id", "integer", serial=True),
        C("created_at", "timestamp(3) with time zone", null=False, default="now()"),
        C("full_name", "character varying"),
        C("email", "character varying"),
        C("phone", "character varying"),
        C("telegram_id", "character varying"),
        C("telegram_link_token", "character varying"),
        C("deleted_at", "timestamp(3) without time zone"),
        C("supabase_id", "uuid"),
        C("organization_id", "integer"),
    ),
    primary_key=("id",),
    unique=(
        ("supabase_id",),
        ("telegram_link_token",),
        ("telegram_id",),
    ),
    foreign_keys=(
        FK(("supabase_id",), "auth.users", ("id",)),
        FK(("organization_id",), "organizations", ("id",)),
    ),
)

GRIDS = Table(
    "grids",
    columns=(
        C("id", "integer", serial=True),
        C("created_at", "timestamp(3) with time zone", null=False, default="now()"),
        C("deleted_at", "timestamp with time zone"),
        C("deployed_at", "timestamp(3) with time zone"),
        C("commissioned_at", "timestamp(3) with time zone"),
        C("name", "character varying", null=False),
        C("is_hps_on", "boolean", null=False, default="false"),
        C("is_hps_on_updated_at", "timestamp(3) with time zone"),
        C("walkthrough_external_id", "character varying"),
        C("timezone", "character varying", null=False, default="'Africa/Lagos'::character varying"),
        C("kwp", "double precision", null=False, default="'0'::double precision"),
        C("kwh", "double precision", null=False, default="'0'::double precision"),
        C("kwp_tariff", "double precision", null=False, default="'0'::double precision"),
        C("kwh_tariff", "double precision", null=False, default="'0'::double precision"),
        C(
            "kwh_tariff_essential_service",
            "double precision",
            null=False,
            default="'0'::double precision",
        ),
        C(
            "kwh_tariff_full_service",
            "double precision",
            null=False,
            default="'0'::double precision",
        ),
        C("current_weather", "weather_type_enum"),
        C(
            "generation_external_system",
            "external_system_enum",
            null=False,
            default="'VICTRON'::external_system_enum",
        ),
        C(
            "metering_external_system",
            "external_system_enum",
            null=False,
            default="'CALIN'::external_system_enum",
        ),
        C("generation_external_site_id", "character varying"),
        C("generation_external_gateway_id", "character varying"),
        C("generation_gateway_last_seen_at", "timestamp(3) with time zone"),
        C("is_fs_on", "boolean", null=False, default="false"),
        C("is_fs_on_updated_at", "timestamp(3) with time zone"),
        C("should_fs_be_on", "boolean", null=False, default="false"),
        C("should_fs_be_on_updated_at", "timestamp(3) with time zone"),
        C(
            "default_hps_connection_fee",
            "double precision",
            null=False,
            default="'0'::double precision",
        ),
        C(
            "default_fs_1_phase_connection_fee",
            "double precision",
            null=False,
            default="'0'::double precision",
        ),
        C(
            "default_fs_3_phase_connection_fee",
            "double precision",
            null=False,
            default="'0'::double precision",
        ),
        C("monthly_rental", "double precision", null=False, default="'0'::double precision"),
        C("are_all_dcus_online", "boolean", null=False, default="false"),
        C("are_all_dcus_under_high_load_threshold", "boolean", null=False, default="true"),
        C("is_hidden_from_reporting", "boolean", null=False, default="true"),
        C("is_three_phase_supported", "boolean", null=False, default="false"),
        C("is_using_vsat", "boolean", null=False, default="false"),
        C("is_using_mobile_network", "boolean", null=False, default="false"),
        C("is_hps_on_threshold_kw", "double precision", null=False, default="0"),
        C("kwh_per_battery_module", "double precision"),
        C("identifier", "integer"),
        C("lifeline_connection_kwh_threshold", "integer", null=False, default="5"),
        C("lifeline_connection_days_threshold", "integer", null=False, default="30"),
        C("meter_consumption_issue_threshold_detection_days", "integer", null=False, default="30"),
        C("meter_communication_issue_threshold_detection_days", "integer", null=False, default="7"),
        C("uses_dual_meter_setup", "boolean", null=False, default="false"),
        C("is_panel_cleaning_notification_enabled", "boolean", null=False, default="false"),
        C("is_energised_notification_enabled", "boolean", null=False, default="false"),
        C("is_fs_on_notification_enabled", "boolean", null=False, default="false"),
        C(
            "is_metering_hardware_online_notification_enabled",
            "boolean",
            null=False,
            default="false",
        ),
        C("is_tariff_change_notification_enabled", "boolean", null=False, default="false"),
        C(
            "is_upcoming_fs_control_rule_notification_enabled",
            "boolean",
            null=False,
            default="false",
        ),
        C("is_fs_control_rule_change_notification_enabled", "boolean", null=False, default="false"),
        C("is_automatic_meter_install_enabled", "boolean", null=False, default="false"),
        C("is_automatic_payout_generation_enabled", "boolean", null=False, default="false"),
        C(
            "is_automatic_energy_generation_data_sync_enabled",
            "boolean",
            null=False,
            default="false",
        ),
        C(
            "is_automatic_meter_energy_consumption_data_sync_enabled",
            "boolean",
            null=False,
            default="false",
        ),
        C("is_dcu_connectivity_tracking_enabled", "boolean", null=False, default="false"),
        C("is_router_connectivity_tracking_enabled", "boolean", null=False, default="false"),
        C("is_cabin_meter_credit_depleting", "boolean", null=False, default="false"),
        C("telegram_response_path_token", "character varying"),
        C("telegram_notification_channel_invite_link", "character varying"),
        C("telegram_response_path_autopilot", "character varying"),
        C("internal_telegram_group_chat_id", "character varying"),
        C("internal_telegram_group_thread_id", "character varying"),
        C("organization_id", "integer", null=False),
        C("meter_commissioning_initial_credit_kwh", "real", null=False, default="'0'::real"),
        C("is_generation_managed_by_nxt_grid", "boolean", null=False, default="true"),
        C("telegram_config", "jsonb", default="'{}'::jsonb"),
        C("feature_access_config", "jsonb", null=False, default="'{}'::jsonb"),
    ),
    primary_key=("id",),
    unique=(("identifier",),),
    foreign_keys=(FK(("organization_id",), "organizations", ("id",)),),
)

DCUS = Table(
    "dcus",
    columns=(
        C("id", "integer", serial=True),
        C("created_at", "timestamp(3) with time zone", null=False, default="now()"),
        C("external_reference", "character varying", null=False),
        C("queue_buffer_length", "integer", null=False, default="50"),
        C("external_system", "external_system_enum", null=False),
        C("is_online", "boolean", null=False, default="false"),
        C("last_online_at", "timestamp(3) with time zone"),
        C("is_online_updated_at", "timestamp(3) with time zone"),
        C("communication_protocol", "communication_protocol_enum"),
        C("grid_id", "integer"),
        C("last_metering_hardware_install_session_id", "integer"),
        C("rls_organization_id", "integer"),
    ),
    primary_key=("id",),
    unique=(
        ("last_metering_hardware_install_session_id",),
        ("external_reference", "external_system"),
    ),
    foreign_keys=(
        FK(("grid_id",), "grids", ("id",)),
        FK(("rls_organization_id",), "organizations", ("id",)),
    ),
    indexes=(Index("rls_organization_id"),),
)

CUSTOMERS = Table(
    "customers",
    columns=(
        C("id", "integer", serial=True),
        C("created_at", "timestamp(3) with time zone", null=False, default="now()"),
        C("gender", "gender_enum"),
        C("total_connection_fee", "double precision", null=False, default="'0'::double precision"),
        C("total_connection_paid", "double precision", null=False, default="'0'::double precision"),
        C("is_hidden_from_reporting", "boolean", null=False, default="false"),
        C("lives_primarily_in_the_community", "boolean", null=False, default="true"),
        C("latitude", "double precision"),
        C("longitude", "double precision"),
        C("generator_owned", "generator_type_enum"),
        C("grid_id", "integer"),
        C("account_id", "integer"),
        C("rls_organization_id", "integer"),
    ),
    primary_key=("id",),
    unique=(("account_id",),),
    foreign_keys=(
        FK(("grid_id",), "grids", ("id",)),
        FK(("account_id",), "accounts", ("id",)),
        FK(("rls_organization_id",), "organizations", ("id",)),
    ),
    indexes=(
        Index("grid_id"),
        Index("rls_organization_id"),
    ),
)

CONNECTIONS = Table(
    "connections",
    columns=(
        C("id", "integer", serial=True),
        C("created_at", "timestamp(3) with time zone", null=False, default="now()"),
        C("deleted_at", "timestamp(3) without time zone"),
        C("document_type", "id_document_type_enum", default="'PASSPORT'::id_document_type_enum"),
        C("document_id", "character varying"),
        C("upload_uuid", "character varying"),
        C("external_system", "external_system_enum", default="'EPICOLLECT'::external_system_enum"),
        C("paid", "double precision", null=False, default="'0'::double precision"),
        C("currency", "currency_enum", null=False),
        C("women_impacted", "integer", null=False),
        C("is_lifeline", "boolean"),
        C("is_public", "boolean", null=False),
        C("is_commercial", "boolean", null=False),
        C("is_residential", "boolean", null=False),
        C("is_building_wired", "boolean", default="false"),
        C("is_using_led_bulbs", "boolean", default="false"),
        C("customer_id", "integer"),
        C("rls_organization_id", "integer"),
    ),
    primary_key=("id",),
    foreign_keys=(
        FK(("customer_id",), "customers", ("id",)),
        FK(("rls_organization_id",), "organizations", ("id",)),
    ),
    indexes=(
        Index("customer_id"),
        Index("rls_organization_id"),
    ),
)

METERS = Table(
    "meters",
    columns=(
        C("id", "integer", serial=True),
        C("created_at", "timestamp(3) with time zone", null=False, default="now()"),
        C("external_reference", "character varying", null=False),
        C("deleted_at", "timestamp(3) without time zone"),
        C("balance", "double precision"),
        C("balance_updated_at", "timestamp(3) with time zone"),
        C("kwh_credit_available", "double precision"),
        C("kwh_credit_available_updated_at", "timestamp(3) with time zone"),
        C("last_non_zero_consumption_at", "timestamp(3) with time zone"),
        C("is_on", "boolean", default="false"),
        C("should_be_on", "boolean", default="false"),
        C("is_on_updated_at", "timestamp(3) with time zone"),
        C("should_be_on_updated_at", "timestamp(3) with time zone"),
        C("is_manual_mode_on", "boolean", null=False, default="false"),
        C("is_manual_mode_on_updated_at", "timestamp(3) with time zone"),
        C("voltage", "double precision"),
        C("voltage_updated_at", "timestamp(3) with time zone"),
        C("power", "double precision"),
        C("power_updated_at", "timestamp(3) with time zone"),
        C("latitude", "double precision"),
        C("longitude", "double precision"),
        C("coord_accuracy", "double precision", null=False, default="'0'::double precision"),
        C("power_limit", "integer"),
        C("power_limit_updated_at", "timestamp(3) with time zone"),
        C("power_limit_should_be", "integer"),
        C("power_down_count", "integer"),
        C("power_down_count_updated_at", "timestamp(3) without time zone"),
        C("power_limit_should_be_updated_at", "timestamp(3) with time zone"),
        C("is_starred", "boolean", null=False, default="false"),
        C("external_system", "external_system_enum", null=False),
        C("meter_type", "meter_type_enum", null=False, default="'HPS'::meter_type_enum"),
        C("nickname", "character varying"),
        C("last_seen_at", "timestamp(3) with time zone"),
        C("issue_check_execution_session", "character varying"),
        C("issue_check_last_run_at", "timestamp(3) with time zone"),
        C("pole_id", "integer"),
        C(
            "meter_phase",
            "meter_phase_enum",
            null=False,
            default="'SINGLE_PHASE'::meter_phase_enum",
        ),
        C("last_metering_hardware_install_session_id", "integer"),
        C("kwh_tariff", "double precision"),
        C("watchdog_session", "character varying"),
        C("watchdog_last_run_at", "timestamp(3) with time zone"),
        C("version", "character varying"),
        C("is_simulated", "boolean", null=False, default="false"),
        C("power_limit_hps_mode", "integer", null=False, default="200"),
        C("current_special_status", "directive_special_status_enum"),
        C(
            "communication_protocol",
            "communication_protocol_enum",
            default="'CALIN_LORAWAN'::communication_protocol_enum",
        ),
        C("is_cabin_meter", "boolean", null=False, default="false"),
        C("last_encountered_issue_id", "integer"),
        C("connection_id", "integer"),
        C("dcu_id", "integer"),
        C("decoder_key", "text"),
        C("last_sts_token_issued_at", "timestamp with time zone"),
        C("rls_grid_id", "integer"),
        C("rls_organization_id", "integer"),
        C("is_test_mode_on", "boolean", null=False, default="false"),
        C("pulse_counter_kwh", "double precision"),
        C("device_id", "bigint"),
        C("pulse_counter_kwh_updated_at", "timestamp with time zone"),
        C("connection_metrics", "jsonb"),
    ),
    primary_key=("id",),
    unique=(
        ("last_encountered_issue_id",),
        ("last_metering_hardware_install_session_id",),
        ("device_id",),
        ("external_reference", "external_system"),
    ),
    foreign_keys=(
        FK(("dcu_id",), "dcus", ("id",)),
        FK(("connection_id",), "connections", ("id",)),
        FK(("rls_grid_id",), "grids", ("id",)),
        FK(("rls_organization_id",), "organizations", ("id",)),
    ),
    indexes=(
        Index("connection_id"),
        Index("dcu_id"),
        Index("rls_organization_id"),
    ),
)

WALLETS = Table(
    "wallets",
    columns=(
        C("id", "integer", serial=True),
        C("created_at", "timestamp(3) with time zone", null=False, default="now()"),
        C("organization_id", "integer"),
        C("agent_id", "integer"),
        C("customer_id", "integer"),
        C("meter_id", "integer"),
        C("lock_session", "character varying"),
        C("balance", "double precision", null=False, default="'0'::double precision"),
        C("balance_updated_at", "timestamp(3) with time zone"),
        C("identifier", "character varying"),
        C("wallet_type", "wallet_type_enum", null=False, default="'REAL'::wallet_type_enum"),
        C("goldring_migration_id", "integer"),
        C("connection_id", "integer"),
        C("rls_organization_id", "integer"),
    ),
    primary_key=("id",),
    unique=(
        ("customer_id",),
        ("meter_id",),
        ("connection_id",),
        ("organization_id",),
        ("agent_id",),
    ),
    foreign_keys=(
        FK(("customer_id",), "customers", ("id",)),
        FK(("meter_id",), "meters", ("id",)),
        FK(("connection_id",), "connections", ("id",)),
        FK(("organization_id",), "organizations", ("id",)),
        FK(("rls_organization_id",), "organizations", ("id",)),
    ),
    indexes=(Index("rls_organization_id"),),
)

TRANSACTIONS = Table(
    "transactions",
    columns=(
        C("id", "bigint", serial=True),
        C("created_at", "timestamp(3) with time zone", null=False, default="now()"),
        C("amount", "double precision", null=False),
        C("transaction_status", "transaction_status_enum", null=False),
        C("balance_before", "double precision", null=False, default="'-1'::double precision"),
        C("balance_after", "double precision", null=False, default="'-1'::double precision"),
        C("wallet_id", "integer"),
        C("order_id", "integer"),
        C("rls_organization_id", "integer"),
    ),
    primary_key=("id",),
    foreign_keys=(
        FK(("wallet_id",), "wallets", ("id",)),
        FK(("order_id",), "orders", ("id",)),
        FK(("rls_organization_id",), "organizations", ("id",)),
    ),
    indexes=(
        Index("wallet_id, transaction_status, created_at"),
        Index("rls_organization_id"),
    ),
)

ORDERS = Table(
    "orders",
    columns=(
        C("id", "integer", serial=True),
        C("created_at", "timestamp(3) with time zone", null=False, default="now()"),
        C("amount", "double precision", null=False),
        C("order_status", "order_status_enum", null=False, default="'PENDING'::order_status_enum"),
        C("lock_session", "character varying"),
        C("external_reference", "character varying"),
        C("currency", "currency_enum", null=False),
        C("external_system", "external_system_enum"),
        C("tariff_type", "meter_type_enum"),
        C("tariff", "double precision", null=False, default="'-1'::double precision"),
        C("payment_method", "payment_method_enum"),
        C("payment_channel", "payment_channel_enum"),
        C("author_id", "integer"),
        C("directive_id", "bigint"),
        C("meter_credit_transfer_id", "integer"),
        C("historical_grid_id", "integer"),
        C("meta_author_type", "account_type_enum"),
        C("meta_author_name", "character varying"),
        C("meta_author_id", "integer"),
        C("meta_order_type", "order_type_enum"),
        C("meta_sender_id", "integer"),
        C("meta_sender_name", "character varying"),
        C("meta_receiver_name", "character varying"),
        C("meta_receiver_name_part_2", "character varying"),
        C("meta_sender_name_part_2", "character varying"),
        C("meta_receiver_id", "integer"),
        C("meta_sender_type", "order_actor_type_enum"),
        C("meta_receiver_type", "order_actor_type_enum"),
        C("meta_is_hidden_from_reporting", "boolean"),
        C("sender_wallet_id", "integer"),
        C("receiver_wallet_id", "integer"),
        C("ussd_session_id", "integer"),
        C("lorawan_directive_id", "bigint"),
        C("meta_receiver_id_part_2", "integer"),
        C("rls_organization_id", "integer"),
        C("updated_at", "timestamp with time zone", null=False, default="now()"),
    ),
    primary_key=("id",),
    unique=(
        ("directive_id",),
        ("ussd_session_id",),
        ("meter_credit_transfer_id",),
    ),
    foreign_keys=(
        FK(("historical_grid_id",), "grids", ("id",)),
        FK(("receiver_wallet_id",), "wallets", ("id",)),
        FK(("author_id",), "accounts", ("id",)),
        FK(("sender_wallet_id",), "wallets", ("id",)),
        FK(("rls_organization_id",), "organizations", ("id",)),
    ),
    indexes=(
        Index("historical_grid_id", where="(meta_order_type = 'ENERGY_TOPUP'::order_type_enum)"),
        Index("meta_receiver_id", where="(meta_order_type = 'ENERGY_TOPUP'::order_type_enum)"),
        Index("historical_grid_id"),
        Index("meta_receiver_id"),
        Index("updated_at DESC"),
        Index("rls_organization_id"),
        Index("meta_sender_type, meta_sender_id, meta_receiver_type, meta_receiver_id"),
    ),
)

API_KEYS = Table(
    "api_keys",
    columns=(
        C("id", "integer", serial=True),
        C("created_at", "timestamp(3) with time zone", null=False, default="now()"),
        C("is_locked", "boolean", null=False, default="false"),
        C("key", "character varying"),
        C("account_id", "integer"),
    ),
    primary_key=("id",),
    unique=(("key",),),
    foreign_keys=(FK(("account_id",), "accounts", ("id",)),),
)

# In creation order: every foreign key points to a table before it.
TABLES: tuple[Table, ...] = (
    ORGANIZATIONS,
    ACCOUNTS,
    GRIDS,
    DCUS,
    CUSTOMERS,
    CONNECTIONS,
    METERS,
    WALLETS,
    ORDERS,
    TRANSACTIONS,
    API_KEYS,
)
TABLE_NAMES = tuple(t.name for t in TABLES)


# -- rendering: the DDL of a fresh database -------------------------------------------------


def _type(name: str, enums: dict[str, tuple[str, ...]]) -> str:
    return f"public.{name}" if name in enums else name


def _sequence(table: Table, column: C) -> str:
    return f"{table.name}_{column.name}_seq"


def _column_sql(table: Table, column: C, enums: dict[str, tuple[str, ...]]) -> str:
    parts = [column.name, _type(column.type, enums)]
    if column.serial:
        parts.append(f"not null default nextval('public.{_sequence(table, column)}'::regclass)")
    else:
        if not column.null:
            parts.append("not null")
        if column.default is not None:
            parts.append(f"default {column.default}")
    return " ".join(parts)


def create_sql(tables: tuple[Table, ...] = TABLES,
               enums: dict[str, tuple[str, ...]] | None = None,
               storage: Callable[[Table], str] = lambda table: "") -> list[str]:
    """The statements that create `tables` (and `enums`) in an empty `public` schema, in order.

    `storage(table)` is appended to each `create table` (e.g. `partition by range (...)`).
    Defaults and predicates name enum types unqualified, as PostgreSQL prints them: run with
    `public` on the search path.
    """
    enums = ENUMS if enums is None else enums
    out = []
    for name, values in enums.items():
        labels = ", ".join(f"'{v}'" for v in values)
        out.append(f"create type public.{name} as enum ({labels})")
    for table in tables:
        serials = [c for c in table.columns if c.serial]
        for c in serials:
            out.append(f"create sequence public.{_sequence(table, c)} as {c.type}")
        body = [_column_sql(table, c, enums) for c in table.columns]
        body.append(f"primary key ({', '.join(table.primary_key)})")
        body += [f"unique ({', '.join(cols)})" for cols in table.unique]
        out.append(f"create table public.{table.name} (\n  " + ",\n  ".join(body) + "\n)"
                   + storage(table))
        for c in serials:
            out.append(f"alter sequence public.{_sequence(table, c)}"
                       f" owned by public.{table.name}.{c.name}")
        for fk in table.foreign_keys:
            ref = fk.references if "." in fk.references else f"public.{fk.references}"
            out.append(f"alter table public.{table.name} add foreign key"
                       f" ({', '.join(fk.columns)}) references {ref} ({', '.join(fk.referenced)})")
        for index in table.indexes:
            where = f" where {index.where}" if index.where else ""
            out.append(f"create index on public.{table.name} ({index.columns}){where}")
        if table.row_level_security:
            out.append(f"alter table public.{table.name} enable row level security")
    return out


def drop_sql(tables: tuple[Table, ...] = TABLES,
             enums: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    enums = ENUMS if enums is None else enums
    out = ["drop table if exists " + ", ".join(f"public.{t.name}" for t in reversed(tables))
           + " cascade"]
    if enums:
        out.append("drop type if exists " + ", ".join(f"public.{n}" for n in enums) + " cascade")
    return out

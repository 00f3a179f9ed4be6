"""The time-series plane: meter telemetry, hourly snapshots and daily figures.

Modules (import the one you need; importing this package loads nothing else, so a function
that only needs `timeseries.partitions` does not pay for SQLAlchemy at cold start):

- `timeseries.tables`: SQLAlchemy Core table definitions, the single source of column names
- `timeseries.engine`: URL conversion, `make_engine`, engine detection, `engine_info`
- `timeseries.partitions`: native partitions (ensure / list / drop), the maintenance job
- `timeseries/migrations/`: the plane's own alembic environment (version table ts.alembic_version)
"""

SCHEMA = "ts"

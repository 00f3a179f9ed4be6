"""The time-series plane: meter telemetry, hourly snapshots and daily figures."""

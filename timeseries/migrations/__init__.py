"""Alembic environment of the time-series plane (see env.py)."""

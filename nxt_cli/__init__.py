"""Developer tooling behind the `nxt` command: local database, migrations, demo data, checks.

Never imported by a deployed function.
"""

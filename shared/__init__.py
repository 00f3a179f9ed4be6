"""Runtime data-access package carried by every deployed function.

Kept small and cheap to import: each submodule imports what it needs, and nothing heavy is
imported here, because a function's cold start pays for every import.
"""

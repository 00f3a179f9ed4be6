"""The benchmark suite: every hot path against its floor, in the same run (see README.md)."""

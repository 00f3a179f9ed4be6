"""Who is calling and what they may do, one module per concern.

`gate` enforces a function's `verify_jwt` and declared credentials (`declared`) and gives the
handler a `caller`; the credentials come from the headers (`credentials`) and are checked by the
JWT `verifier` (as `configured` for this instance) or looked up as API keys (`key_lookup`, key
format in `api_keys`); a JWT caller is brought up to date from its account (`accounts`); and
`access` decides what a caller may read. Refusals are `errors`.

Nothing is imported here: a job loads `declared` alone.
"""

"""HTTP on top of Starlette (functions-framework's ASGI mode), one module per concern.

A request passes the steps that `endpoint.py` lists, in that order; each step lives in
`steps.py` and the logic it applies in the module named after it (`request_id`, `cors`,
`limits`, `deadline`, `error_mapping`). Handlers read input with `params` and `bodies` and
answer with `responses` or by raising one of `errors`.
"""

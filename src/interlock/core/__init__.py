"""The bottom layer: the types every layer shares, and nothing that depends on any of them.

:mod:`~interlock.core.context` (the request as it flows: ``RequestContext``, ``Reply``,
``Principal`` …), :mod:`~interlock.core.errors` (the exception tree), :mod:`~interlock.core.headers`
(what may go into a header line), :mod:`~interlock.core.decision` (the record of a routing pick) and
:mod:`~interlock.core.tracing` (the tracer interface and the no-op tracer). Modules here import
nothing of Interlock outside ``core``; ``tests/test_layers.py`` checks it.
"""

"""Benchmarks of dlvr_jax, run as ``python -m benchmarks NAME [options]``.

Each benchmark measures our code side by side with its peer in one run
(medians of several repeats, compile time apart) and writes ``results.md``
and ``results.json`` to ``--out``. See ``python -m benchmarks --help``.
"""

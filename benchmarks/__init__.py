"""Benchmarks of dlvr_jax against its peers: ``python -m benchmarks [WORKLOAD ...]``.

The suite (``benchmarks.__main__.main``) runs the issue's workloads side by
side in one process: (A) the seed MLP against PyTorch eager and
scikit-learn, (B) a 256-model sweep against sequential PyTorch, (C) the
perceptron against pure Python, NumPy and scikit-learn, and (D) matrix
multiplication. Medians of at least 5 repeats, first call and compile time
apart from run time; it writes ``results.md`` and ``results.json`` to
``--out``. See ``python -m benchmarks --help`` and :mod:`benchmarks._harness`.
"""

"""One process of the 2-process data-parallel test (run by tests/test_distributed.py).

Usage: ``python distributed_worker.py OUT.npz`` with the ``DLVR_JAX_*`` variables
of :func:`dlvr_jax.parallel.initialize` set for a multi-process run, or none of
them for the single-process reference. It trains the same model with
:func:`dlvr_jax.parallel.fit_sharded` over every device of every process and
process 0 writes the parameters and the loss curve to ``OUT.npz``.
"""

from __future__ import annotations

import os
import sys

from dlvr_jax import parallel

if os.environ.get(parallel.ENV_COORDINATOR):
    parallel.initialize()  # before any other JAX call

import jax
import numpy as np

from dlvr_jax import data, models, optim


def main(out: str) -> None:
    xor = data.xor(jax.random.key(0), 96)
    state, history = parallel.fit_sharded(
        jax.random.key(1),
        models.MLP(hidden=(8, 8)),
        optim.optimizer("adam", 1e-2),
        xor,
        epochs=6,
        batch_size=30,  # 4 batches an epoch, the last padded; 30 rows over 4 devices are padded
    )
    leaves = {
        "/".join(str(getattr(k, "key", k)) for k in path): np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_leaves_with_path(state.params)
    }
    if jax.process_index() == 0:
        np.savez(
            out,
            devices=np.int32(jax.device_count()),
            processes=np.int32(jax.process_count()),
            train_loss=np.asarray(history.train_loss),
            **leaves,
        )


if __name__ == "__main__":
    main(sys.argv[1])

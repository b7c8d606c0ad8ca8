"""The Playground: the TensorFlow Playground, trained live by JAX, in the browser.

``dlvr-jax playground`` starts a local web server (Starlette and uvicorn, the
``playground`` extra: ``pip install "dlvr-jax[playground]"``) whose page
trains :class:`~dlvr_jax.models.MLP` networks through dlvr_jax's engine and
draws every neuron as it learns. The wire protocol between page and server
is in ``PROTOCOL.md`` beside this file (:mod:`.protocol` implements it).

Modules:

- :mod:`.protocol`: message validation and the binary snapshot encoding;
- :mod:`.session`: one session's state machine: configuration, data, model
  and training in compiled chunks (no web dependency);
- :mod:`.problem`: a configuration's data, features, split, model and loss;
- :mod:`.schedule`: which chunk programs to compile, and how long a chunk is;
- :mod:`.views`: the snapshots and other frames the page draws;
- :mod:`.upload`: an uploaded CSV, read or refused by row;
- :mod:`.export`: the script that reproduces a run;
- :mod:`.budget`: the whole configuration's budget (parameters, rows ×
  parameters, snapshot bytes, sweep size), checked before any work;
- :mod:`.connection`: one WebSocket's life: its inbox, its outbox with
  backpressure, its jobs on the server's bounded places of work;
- :mod:`.server`: the Starlette application and :func:`serve`.

:func:`serve` and :func:`app` import the server lazily, so ``import
dlvr_jax.playground`` works without the extra.
"""

from __future__ import annotations

from typing import Any

__all__ = ["app", "serve"]


def app(**options: Any) -> Any:
    """The Playground's ASGI application: :func:`dlvr_jax.playground.server.app`."""
    from dlvr_jax.playground import server

    return server.app(**options)


def serve(**options: Any) -> None:
    """Runs the Playground until Ctrl-C: :func:`dlvr_jax.playground.server.serve`."""
    from dlvr_jax.playground import server

    server.serve(**options)

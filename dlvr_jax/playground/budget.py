"""The Playground's budget: a session's work and memory, checked on the whole configuration.

The contract::

    shape = Shape(inputs=2, outputs=1, train_rows=250, grid=True)
    check_config(config, shape)                       # or OverBudget naming the limit
    check_sweep(config, shape, models=128, epochs=2000)
    parameters(inputs, hidden, outputs) -> int
    snapshot_bytes(config, shape) -> int              # the snapshot frame's size, at most

Every field of a configuration is checked on its own by the protocol
(:data:`~.protocol.CONFIG_RULES`); this module checks their products, which
no field shows: a network of 16 layers of 256 units is within the fields'
ranges, and so is a resolution of 200, but together they made one 660 MB
snapshot frame and 76 s of CPU. The limits, each a named constant:

- :data:`MAX_PARAMETERS`: the network's parameters (its memory, and the
  optimizer's state, a few copies of it);
- :data:`MAX_EPOCH_WORK`: training rows × parameters, one epoch's
  multiply-adds of the forward pass: an epoch (the smallest chunk, which a
  closed tab cannot interrupt) takes well under a second;
- :data:`MAX_SNAPSHOT_BYTES`: one snapshot frame, which holds a map of the
  grid (resolution²) for each input feature, each hidden unit and the output;
- :data:`MAX_SWEEP_MODELS_PARAMETERS`: a sweep's models × parameters (the
  models train side by side, ``vmap``: their states are in memory together);
- :data:`MAX_SWEEP_WORK`: a sweep's models × epochs × training rows ×
  parameters.

A configuration past one gets :class:`OverBudget`, an error frame with code
``over_budget`` whose message names the limit, the value and what to lower,
and whose ``field`` is the control to change (``hidden``, ``resolution``,
``epochs``...). The session is unchanged and goes on.

Examples:
    >>> from dlvr_jax.playground.budget import Shape, check_config, parameters
    >>> parameters(2, [4, 2], 1)   # the TensorFlow Playground's seed network
    25
    >>> circle = Shape(inputs=2, outputs=1, train_rows=250, grid=True)
    >>> check_config({"hidden": [4, 2], "resolution": 50}, circle)
    >>> try:
    ...     check_config({"hidden": [256] * 16, "resolution": 200}, circle)
    ... except OverBudget as error:
    ...     print(error.code, error.field)
    over_budget hidden
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from dlvr_jax.playground import protocol

__all__ = [
    "MAX_EPOCH_WORK",
    "MAX_PARAMETERS",
    "MAX_SNAPSHOT_BYTES",
    "MAX_SWEEP_MODELS_PARAMETERS",
    "MAX_SWEEP_WORK",
    "OverBudget",
    "Shape",
    "check_config",
    "check_sweep",
    "parameters",
    "snapshot_bytes",
]

MAX_PARAMETERS = 300_000
"""The most parameters a session's network may have (4 layers of 256 units fit)."""

MAX_EPOCH_WORK = 1_000_000_000
"""Training rows × parameters, at most: one epoch's forward multiply-adds (well under 1 s)."""

MAX_SNAPSHOT_BYTES = 16 * 1024 * 1024
"""The largest snapshot frame (16 MB): the grid's maps of features, neurons and output."""

MAX_SWEEP_MODELS_PARAMETERS = 4_000_000
"""A sweep's models × parameters, at most (their states are in memory at once)."""

MAX_SWEEP_WORK = 1_000_000_000_000
"""A sweep's models × epochs × training rows × parameters, at most (minutes of a core)."""

_MB = 1024 * 1024


class OverBudget(protocol.ProtocolError):
    """A configuration, upload or sweep past the budget (error code ``over_budget``)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, code="over_budget", field=field)


class Shape(NamedTuple):
    """What the budget needs to know of a session's data besides its configuration.

    Attributes:
        inputs: the network's inputs (the chosen features, or an upload's columns).
        outputs: the network's outputs (the classes of a multi-class problem, else 1).
        train_rows: the rows of the training set.
        grid: whether snapshots carry the grid's maps (2-D inputs).
    """

    inputs: int
    outputs: int
    train_rows: int
    grid: bool


def parameters(inputs: int, hidden: Sequence[int], outputs: int) -> int:
    """The parameters (weights and biases) of a dense network of these widths."""
    total, fan_in = 0, inputs
    for width in [*hidden, outputs]:
        total += (fan_in + 1) * width
        fan_in = width
    return total


def snapshot_bytes(config: Mapping[str, Any], shape: Shape) -> int:
    """The size of a snapshot frame of ``config`` (bytes, an upper bound with its header).

    The grid's maps (one for each feature, each hidden unit, the output and a
    multi-class confidence) at ``resolution`` squared, the weights, and a margin for
    the header and the epochs' loss records; float32 throughout.
    """
    hidden = list(config["hidden"])
    floats = parameters(shape.inputs, hidden, shape.outputs)
    if shape.grid:
        maps = shape.inputs + sum(hidden) + 2
        floats += maps * int(config["resolution"]) ** 2 + shape.outputs**2
    return 4 * floats + 256 * 1024


def _fitting_resolution(config: Mapping[str, Any], shape: Shape) -> int:
    """The largest resolution whose snapshot fits (0 when none does)."""
    low = protocol.LIMITS["resolution"][0]
    for resolution in range(int(config["resolution"]), low - 1, -1):
        if snapshot_bytes({**config, "resolution": resolution}, shape) <= MAX_SNAPSHOT_BYTES:
            return resolution
    return 0


def check_config(config: Mapping[str, Any], shape: Shape) -> None:
    """Refuses a configuration whose network, epoch or snapshot is past the budget.

    Args:
        config: the whole configuration (``hidden`` and ``resolution`` are read).
        shape: the data's part (:class:`Shape`).

    Raises:
        OverBudget: naming the limit passed, the value, and what to lower.
    """
    hidden = list(config["hidden"])
    count = parameters(shape.inputs, hidden, shape.outputs)
    if count > MAX_PARAMETERS:
        raise OverBudget(
            f"hidden {hidden} makes a network of {count:,} parameters; the budget is "
            f"{MAX_PARAMETERS:,} parameters: use fewer or narrower layers",
            field="hidden",
        )
    work = count * shape.train_rows
    if work > MAX_EPOCH_WORK:
        raise OverBudget(
            f"{shape.train_rows:,} training rows x {count:,} parameters is {work:.2g} "
            f"multiply-adds per epoch; the budget is {MAX_EPOCH_WORK:.0g}: use a smaller "
            "network or fewer rows",
            field="hidden",
        )
    size = snapshot_bytes(config, shape)
    if size > MAX_SNAPSHOT_BYTES:
        fitting = _fitting_resolution(config, shape)
        hint = f"a resolution of {fitting} at most" if fitting else "fewer hidden units"
        raise OverBudget(
            f"a snapshot of {sum(hidden)} hidden units at resolution {config['resolution']} "
            f"would be {size / _MB:.0f} MB; snapshots are limited to "
            f"{MAX_SNAPSHOT_BYTES // _MB} MB: use {hint}",
            field="resolution",
        )


def check_sweep(config: Mapping[str, Any], shape: Shape, *, models: int, epochs: int) -> None:
    """Refuses a sweep of ``models`` models and ``epochs`` epochs past the budget.

    Raises:
        OverBudget: naming the limit passed (field ``seeds`` for the models'
            memory, ``epochs`` for the work).
    """
    count = parameters(shape.inputs, list(config["hidden"]), shape.outputs)
    held = models * count
    if held > MAX_SWEEP_MODELS_PARAMETERS:
        raise OverBudget(
            f"a sweep of {models} models x {count:,} parameters holds {held:,} parameters; "
            f"the budget is {MAX_SWEEP_MODELS_PARAMETERS:,}: sweep fewer learning rates or "
            "seeds, or a smaller network",
            field="seeds",
        )
    work = held * epochs * shape.train_rows
    if work > MAX_SWEEP_WORK:
        most = max(0, MAX_SWEEP_WORK // (held * shape.train_rows))
        raise OverBudget(
            f"a sweep of {models} models x {epochs:,} epochs x {shape.train_rows:,} rows x "
            f"{count:,} parameters is {work:.2g} multiply-adds; the budget is "
            f"{MAX_SWEEP_WORK:.0g}: {most:,} epochs at most, or fewer models",
            field="epochs",
        )

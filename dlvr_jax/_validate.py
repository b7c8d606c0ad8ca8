"""Argument checks shared by the public functions ("validate at the door").

Every check runs on the host before anything is traced and raises an
:class:`InvalidType` (a ``TypeError``: wrong kind of thing) or an
:class:`InvalidArgument` (a ``ValueError``: right kind, bad value) whose
message names the argument, shows the value received and says what is
expected, and whose ``field`` attribute names the argument or configuration
field concerned (:func:`field_of`), so that a door (the CLI's flags, the
Playground's form) maps an error to its own control without reading the text.

A configuration declares its constraints once, as a table of rules
(:class:`Interval`, :class:`Options`, :class:`Boolean`, :class:`Text`,
:class:`ListOf`, ``None``), checked by :func:`check_params` in the manner of
scikit-learn's ``_parameter_constraints``; the message is generated from the
table ("learning_rate must be a float in (0, inf), got -1.0").

Internal to the package: its names have no underscore so that the other
modules may use them (``check.show`` formats any value for a message).
Values that are tracers (the function is being called under ``jit`` or
``vmap`` by the user) cannot be inspected: their shapes and dtypes are still
checked, their values are not.

Examples:
    >>> from dlvr_jax import _validate as check
    >>> table = {"lr": check.Interval(float, 0, None, closed="neither"),
    ...          "hidden": check.ListOf(check.Interval(int, 1, 256), max_len=16)}
    >>> check.check_params(table, {"lr": 1, "hidden": [8, 8]}, owner="Config")
    {'lr': 1.0, 'hidden': (8, 8)}
    >>> try:
    ...     check.check_params(table, {"hidden": [8, 0]})
    ... except check.InvalidArgument as error:
    ...     print(error, "| field:", check.field_of(error))
    hidden[1] must be an int in [1, 256], got 0 | field: hidden
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, cast

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Boolean",
    "Closed",
    "Interval",
    "InvalidArgument",
    "InvalidType",
    "ListOf",
    "Options",
    "Rule",
    "Rules",
    "Text",
    "array",
    "check_fields",
    "check_param",
    "check_params",
    "choice",
    "describe",
    "field_of",
    "is_int",
    "is_tracer",
    "positive_int",
    "prng_key",
    "real",
    "show",
    "to_device",
]


class InvalidArgument(ValueError):
    """A value of the right kind that a check refuses (out of range, unknown name...).

    Attributes:
        field: the argument or configuration field concerned (``"learning_rate"``,
            ``"hidden"``), or None when the error concerns no single one.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidType(TypeError):
    """A value of the wrong kind (a string for a number, a float for an int...).

    Attributes:
        field: the argument or configuration field concerned, or None.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def field_of(error: BaseException) -> str | None:
    """The field an error concerns: its ``field``, or that of its explicit cause; else None.

    Examples:
        >>> from dlvr_jax import _validate as check
        >>> check.field_of(check.InvalidArgument("n must be an int >= 1, got 0", field="n"))
        'n'
        >>> check.field_of(ValueError("no field")) is None
        True
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        field = getattr(current, "field", None)
        if isinstance(field, str):
            return field
        current = current.__cause__
    return None


def is_tracer(value: Any) -> bool:
    """True when ``value`` is an abstract value being traced by a JAX transform."""
    return isinstance(value, jax.core.Tracer)


def show(value: Any) -> str:
    """A short representation of ``value`` for an error message (the package's one formatter)."""
    if isinstance(value, (jax.Array, np.ndarray)) and not is_tracer(value) and value.size > 8:
        return f"array of shape {value.shape} and dtype {value.dtype}"
    if is_tracer(value):
        return f"traced array of shape {value.shape} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def is_int(value: Any) -> bool:
    """True for a Python or NumPy integer that is not a bool (a value, not text)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Checks that ``value`` is a static Python integer ``>= minimum``."""
    if is_tracer(value):
        raise InvalidType(
            f"{name} must be a static Python int, got a {show(value)}; "
            f"mark it static under jit (e.g. static_argnames=({name!r},))",
            field=name,
        )
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise InvalidType(f"{name} must be an int >= {minimum}, got {show(value)}", field=name)
    if value < minimum:
        raise InvalidArgument(f"{name} must be an int >= {minimum}, got {value}", field=name)
    return int(value)


def real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> Any:
    """Checks a finite real scalar against an interval; tracers pass unchanged.

    ``low_open``/``high_open`` exclude the end points; ``allow_inf`` admits
    ±inf. Returns the value as a Python float (or the tracer itself).
    """
    if is_tracer(value):
        if value.ndim != 0:
            raise InvalidType(f"{name} must be a scalar, got a {show(value)}", field=name)
        return value
    if isinstance(value, (jax.Array, np.ndarray)):
        if value.ndim != 0:
            raise InvalidType(f"{name} must be a scalar, got {show(value)}", field=name)
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise InvalidType(f"{name} must be a real number, got {show(value)}", field=name)
    number = float(value)
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    interval = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"
    if math.isnan(number) or (math.isinf(number) and not allow_inf):
        raise InvalidArgument(
            f"{name} must be a finite number in {interval}, got {number}", field=name
        )
    if low is not None and (number < low or (low_open and number == low)):
        raise InvalidArgument(f"{name} must be in {interval}, got {value!r}", field=name)
    if high is not None and (number > high or (high_open and number == high)):
        raise InvalidArgument(f"{name} must be in {interval}, got {value!r}", field=name)
    return number


def prng_key(name: str, key: Any) -> jax.Array:
    """Checks that ``key`` is one JAX PRNG key (typed or legacy ``uint32[2]``)."""
    if isinstance(key, (jax.Array, np.ndarray)):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            if key.shape == ():
                return jnp.asarray(key)
        elif key.dtype == np.uint32 and key.shape == (2,):
            return jnp.asarray(key)
        raise InvalidType(
            f"{name} must be a single PRNG key such as jax.random.key(0), got {show(key)}; "
            "to map over several keys use jax.vmap",
            field=name,
        )
    raise InvalidType(
        f"{name} must be a PRNG key such as jax.random.key(0), got {show(key)}", field=name
    )


def array(
    name: str,
    value: Any,
    *,
    ndim: int | tuple[int, ...],
    finite: bool = True,
) -> jax.Array:
    """Converts ``value`` to a numeric JAX array and checks its rank (and finiteness).

    ``ndim`` may be a tuple of accepted ranks. The finiteness check runs only
    on concrete arrays.
    """
    if not is_tracer(value):
        try:
            host = np.asarray(value)
        except Exception as error:  # e.g. a ragged list
            raise InvalidType(
                f"{name} must be an array, got {show(value)}: {error}", field=name
            ) from None
        if host.dtype == object or not (
            np.issubdtype(host.dtype, np.number) or host.dtype == np.bool_
        ):
            raise InvalidType(f"{name} must be a numeric array, got dtype {host.dtype}", field=name)
        if not isinstance(value, jax.Array):
            value = host
    ranks = (ndim,) if isinstance(ndim, int) else ndim
    shape = tuple(value.shape)
    if len(shape) not in ranks:
        wanted = " or ".join(str(r) for r in ranks)
        raise InvalidArgument(f"{name} must have rank {wanted}, got shape {shape}", field=name)
    if (
        finite
        and not is_tracer(value)
        and np.issubdtype(host.dtype, np.inexact)
        and not np.all(np.isfinite(host))
    ):
        bad = np.argwhere(~np.isfinite(host))[0]
        where = ", ".join(str(i) for i in bad)
        raise InvalidArgument(
            f"{name} must be finite, got {host[tuple(bad)]} at index [{where}]", field=name
        )
    return value if is_tracer(value) else to_device(value)


def to_device(value: Any) -> jax.Array:
    """``jnp.asarray(value)``, but a NumPy array is transferred without compiling anything.

    (``jnp.asarray`` of a NumPy array compiles an identity program per shape
    and dtype on this JAX; ``jax.device_put`` gives the same array, same
    dtype, without it.)
    """
    if isinstance(value, np.ndarray):
        return cast(jax.Array, jax.device_put(value))
    return jnp.asarray(value)


def choice(name: str, value: Any, options: tuple[str, ...]) -> str:
    """Checks that ``value`` is one of the strings in ``options``."""
    if not isinstance(value, str):
        raise InvalidType(
            f"{name} must be a string, one of {list(options)}, got {show(value)}", field=name
        )
    if value not in options:
        raise InvalidArgument(
            f"unknown {name} {value!r}; expected one of {list(options)}", field=name
        )
    return value


# ----------------------------------------------------------------------------
# Tables of constraints: one per configuration, checked once.

Closed = Literal["both", "left", "right", "neither"]
"""Which ends of an :class:`Interval` belong to it."""


def _bound(value: float, integral: bool) -> str:
    """A bound as a message shows it: ``0``, ``0.5``, ``1e-06``, ``2147483647``."""
    if integral or (float(value).is_integer() and abs(value) < 1e16):
        return str(int(value))
    return repr(float(value))


class Rule:
    """One constraint on a field's value; a table maps each field to rules.

    A rule says what it expects (:meth:`describe`), whether a value is of its
    kind (:meth:`admits`; a value no rule of a field admits is an
    :class:`InvalidType`) and, for a value of its kind, returns it normalised
    or raises :class:`InvalidArgument` (:meth:`check`).
    """

    def describe(self) -> str:
        """What the rule expects, e.g. ``"an int in [1, inf)"``."""
        raise NotImplementedError

    def admits(self, value: Any) -> bool:
        """Whether ``value`` is of the rule's kind (its range is :meth:`check`'s)."""
        raise NotImplementedError

    def check(self, field: str, value: Any, expected: str) -> Any:
        """``value`` (admitted) normalised, or :class:`InvalidArgument`.

        ``expected`` is the field's whole expectation (every rule's
        description), for the message.
        """
        raise NotImplementedError

    def __str__(self) -> str:
        return self.describe()


def _refuse(field: str, value: Any, expected: str) -> InvalidArgument:
    return InvalidArgument(f"{field} must be {expected}, got {show(value)}", field=field)


@dataclasses.dataclass(frozen=True)
class Interval(Rule):
    """A number of ``kind`` (``int`` or ``float``) between ``low`` and ``high``.

    ``None`` bounds are infinite; ``closed`` (``"both"``, ``"left"``,
    ``"right"``, ``"neither"``) says which ends belong to the interval, an
    infinite end included: ``Interval(float, 0, None, closed="left")`` is
    ``[0, inf)`` and refuses ``inf``, ``closed="both"`` admits it. NaN is in
    no interval. ``int`` admits Python and NumPy integers but not bools, and
    returns an ``int``; ``float`` admits any real number but a bool (and a
    0-d array), and returns a ``float``.
    """

    kind: type
    low: float | None = None
    high: float | None = None
    closed: Closed = "both"
    text: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in (int, float):
            raise InvalidType(f"kind must be int or float, got {show(self.kind)}", field="kind")
        choice("closed", self.closed, ("both", "left", "right", "neither"))
        if self.low is not None and self.high is not None and self.low > self.high:
            raise InvalidArgument(
                f"low must be at most high, got {self.low} > {self.high}", field="low"
            )

    def describe(self) -> str:
        if self.text is not None:
            return self.text
        integral = self.kind is int
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        low = "-inf" if self.low is None else _bound(self.low, integral)
        high = "inf" if self.high is None else _bound(self.high, integral)
        return f"{'an int' if integral else 'a float'} in {left}{low}, {high}{right}"

    def admits(self, value: Any) -> bool:
        if self.kind is int:
            return is_int(value)
        if isinstance(value, (jax.Array, np.ndarray)):
            return (
                not is_tracer(value)
                and value.ndim == 0
                and (
                    np.issubdtype(value.dtype, np.integer)
                    or np.issubdtype(value.dtype, np.floating)
                )
            )
        return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))

    def contains(self, number: float) -> bool:
        """Whether the (admitted) number lies in the interval; NaN never does."""
        if math.isnan(number):
            return False
        low = -math.inf if self.low is None else self.low
        high = math.inf if self.high is None else self.high
        above = number >= low if self.closed in ("both", "left") else number > low
        below = number <= high if self.closed in ("both", "right") else number < high
        return above and below

    def check(self, field: str, value: Any, expected: str) -> Any:
        if isinstance(value, (jax.Array, np.ndarray)):
            value = value.item()
        number: Any = int(value) if self.kind is int else float(value)
        if not self.contains(number):
            raise _refuse(field, value, expected)
        return number


@dataclasses.dataclass(frozen=True, init=False)
class Options(Rule):
    """One of the given values (compared by kind too: ``True`` is not ``1``).

    ``Options("relu", "tanh")`` fixes the values; ``Options(source=names)``
    asks ``names()`` at each check, for a registry that may grow.
    """

    values: tuple[Any, ...]
    source: Callable[[], Iterable[Any]] | None
    text: str | None

    def __init__(
        self,
        *values: Any,
        source: Callable[[], Iterable[Any]] | None = None,
        text: str | None = None,
    ) -> None:
        if bool(values) == (source is not None):
            raise InvalidArgument(
                "Options takes either values or a source, and one of them", field="values"
            )
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "text", text)

    def options(self) -> tuple[Any, ...]:
        """The values allowed now."""
        return self.values if self.source is None else tuple(self.source())

    def describe(self) -> str:
        return self.text if self.text is not None else f"one of {list(self.options())}"

    def admits(self, value: Any) -> bool:
        return any(_same_kind(value, option) for option in self.options())

    def check(self, field: str, value: Any, expected: str) -> Any:
        for option in self.options():
            if _same_kind(value, option) and value == option:
                return option
        raise _refuse(field, value, expected)


def _same_kind(value: Any, option: Any) -> bool:
    if isinstance(option, (bool, np.bool_)) or isinstance(value, (bool, np.bool_)):
        return isinstance(option, (bool, np.bool_)) and isinstance(value, (bool, np.bool_))
    if isinstance(option, str):
        return isinstance(value, str)
    if is_int(option):
        return is_int(value)
    return type(value) is type(option)


@dataclasses.dataclass(frozen=True)
class Boolean(Rule):
    """``True`` or ``False`` (a NumPy bool too); 0 and 1 are not bools."""

    text: str | None = None

    def describe(self) -> str:
        return self.text if self.text is not None else "a bool"

    def admits(self, value: Any) -> bool:
        return isinstance(value, (bool, np.bool_))

    def check(self, field: str, value: Any, expected: str) -> Any:
        return bool(value)


@dataclasses.dataclass(frozen=True)
class Text(Rule):
    """A string of ``min_len`` to ``max_len`` characters (a path, a file name)."""

    min_len: int = 0
    max_len: int | None = None
    text: str | None = None

    def describe(self) -> str:
        if self.text is not None:
            return self.text
        count = _count(self.min_len, self.max_len)
        return f"a string of {count} characters" if count else "a string"

    def admits(self, value: Any) -> bool:
        return isinstance(value, str)

    def check(self, field: str, value: Any, expected: str) -> Any:
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            raise _refuse(field, value, expected)
        return str(value)


def _count(low: int, high: int | None) -> str:
    if high is None:
        return f"at least {low}" if low else ""
    if low == high:
        return str(low)
    return f"{low} to {high}" if low else f"at most {high}"


@dataclasses.dataclass(frozen=True)
class ListOf(Rule):
    """A list or tuple (not a string) of ``min_len`` to ``max_len`` items, each ``item``.

    Each item is checked by ``item``; an item's error names it
    (``hidden[2] must be an int in [1, 256], got 0``) and keeps the field
    (``"hidden"``). ``distinct`` refuses repeated items; the result is built
    by ``into`` (a tuple, for a frozen configuration; ``list`` for JSON).
    """

    item: Rule
    min_len: int = 0
    max_len: int | None = None
    distinct: bool = False
    into: Callable[[list[Any]], Any] = tuple
    noun: str = "items"
    text: str | None = None

    def describe(self) -> str:
        if self.text is not None:
            return self.text
        count = _count(self.min_len, self.max_len)
        distinct = "distinct " if self.distinct else ""
        return f"a list of {count + ' ' if count else ''}{distinct}{self.noun}, each {self.item}"

    def admits(self, value: Any) -> bool:
        return isinstance(value, (list, tuple))

    def check(self, field: str, value: Any, expected: str) -> Any:
        size = len(value)
        if size < self.min_len or (self.max_len is not None and size > self.max_len):
            raise _refuse(field, value, expected)
        items = []
        for i, item in enumerate(value):
            described = self.item.describe()
            if not self.item.admits(item):
                raise InvalidType(
                    f"{field}[{i}] must be {described}, got {show(item)}", field=field
                )
            try:
                items.append(self.item.check(f"{field}[{i}]", item, described))
            except InvalidArgument as error:
                raise InvalidArgument(str(error), field=field) from None
            except InvalidType as error:
                raise InvalidType(str(error), field=field) from None
        if self.distinct and len(set(items)) != len(items):
            raise InvalidArgument(
                f"{field} must list distinct {self.noun}, got {show(value)}", field=field
            )
        return self.into(items)


Rules = Rule | None | tuple["Rule | None", ...] | list["Rule | None"]
"""A table's entry: one rule, ``None`` (the value None), or several (any may hold)."""


def _rules(entry: Rules) -> tuple[Rule | None, ...]:
    return tuple(entry) if isinstance(entry, (tuple, list)) else (entry,)


def describe(entry: Rules) -> str:
    """What a table entry expects: its rules' descriptions joined by "or".

    Examples:
        >>> from dlvr_jax import _validate as check
        >>> check.describe([check.Interval(float, 0, None, closed="neither"), None])
        'a float in (0, inf) or None'
    """
    return " or ".join("None" if rule is None else rule.describe() for rule in _rules(entry))


def check_param(field: str, entry: Rules, value: Any) -> Any:
    """One field's value checked against its rules; returns it normalised.

    The first rule that admits the value and whose range holds it wins.

    Raises:
        InvalidType: when no rule admits the value's kind.
        InvalidArgument: when a rule admits its kind but none its value.
        Both name ``field`` (their ``field`` attribute) and say what is expected.
    """
    rules = _rules(entry)
    expected = describe(entry)
    if value is None and None in rules:
        return None
    admitting = [rule for rule in rules if rule is not None and rule.admits(value)]
    if not admitting:
        raise InvalidType(f"{field} must be {expected}, got {show(value)}", field=field)
    first: InvalidArgument | InvalidType | None = None
    for rule in admitting:
        try:
            return rule.check(field, value, expected)
        except (InvalidArgument, InvalidType) as error:
            first = first or error
    assert first is not None
    raise first


def check_params(
    table: Mapping[str, Rules], values: Mapping[str, Any], *, owner: str | None = None
) -> dict[str, Any]:
    """Each field of ``values`` checked against its entry of ``table``; normalised values.

    Fields of the table that ``values`` lacks are not checked (a partial
    configuration is checked field by field); a field the table lacks is
    refused.

    Args:
        table: field -> rules (see :data:`Rules`).
        values: field -> value.
        owner: what the fields belong to (``"MlpConfig"``), for the message of
            an unknown field.

    Returns:
        ``{field: value}`` in the order of ``values``, each normalised by its
        rule (``1`` -> ``1.0`` for a float, a list of widths -> a tuple).

    Raises:
        InvalidArgument, InvalidType: with ``field`` set, before anything runs.
    """
    checked: dict[str, Any] = {}
    for field, value in values.items():
        if field not in table:
            where = f"{owner} has no field" if owner else "unknown field"
            raise InvalidArgument(
                f"{where} {show(field)}; expected one of {sorted(table)}", field=str(field)
            )
        checked[field] = check_param(field, table[field], value)
    return checked


def check_fields(config: Any, table: Mapping[str, Rules]) -> None:
    """Checks a dataclass's fields against ``table`` and stores their normalised values.

    For a configuration's ``__post_init__``: each field named in ``table`` is
    checked (:func:`check_params`, the class's name as owner) and replaced by
    its normalised value (a frozen dataclass too), so that ``hidden=[8, 8]``
    is kept as ``(8, 8)`` and ``learning_rate=1`` as ``1.0``. Fields the table
    does not name are left to the class (cross-field rules).

    Raises:
        InvalidType: if ``config`` is not a dataclass instance, or a table
            entry names no field of it.
        InvalidArgument, InvalidType: from :func:`check_params`.

    Examples:
        >>> import dataclasses
        >>> from dlvr_jax import _validate as check
        >>> @dataclasses.dataclass(frozen=True)
        ... class Config:
        ...     hidden: tuple[int, ...] = (8,)
        ...     def __post_init__(self):
        ...         check.check_fields(self, {"hidden": check.ListOf(check.Interval(int, 1))})
        >>> Config([4, 2]).hidden
        (4, 2)
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise InvalidType(
            f"config must be a dataclass instance, got {show(config)}", field="config"
        )
    names = {field.name for field in dataclasses.fields(config)}
    missing = sorted(set(table) - names)
    if missing:
        raise InvalidType(
            f"the table names {missing} that {type(config).__name__} does not have", field="table"
        )
    values = {name: getattr(config, name) for name in table}
    for name, value in check_params(table, values, owner=type(config).__name__).items():
        object.__setattr__(config, name, value)

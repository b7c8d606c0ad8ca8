"""Tests of ``dlvr_jax._validate``: errors that carry their field, and tables of constraints."""

from __future__ import annotations

import dataclasses
import math
import pickle

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlvr_jax import _validate as check

CLOSED = ("both", "left", "right", "neither")


def _inside(value: float, low: float | None, high: float | None, closed: str) -> bool:
    """The reference membership, written independently of Interval.contains."""
    if value != value:  # NaN
        return False
    low_ok = low is None or value > low or (value == low and closed in ("both", "left"))
    high_ok = high is None or value < high or (value == high and closed in ("both", "right"))
    if low is None and value == -math.inf:
        low_ok = closed in ("both", "left")
    if high is None and value == math.inf:
        high_ok = closed in ("both", "right")
    return low_ok and high_ok


def _bounds(values: st.SearchStrategy) -> st.SearchStrategy:
    return st.tuples(st.none() | values, st.none() | values).map(
        lambda pair: tuple(sorted(pair)) if None not in pair else pair
    )


# ----------------------------------------------------------------------------
# Errors carry their field.


def test_errors_are_value_and_type_errors_with_a_field():
    assert issubclass(check.InvalidArgument, ValueError)
    assert issubclass(check.InvalidType, TypeError)
    error = check.InvalidArgument("n must be an int >= 1, got 0", field="n")
    assert str(error) == "n must be an int >= 1, got 0"
    assert error.field == "n"
    assert check.field_of(error) == "n"
    assert check.field_of(ValueError("plain")) is None
    assert check.InvalidType("no field").field is None


def test_field_of_follows_the_explicit_cause():
    def read() -> None:
        try:
            check.positive_int("epochs", 0)
        except ValueError as inner:
            raise RuntimeError("while reading the config") from inner

    with pytest.raises(RuntimeError) as info:
        read()
    assert check.field_of(info.value) == "epochs"


def test_errors_keep_their_field_through_pickle():
    for error in (check.InvalidArgument("bad", field="lr"), check.InvalidType("bad", field="n")):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error)
        assert str(again) == "bad"
        assert again.field == error.field


@pytest.mark.parametrize(
    ("call", "error", "field", "message"),
    [
        (lambda: check.positive_int("n", 0), check.InvalidArgument, "n", "n must be an int >= 1"),
        (lambda: check.positive_int("n", True), check.InvalidType, "n", "n must be an int"),
        (lambda: check.real("lr", -1.0, low=0.0), check.InvalidArgument, "lr", r"lr must be in"),
        (lambda: check.real("lr", "x"), check.InvalidType, "lr", "lr must be a real number"),
        (lambda: check.real("lr", math.nan), check.InvalidArgument, "lr", "finite number"),
        (lambda: check.choice("task", "x", ("a",)), check.InvalidArgument, "task", "unknown task"),
        (lambda: check.choice("task", 3, ("a",)), check.InvalidType, "task", "must be a string"),
        (lambda: check.array("x", [[1.0]], ndim=1), check.InvalidArgument, "x", "x must have rank"),
        (lambda: check.array("x", [math.inf], ndim=1), check.InvalidArgument, "x", "finite"),
        (lambda: check.array("x", ["a"], ndim=1), check.InvalidType, "x", "numeric array"),
        (lambda: check.prng_key("key", 0), check.InvalidType, "key", "PRNG key"),
    ],
)
def test_every_check_helper_names_its_field(call, error, field, message):
    with pytest.raises(error, match=message) as info:
        call()
    assert info.value.field == field


def test_a_traced_int_names_its_field():
    def f(n):
        check.positive_int("n", n)

    with pytest.raises(check.InvalidType, match="static Python int") as info:
        jax.jit(f)(3)
    assert info.value.field == "n"


# ----------------------------------------------------------------------------
# Rules: values inside pass unchanged, values outside raise with the field.


@given(
    bounds=_bounds(st.integers(-50, 50)),
    closed=st.sampled_from(CLOSED),
    value=st.integers(-60, 60) | st.integers(),
)
def test_an_int_interval_passes_exactly_its_members(bounds, closed, value):
    low, high = bounds
    rule = check.Interval(int, low, high, closed=closed)
    if _inside(value, low, high, closed):
        out = check.check_param("width", rule, value)
        assert out == value
        assert type(out) is int
    else:
        with pytest.raises(check.InvalidArgument) as info:
            check.check_param("width", rule, value)
        assert info.value.field == "width"
        assert str(info.value) == f"width must be {rule.describe()}, got {value!r}"


@given(
    bounds=_bounds(st.floats(-10, 10, allow_nan=False)),
    closed=st.sampled_from(CLOSED),
    value=st.floats() | st.integers(-20, 20) | st.sampled_from([math.inf, -math.inf, math.nan]),
)
def test_a_float_interval_passes_exactly_its_members(bounds, closed, value):
    low, high = bounds
    rule = check.Interval(float, low, high, closed=closed)
    if _inside(value, low, high, closed):
        out = check.check_param("learning_rate", rule, value)
        assert out == value
        assert type(out) is float
    else:
        with pytest.raises(check.InvalidArgument, match=r"^learning_rate must be a float in "):
            check.check_param("learning_rate", rule, value)


@given(closed=st.sampled_from(CLOSED), bounds=_bounds(st.floats(-1e300, 1e300)))
def test_nan_is_in_no_interval(closed, bounds):
    rule = check.Interval(float, *bounds, closed=closed)
    for nan in (math.nan, np.float32("nan"), np.array(math.nan)):
        with pytest.raises(check.InvalidArgument) as info:
            check.check_param("tol", rule, nan)
        assert info.value.field == "tol"


def test_infinity_belongs_only_to_a_closed_infinite_end():
    assert (
        check.check_param("a", check.Interval(float, 0, None, closed="both"), math.inf) == math.inf
    )
    with pytest.raises(check.InvalidArgument, match=r"a must be a float in \[0, inf\), got inf"):
        check.check_param("a", check.Interval(float, 0, None, closed="left"), math.inf)
    with pytest.raises(check.InvalidArgument):
        check.check_param("a", check.Interval(float, None, None, closed="neither"), -math.inf)


@given(flag=st.booleans(), closed=st.sampled_from(CLOSED))
def test_bools_are_not_numbers(flag, closed):
    for kind in (int, float):
        with pytest.raises(check.InvalidType) as info:
            check.check_param("seed", check.Interval(kind, None, None, closed=closed), flag)
        assert info.value.field == "seed"
    with pytest.raises(check.InvalidType):
        check.check_param("seed", check.Interval(int, 0, 1), np.bool_(flag))
    with pytest.raises(check.InvalidType):
        check.check_param("seed", check.Options(0, 1), flag)
    assert check.check_param("residual", check.Boolean(), np.bool_(flag)) is flag


@given(number=st.integers(0, 1) | st.floats(0, 1))
def test_numbers_are_not_bools(number):
    with pytest.raises(check.InvalidType, match="residual must be a bool") as info:
        check.check_param("residual", check.Boolean(), number)
    assert info.value.field == "residual"


@given(value=st.floats(-5, 5) | st.integers(-5, 5))
def test_an_int_interval_refuses_floats_as_a_type(value):
    if isinstance(value, float):
        with pytest.raises(check.InvalidType, match=r"n must be an int in \[1, inf\)"):
            check.check_param("n", check.Interval(int, 1, None, closed="left"), value)


def test_numpy_scalars_and_0d_arrays_are_numbers():
    rule = check.Interval(float, 0, 1)
    assert check.check_param("p", rule, np.float32(0.5)) == 0.5
    assert check.check_param("p", rule, np.array(0.25)) == 0.25
    assert check.check_param("n", check.Interval(int, 0, None), np.int64(7)) == 7
    with pytest.raises(check.InvalidType):
        check.check_param("p", rule, np.ones(2))


@given(
    options=st.lists(st.text(max_size=5), min_size=1, max_size=5, unique=True),
    value=st.text(max_size=5) | st.integers() | st.none(),
)
def test_options_pass_exactly_their_values(options, value):
    rule = check.Options(*options)
    if isinstance(value, str) and value in options:
        assert check.check_param("activation", rule, value) == value
    else:
        error = check.InvalidArgument if isinstance(value, str) else check.InvalidType
        with pytest.raises(error) as info:
            check.check_param("activation", rule, value)
        assert info.value.field == "activation"
        assert str(info.value).startswith(f"activation must be one of {options!r}, got ")


def test_options_from_a_source_are_asked_at_each_check():
    registry = ["relu"]
    rule = check.Options(source=lambda: registry)
    with pytest.raises(check.InvalidArgument):
        check.check_param("activation", rule, "gelu")
    registry.append("gelu")
    assert check.check_param("activation", rule, "gelu") == "gelu"
    with pytest.raises(check.InvalidArgument):
        check.Options()


@given(
    widths=st.lists(st.integers(-3, 300), max_size=20),
    kind=st.sampled_from([list, tuple]),
)
def test_a_list_of_widths_passes_exactly_its_members(widths, kind):
    rule = check.ListOf(check.Interval(int, 1, 256), max_len=16, noun="widths")
    value = kind(widths)
    good_length = len(widths) <= 16
    bad = [i for i, w in enumerate(widths) if not 1 <= w <= 256]
    if good_length and not bad:
        assert check.check_param("hidden", rule, value) == tuple(widths)
        return
    with pytest.raises(check.InvalidArgument) as info:
        check.check_param("hidden", rule, value)
    assert info.value.field == "hidden"
    if good_length:
        i = bad[0]
        assert str(info.value) == f"hidden[{i}] must be an int in [1, 256], got {widths[i]}"
    else:
        assert str(info.value).startswith(
            "hidden must be a list of at most 16 widths, each an int in [1, 256], got "
        )


def test_a_list_refuses_strings_wrong_items_and_repeats():
    rule = check.ListOf(check.Interval(int, 1, None), min_len=1, into=list)
    with pytest.raises(check.InvalidType, match="hidden must be a list of at least 1 items"):
        check.check_param("hidden", rule, "8,8")
    with pytest.raises(
        check.InvalidType, match=r"hidden\[1\] must be an int in \[1, inf\]"
    ) as info:
        check.check_param("hidden", rule, [8, True])
    assert info.value.field == "hidden"
    with pytest.raises(check.InvalidArgument, match="hidden must be a list of at least 1"):
        check.check_param("hidden", rule, [])
    assert check.check_param("hidden", rule, (3, 4)) == [3, 4]
    features = check.ListOf(check.Options("x1", "x2"), min_len=1, distinct=True, noun="names")
    with pytest.raises(check.InvalidArgument, match="features must list distinct names") as info:
        check.check_param("features", features, ["x1", "x1"])
    assert info.value.field == "features"
    with pytest.raises(check.InvalidArgument, match=r"features\[1\] must be one of \['x1', 'x2'\]"):
        check.check_param("features", features, ["x1", "x3"])


@given(text=st.text(max_size=12))
def test_text_passes_its_lengths(text):
    rule = check.Text(min_len=1, max_len=8)
    if 1 <= len(text) <= 8:
        assert check.check_param("name", rule, text) == text
    else:
        with pytest.raises(
            check.InvalidArgument, match="name must be a string of 1 to 8 characters"
        ):
            check.check_param("name", rule, text)


# ----------------------------------------------------------------------------
# Tables.

TABLE: dict[str, check.Rules] = {
    "learning_rate": check.Interval(float, 0, None, closed="neither"),
    "clip_norm": (check.Interval(float, 0, None, closed="neither"), None),
    "epochs": check.Interval(int, 1, None, closed="left"),
    "hidden": check.ListOf(check.Interval(int, 1, None, closed="left"), noun="widths"),
    "activation": check.Options("relu", "tanh"),
    "pocket": check.Boolean(),
    "data_path": (check.Text(), None),
}


def test_a_table_generates_its_messages():
    cases = {
        "learning_rate": (-1.0, "learning_rate must be a float in (0, inf), got -1.0"),
        "clip_norm": (0, "clip_norm must be a float in (0, inf) or None, got 0"),
        "epochs": (0, "epochs must be an int in [1, inf), got 0"),
        "activation": ("relu6", "activation must be one of ['relu', 'tanh'], got 'relu6'"),
        "data_path": (3, "data_path must be a string or None, got 3"),
        "pocket": ("yes", "pocket must be a bool, got 'yes'"),
    }
    for field, (value, message) in cases.items():
        with pytest.raises((check.InvalidArgument, check.InvalidType)) as info:
            check.check_params(TABLE, {field: value}, owner="MlpConfig")
        assert str(info.value) == message
        assert info.value.field == field


def test_a_table_checks_what_is_present_and_normalises_it():
    values = {"epochs": np.int32(3), "learning_rate": 1, "hidden": [4, 2], "clip_norm": None}
    checked = check.check_params(TABLE, values)
    assert checked == {"epochs": 3, "learning_rate": 1.0, "hidden": (4, 2), "clip_norm": None}
    assert [type(v) for v in checked.values()] == [int, float, tuple, type(None)]
    assert list(checked) == list(values)
    assert check.check_params(TABLE, {}) == {}


def test_a_table_refuses_an_unknown_field_naming_it():
    with pytest.raises(check.InvalidArgument, match="MlpConfig has no field 'layers'") as info:
        check.check_params(TABLE, {"layers": 3}, owner="MlpConfig")
    assert info.value.field == "layers"
    assert "'learning_rate'" in str(info.value)
    with pytest.raises(check.InvalidArgument, match="unknown field 'layers'"):
        check.check_params(TABLE, {"layers": 3})


def test_messages_show_values_with_show():
    with pytest.raises(check.InvalidType) as info:
        check.check_params(TABLE, {"epochs": "9" * 200})
    assert str(info.value) == f"epochs must be an int in [1, inf), got {check.show('9' * 200)}"
    assert len(str(info.value)) < 130


def test_describe_joins_the_rules():
    assert check.describe(TABLE["clip_norm"]) == "a float in (0, inf) or None"
    assert check.describe(check.Interval(float, 1e-6, 0.5, closed="right")) == (
        "a float in (1e-06, 0.5]"
    )
    assert check.describe(check.Interval(int, 0, 2**32, closed="left")) == (
        "an int in [0, 4294967296)"
    )
    assert str(check.Options("a", text="a name")) == "a name"


def test_rules_refuse_a_malformed_declaration():
    with pytest.raises(check.InvalidType):
        check.Interval(str, 0, 1)
    with pytest.raises(check.InvalidArgument):
        check.Interval(int, 2, 1)
    with pytest.raises(check.InvalidArgument, match="unknown closed"):
        check.Interval(int, 0, 1, closed="open")  # type: ignore[arg-type]


@settings(max_examples=50)
@given(value=st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=4)))
def test_any_value_is_either_accepted_or_refused_with_its_field(value):
    for field, entry in TABLE.items():
        errors = []
        try:
            check.check_param(field, entry, value)
        except (check.InvalidArgument, check.InvalidType) as error:
            errors.append(error)
        for error in errors:
            assert error.field == field
            assert str(error).startswith(field)


@dataclasses.dataclass(frozen=True)
class _Config:
    learning_rate: float = 1e-3
    hidden: tuple[int, ...] = (8, 8)
    name: str = "run"

    def __post_init__(self) -> None:
        check.check_fields(self, {key: TABLE[key] for key in ("learning_rate", "hidden")})


def test_a_frozen_configuration_checks_and_normalises_its_fields():
    config = _Config(learning_rate=1, hidden=[4, 2])
    assert config.learning_rate == 1.0
    assert type(config.learning_rate) is float
    assert config.hidden == (4, 2)
    with pytest.raises(check.InvalidArgument, match=r"hidden\[0\] must be an int") as info:
        _Config(hidden=[0])
    assert info.value.field == "hidden"
    with pytest.raises(check.InvalidType, match="does not have"):
        check.check_fields(config, {"epochs": TABLE["epochs"]})
    with pytest.raises(check.InvalidType, match="dataclass instance"):
        check.check_fields({"hidden": [1]}, TABLE)

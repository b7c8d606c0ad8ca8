"""Tests of the descent toolkit dlvr_jax.descent, its figures and the ``optimize`` command.

The laws are checked exactly: on f(x) = x² + 4x + 4 gradient descent gives
x_k + 2 = (1 − 2η)^k (x_0 + 2) at every step, so a wrong sign or a wrong step
size fails at once.
"""

from __future__ import annotations

import functools
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from dlvr_jax import cli, data, descent, optim, viz

# ---------------------------------------------------------------------------
# Gradient descent on the chapter's quadratic.


@settings(max_examples=15)
@given(
    eta=st.floats(0.01, 0.99).filter(lambda e: abs(e - 0.5) > 1e-3),
    x0=st.floats(-50.0, 50.0).filter(lambda x: abs(x + 2.0) > 1e-3),
)
def test_gd_on_the_quadratic_follows_the_exact_contraction(eta, x0):
    with jax.enable_x64(True):
        path = descent.gradient_descent(
            descent.quadratic, jnp.float64(x0), learning_rate=eta, max_steps=60
        )
        steps = int(path.steps)
        xs = np.asarray(path.xs)
        assert xs.dtype == np.float64
        k = np.arange(steps + 1)
        expected = (1.0 - 2.0 * eta) ** k * (x0 + 2.0)  # signed: catches the wrong direction
        np.testing.assert_allclose(xs[: steps + 1] + 2.0, expected, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(
            np.asarray(path.values)[: steps + 1], expected**2, rtol=1e-8, atol=1e-14
        )
        np.testing.assert_allclose(
            np.asarray(path.grad_norms)[: steps + 1], 2 * np.abs(expected), rtol=1e-8, atol=1e-15
        )
        assert not bool(path.diverged)
        # Padding repeats the last iterate.
        np.testing.assert_array_equal(xs[steps:], xs[steps])
        if bool(path.converged):
            # It stopped at the first step whose gradient or step fell below tol.
            error = np.abs(expected[-1])
            assert 2 * error < 1e-6 or 2 * eta * np.abs(expected[-2]) < 1e-6
            assert np.all(2 * np.abs(expected[:-1]) >= 1e-6)
        else:
            assert steps == 60


def test_gd_converges_to_minus_two_and_the_stopping_rule_counts_steps():
    path = descent.gradient_descent(descent.quadratic, 3.0, learning_rate=0.1)
    assert bool(path.converged)
    assert not bool(path.diverged)
    assert float(path.xs[-1]) == pytest.approx(-2.0, abs=1e-5)
    # |x_{k+1} - x_k| = 2η |x_k + 2| = 0.8^k < 1e-6 first at k = 62: the 63rd step stops.
    assert int(path.steps) == 63
    assert path.xs.shape == (1001,)


@settings(max_examples=10)
@given(eta=st.floats(1.05, 3.0), x0=st.floats(-20.0, 20.0).filter(lambda x: abs(x + 2) > 0.1))
def test_a_learning_rate_above_one_diverges_and_says_so(eta, x0):
    with jax.enable_x64(True):
        path = descent.gradient_descent(
            descent.quadratic, jnp.float64(x0), learning_rate=eta, max_steps=400
        )
        steps = int(path.steps)
        assert bool(path.diverged)
        assert not bool(path.converged)
        assert np.all(np.isfinite(path.xs))
        assert np.all(np.isfinite(path.values))
        assert np.all(np.abs(path.xs) <= 1e6)
        # Every recorded iterate still follows the law; the next one would pass 1e6.
        expected = (1.0 - 2.0 * eta) ** np.arange(steps + 1) * (x0 + 2.0)
        np.testing.assert_allclose(np.asarray(path.xs)[: steps + 1] + 2, expected, rtol=1e-9)
        assert abs((1.0 - 2.0 * eta) * expected[-1] - 2.0) > 1e6


def test_overflow_is_reported_as_divergence_not_nan():
    # With no threshold to speak of, float32 overflows to inf: still no NaN in the path.
    path = descent.gradient_descent(
        descent.quadratic, 1.0, learning_rate=5.0, max_steps=200, divergence_threshold=3e38
    )
    assert bool(path.diverged)
    assert np.all(np.isfinite(path.values))
    assert np.all(np.isfinite(path.xs))
    assert int(path.steps) < 200


def test_saddle_escapes_and_is_reported_as_diverged():
    saddle = descent.objective("saddle")
    path = descent.gradient_descent(saddle.f, saddle.start, learning_rate=0.1, max_steps=500)
    assert bool(path.diverged)
    assert abs(float(path.xs[-1, 0])) < 1e-6  # x contracts to the saddle ...
    assert abs(float(path.xs[-1, 1])) > 1e5  # ... while y escapes


# ---------------------------------------------------------------------------
# Toy objectives and Optax optimizers.


@pytest.mark.parametrize("name", sorted(descent.OBJECTIVES))
def test_each_objective_has_its_stated_minima(name):
    toy = descent.objective(name)
    with jax.enable_x64(True):
        for point in toy.minima:
            x = jnp.asarray(point, jnp.float64)
            assert float(toy.f(x)) == pytest.approx(toy.f_star, abs=1e-9)
            assert float(jnp.linalg.norm(jax.grad(toy.f)(x))) < 1e-4
        start = jnp.asarray(toy.start, jnp.float64)
        assert float(toy.f(start)) > toy.f_star
    x0, x1 = toy.extent[:2]
    assert x0 < toy.start[0] < x1


def test_every_optax_optimizer_in_the_comparison_decreases_f_on_the_bowl():
    bowl = descent.objective("bowl")
    methods = ("gd", *optim.names())
    paths = descent.compare(
        bowl.f, bowl.start, optimizers=methods, learning_rate=0.05, max_steps=300
    )
    assert list(paths) == list(methods)
    f0 = float(bowl.f(jnp.asarray(bowl.start)))
    for name, path in paths.items():
        assert not bool(path.diverged), name
        assert float(path.values[0]) == pytest.approx(f0)
        assert float(path.values[-1]) < 0.5 * f0, name
    # On a deterministic f, Optax's sgd makes gradient descent's steps.
    np.testing.assert_allclose(paths["sgd"].xs, paths["gd"].xs, rtol=1e-6, atol=1e-7)


def test_minimize_matches_a_hand_written_optax_loop():
    tx = optim.optimizer("adam", 0.1)
    path = descent.minimize(descent.rosenbrock, [-1.2, 1.0], tx, max_steps=20, tol=0.0)
    x = jnp.array([-1.2, 1.0])
    state = tx.init(x)
    for k in range(20):
        updates, state = tx.update(jax.grad(descent.rosenbrock)(x), state, x)
        x = x + updates
        np.testing.assert_allclose(path.xs[k + 1], x, rtol=1e-5, atol=1e-6)
    assert int(path.steps) == 20


# ---------------------------------------------------------------------------
# Stochastic and mini-batch gradient descent on least squares.


@functools.cache
def _problem(seed: int, n: int) -> descent.LeastSquares:
    return descent.quadratic_samples(jax.random.key(seed), n)


@settings(max_examples=6)
@given(seed=st.integers(0, 2**32 - 1), eta=st.sampled_from([0.01, 0.1, 0.3]))
def test_minibatch_with_batch_n_is_full_gradient_descent_bit_for_bit(seed, eta):
    problem = _problem(seed % 7, 32)
    w0 = jnp.zeros(3)

    def loss(w):
        return descent.least_squares_loss(w, problem.features, problem.targets)

    full = descent.gradient_descent(loss, w0, learning_rate=eta, max_steps=40, tol=0.0)
    batch = descent.sgd_path(
        jax.random.key(seed), problem, w0, learning_rate=eta, batch_size=32, epochs=40
    )
    assert int(batch.steps) == int(full.steps) == 40
    np.testing.assert_array_equal(batch.xs, full.xs)
    np.testing.assert_array_equal(batch.values, full.values)
    # ... and a smaller batch is a different algorithm (the test is not vacuous).
    half = descent.sgd_path(
        jax.random.key(seed), problem, w0, learning_rate=eta, batch_size=16, epochs=20
    )
    assert not np.array_equal(half.xs[-1], full.xs[-1])


def test_sgd_recovers_the_coefficients_and_is_reproducible():
    problem = descent.quadratic_samples(jax.random.key(0), 200, noise=0.1)
    w_star, f_star = descent.least_squares_solution(problem)
    np.testing.assert_allclose(w_star, [1.0, 4.0, 4.0], atol=0.1)
    run = functools.partial(
        descent.sgd_path,
        problem=problem,
        w0=jnp.zeros(3),
        learning_rate=0.05,
        batch_size=10,
        epochs=40,
    )
    path = run(jax.random.key(1))
    assert path.xs.shape == (40 * 20 + 1, 3)
    np.testing.assert_allclose(path.xs[-1], w_star, atol=0.1)
    assert float(path.values[-1]) < float(f_star) + 0.01
    np.testing.assert_array_equal(run(jax.random.key(1)).xs, path.xs)
    assert not np.array_equal(run(jax.random.key(2)).xs, path.xs)


def test_convergence_grid_vmaps_over_learning_rates():
    problem = _problem(0, 20)
    grid = descent.convergence_grid(
        jax.random.key(3),
        problem,
        jnp.zeros(3),
        learning_rates=[0.01, 0.1],
        batch_sizes=[5, 20],
        epochs=3,
    )
    assert set(grid) == {(0.01, 5), (0.1, 5), (0.01, 20), (0.1, 20)}
    assert grid[(0.1, 5)].xs.shape == (13, 3)
    assert grid[(0.1, 20)].xs.shape == (4, 3)
    single = descent.sgd_path(
        jax.random.key(3), problem, jnp.zeros(3), learning_rate=0.1, batch_size=5, epochs=3
    )
    np.testing.assert_allclose(grid[(0.1, 5)].xs, single.xs, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------
# The minibatch order: the documented function of (key, epoch), new each epoch.
#
# With one-hot features (Φ = I, d = n) a step on batch B moves exactly the
# coordinates in B: w_i <- w_i - η/|B| (w_i - y_i) for i in B. So the rows that
# sgd_path visits at step k can be read off its path, without trusting its code.


def _one_hot_problem(n: int) -> descent.LeastSquares:
    return descent.LeastSquares(jnp.eye(n), jnp.arange(1.0, n + 1.0))


def _visited_batches(path: descent.Path) -> list[tuple[int, ...]]:
    """The rows each step of a one-hot path visited, as sorted tuples."""
    xs = np.asarray(path.xs)
    return [
        tuple(int(i) for i in np.flatnonzero(xs[k + 1] != xs[k])) for k in range(int(path.steps))
    ]


def _documented_batches(key, epoch: int, n: int, batch_size: int) -> list[tuple[int, ...]]:
    """Epoch ``epoch``'s batches as sgd_path documents them: data.batch_order, rows sorted."""
    index, _ = data.batch_order(key, epoch, n, batch_size, remainder="drop")
    return [tuple(sorted(row)) for row in np.asarray(index).tolist()]


# Each example is a new (n, batch size, epochs): a new program. 8 in CI cover the law
# (the bit-for-bit test below pins three shapes); the fuzz profile draws ten times more.
BATCH_EXAMPLES = max(1, settings.default.max_examples * 2 // 5)


@pytest.mark.slow
@settings(max_examples=BATCH_EXAMPLES)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 24),
    batch_fraction=st.floats(0.0, 1.0),
    epochs=st.integers(1, 4),
)
def test_the_batches_sgd_path_visits_are_those_of_data_batch_order(seed, n, batch_fraction, epochs):
    # Any n, any batch size (dividing n or not, 1 and n included).
    batch_size = 1 + int(batch_fraction * (n - 1))
    key = jax.random.key(seed)
    path = descent.sgd_path(
        key,
        _one_hot_problem(n),
        jnp.zeros(n),
        learning_rate=0.5,
        batch_size=batch_size,
        epochs=epochs,
    )
    per_epoch = n // batch_size
    assert int(path.steps) == epochs * per_epoch
    visited = _visited_batches(path)
    expected = [
        batch for e in range(epochs) for batch in _documented_batches(key, e, n, batch_size)
    ]
    assert visited == expected


@settings(max_examples=BATCH_EXAMPLES)  # each example a new program, as above
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(12, 40),
    batch_fraction=st.floats(0.0, 1.0),
)
def test_consecutive_epochs_visit_the_examples_in_different_orders(seed, n, batch_fraction):
    # At least three batches per epoch, so that two independent shuffles giving the
    # same batches in the same order (at most 4! ** 3 / 12! = 1 / 34650) is out of the question.
    batch_size = 1 + int(batch_fraction * (n // 3 - 1))
    per_epoch = n // batch_size
    assert per_epoch >= 3
    epochs = 3
    path = descent.sgd_path(
        jax.random.key(seed),
        _one_hot_problem(n),
        jnp.zeros(n),
        learning_rate=0.5,
        batch_size=batch_size,
        epochs=epochs,
    )
    visited = _visited_batches(path)
    by_epoch = [visited[e * per_epoch : (e + 1) * per_epoch] for e in range(epochs)]
    for e in range(epochs - 1):
        assert by_epoch[e] != by_epoch[e + 1], f"epochs {e} and {e + 1} visit the same batches"
    # Every epoch (the remainder dropped) visits distinct examples.
    for batches in by_epoch:
        rows = [i for batch in batches for i in batch]
        assert len(set(rows)) == len(rows) == per_epoch * batch_size


@pytest.mark.parametrize(("n", "batch_size", "epochs"), [(23, 5, 4), (20, 4, 3), (17, 1, 2)])
def test_sgd_path_is_plain_sgd_over_data_batch_order_bit_for_bit(n, batch_size, epochs):
    # Rebuild the whole path by hand from the documented batches, one jitted step at a time.
    problem = descent.quadratic_samples(jax.random.key(n), n)
    key = jax.random.key(7 * n + batch_size)
    learning_rate = 0.05
    path = descent.sgd_path(
        key,
        problem,
        jnp.zeros(3),
        learning_rate=learning_rate,
        batch_size=batch_size,
        epochs=epochs,
    )

    @jax.jit
    def step(w, rows, learning_rate):
        grad = jax.grad(descent.least_squares_loss)(
            w, problem.features[rows], problem.targets[rows]
        )
        return w - learning_rate * grad

    w = jnp.zeros(3)
    xs = [w]
    for e in range(epochs):
        for rows in _documented_batches(key, e, n, batch_size):
            w = step(w, jnp.asarray(rows), jnp.asarray(learning_rate, w.dtype))
            xs.append(w)
    np.testing.assert_array_equal(path.xs, np.stack(xs))
    # Reusing epoch 0's order in every epoch gives another path (the comparison has teeth).
    wrong = jnp.zeros(3)
    for _ in range(epochs):
        for rows in _documented_batches(key, 0, n, batch_size):
            wrong = step(wrong, jnp.asarray(rows), jnp.asarray(learning_rate, wrong.dtype))
    assert not np.array_equal(path.xs[-1], wrong)


# ---------------------------------------------------------------------------
# Bad input: a clear error, before anything is compiled.


@pytest.fixture
def no_compile(monkeypatch):
    # The documented seam (dlvr_jax.descent's module docstring): the compiled cores
    # ``_descend`` and ``_sgd_descend`` are replaced so that reaching them fails.
    def fail(*args, **kwargs):
        raise AssertionError("the compiled core ran before the arguments were checked")

    monkeypatch.setattr(descent, "_descend", fail)
    monkeypatch.setattr(descent, "_sgd_descend", fail)


@pytest.mark.usefixtures("no_compile")
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: descent.gradient_descent(3.0, 0.0, learning_rate=0.1), TypeError, "f must be"),
        (
            lambda: descent.gradient_descent(descent.bowl, [1.0, np.nan], learning_rate=0.1),
            ValueError,
            "x0 must be finite",
        ),
        (
            lambda: descent.gradient_descent(descent.quadratic, 1.0, learning_rate=0.0),
            ValueError,
            "learning_rate",
        ),
        (
            lambda: descent.gradient_descent(descent.quadratic, 1.0, learning_rate=-1.0),
            ValueError,
            "learning_rate",
        ),
        (
            lambda: descent.gradient_descent(
                descent.quadratic, 1.0, learning_rate=0.1, max_steps=0
            ),
            ValueError,
            "max_steps",
        ),
        (
            lambda: descent.gradient_descent(descent.quadratic, 1.0, learning_rate=0.1, tol=-1.0),
            ValueError,
            "tol",
        ),
        (
            lambda: descent.gradient_descent(descent.quadratic, [[1.0]], learning_rate=0.1),
            ValueError,
            "x0 must have rank",
        ),
        (
            lambda: descent.gradient_descent(lambda x: x, [1.0, 2.0], learning_rate=0.1),
            TypeError,
            "float scalar",
        ),
        (
            lambda: descent.minimize(descent.bowl, [1.0, 1.0], "adam"),
            TypeError,
            "optimizer must be",
        ),
        (
            lambda: descent.compare(descent.bowl, [1.0, 1.0], optimizers=("gd", "lbfgs")),
            ValueError,
            "unknown optimizer",
        ),
        (
            lambda: descent.sgd_path(
                jax.random.key(0),
                _problem(0, 20),
                jnp.zeros(3),
                learning_rate=0.1,
                batch_size=21,
                epochs=1,
            ),
            ValueError,
            "batch_size must be at most n = 20",
        ),
        (
            lambda: descent.sgd_path(
                jax.random.key(0),
                _problem(0, 20),
                jnp.zeros(2),
                learning_rate=0.1,
                batch_size=5,
                epochs=1,
            ),
            ValueError,
            "w0 must have shape (3,)",
        ),
        (
            lambda: descent.sgd_path(
                jax.random.key(0),
                _problem(0, 20),
                jnp.zeros(3),
                learning_rate=0.0,
                batch_size=5,
                epochs=1,
            ),
            ValueError,
            "learning_rate",
        ),
        (
            lambda: descent.convergence_grid(
                jax.random.key(0),
                _problem(0, 20),
                jnp.zeros(3),
                learning_rates=[0.1],
                batch_sizes=[5, 21],
                epochs=1,
            ),
            ValueError,
            "batch_sizes[1] must be at most n = 20, got 21",
        ),
        (
            lambda: descent.convergence_grid(
                jax.random.key(0),
                _problem(0, 20),
                jnp.zeros(3),
                learning_rates=[0.1],
                batch_sizes=[2.5],
                epochs=1,
            ),
            TypeError,
            "batch_sizes[0] must be an int >= 1, got 2.5",
        ),
        (
            lambda: descent.convergence_grid(
                jax.random.key(0),
                _problem(0, 20),
                jnp.zeros(3),
                learning_rates=0.1,
                batch_sizes=[5],
                epochs=1,
            ),
            TypeError,
            "learning_rates must be a non-empty sequence of numbers, got 0.1",
        ),
        (
            lambda: descent.quadratic_samples(jax.random.key(0), 5, coefficients=(1.0, "a", 2.0)),
            TypeError,
            "coefficients must be three numbers, got (1.0, 'a', 2.0)",
        ),
    ],
)
def test_bad_input_is_rejected_before_compiling(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()


# ---------------------------------------------------------------------------
# Figures.


def test_contour_and_surface_draw_each_path_with_its_data():
    toy = descent.objective("rosenbrock")
    paths = descent.compare(
        toy.f,
        toy.start,
        optimizers=("gd", "adam"),
        learning_rate={"gd": 1e-3, "adam": 1e-2},
        max_steps=150,
    )
    figure = viz.plot_optimization_paths(toy.f, paths, extent=toy.extent, minima=toy.minima)
    assert isinstance(figure, Figure)
    ax = figure.axes[0]
    lines = {line.get_label().split(":")[0]: line for line in ax.get_lines()}
    for name, path in paths.items():
        steps = int(path.steps)
        np.testing.assert_allclose(lines[name].get_xdata(), path.xs[: steps + 1, 0])
        np.testing.assert_allclose(lines[name].get_ydata(), path.xs[: steps + 1, 1])
        assert f"{steps} steps" in lines[name].get_label()
    assert ax.get_xlim() == (-2.0, 2.0)
    surface = viz.plot_optimization_paths(
        toy.f, paths, extent=toy.extent, kind="surface", resolution=20
    )
    ax3 = surface.axes[0]
    assert ax3.name == "3d"
    line = next(line for line in ax3.get_lines() if line.get_label().startswith("adam"))
    x, _, z = line.get_data_3d()
    steps = int(paths["adam"].steps)
    np.testing.assert_allclose(z, paths["adam"].values[: steps + 1], rtol=1e-6)
    np.testing.assert_allclose(x, paths["adam"].xs[: steps + 1, 0])


def test_one_variable_paths_lie_on_the_curve():
    path = descent.gradient_descent(descent.quadratic, 3.0, learning_rate=0.3, max_steps=30)
    figure = viz.plot_optimization_paths(
        descent.quadratic, {"gd": path}, extent=descent.OBJECTIVES["quadratic"].extent
    )
    line = next(line for line in figure.axes[0].get_lines() if line.get_label().startswith("gd"))
    steps = int(path.steps)
    np.testing.assert_allclose(line.get_ydata(), (line.get_xdata() + 2) ** 2, rtol=1e-4, atol=2e-6)
    assert len(line.get_xdata()) == steps + 1
    with pytest.raises(ValueError, match="two variables"):
        viz.plot_optimization_paths(
            descent.quadratic, {"gd": path}, extent=(-6, 4, 0, 37), kind="surface"
        )


def test_plot_convergence_has_one_panel_per_batch_size_and_the_gaps():
    problem = _problem(0, 20)
    grid = descent.convergence_grid(
        jax.random.key(3),
        problem,
        jnp.zeros(3),
        learning_rates=[0.01, 0.1],
        batch_sizes=[5, 20],
        epochs=3,
    )
    f_star = float(descent.least_squares_solution(problem)[1])
    figure = viz.plot_convergence(grid, f_star)
    assert isinstance(figure, Figure)
    assert [ax.get_title() for ax in figure.axes] == ["batch size 5", "batch size 20"]
    assert all(ax.get_yscale() == "log" for ax in figure.axes)
    line = next(line for line in figure.axes[1].get_lines() if line.get_label() == "η = 0.1")
    path = grid[(0.1, 20)]
    np.testing.assert_allclose(
        line.get_ydata(), np.maximum(np.asarray(path.values, np.float64) - f_star, 1e-12)
    )
    with pytest.raises(ValueError, match="f_star must be finite"):
        viz.plot_convergence(grid, -np.inf)
    with pytest.raises(ValueError, match="unknown kind"):
        viz.plot_optimization_paths(descent.bowl, {"a": path}, extent=(0, 1, 0, 1), kind="3d")


# ---------------------------------------------------------------------------
# The command line.


def test_optimize_writes_the_figures_and_metrics(tmp_path, capsys):
    status = cli.main(
        [
            "optimize",
            "--function",
            "rosenbrock",
            "--optimizers",
            "gd,momentum,adam",
            "--learning-rate",
            "1e-3",
            "--steps",
            "300",
            "--start=-1.2,1",
            "--out",
            str(tmp_path),
            "--json",
        ]
    )
    out, err = capsys.readouterr()
    assert status == 0, err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert json.loads(out) == metrics
    assert set(metrics["results"]) == {"gd", "momentum", "adam"}
    assert metrics["results"]["gd"]["steps"] == 300
    for name in ("optimization_paths.png", "optimization_surface.png", "convergence.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_optimize_least_squares_writes_the_grid(tmp_path, capsys):
    status = cli.main(
        [
            "optimize",
            "--function",
            "least_squares",
            "--n",
            "20",
            "--batch-sizes",
            "5,20",
            "--learning-rate",
            "0.01,0.1",
            "--epochs",
            "3",
            "--out",
            str(tmp_path),
        ]
    )
    out, err = capsys.readouterr()
    assert status == 0, err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert len(metrics["results"]) == 4
    assert (tmp_path / "convergence.png").exists()
    assert "batch 20" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--function", "nope"], "argument --function: invalid choice: 'nope'"),
        (["--optimizers", "gd,lbfgs"], "--optimizers[1] must be one of"),
        (["--learning-rate", "0"], "--learning-rate[0] must be a float in (0, inf), got 0.0"),
        (["--start", "a,b"], "argument --start: expected comma-separated coordinates"),
        (["--steps", "0"], "--steps must be an int in [1, inf), got 0"),
    ],
)
def test_optimize_bad_arguments_exit_2_with_one_line(capsys, tmp_path, argv, message):
    # Exit status 2: argparse's SystemExit for what it parses, main's return value for
    # the values that the one table of rules checks.
    try:
        status = cli.main(["optimize", *argv, "--out", str(tmp_path)])
    except SystemExit as exit_info:
        status = exit_info.code
    assert status == 2
    assert not any(tmp_path.iterdir())
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--start", "1,2,3"], "--start must have 2 coordinate(s)"),
        (["--optimizers", "gd,adam", "--learning-rate", "1,2,3"], "one per optimizer"),
        (["--function", "least_squares", "--n", "5", "--batch-sizes", "10"], "at most --n"),
    ],
)
def test_optimize_bad_values_exit_2_with_one_line(capsys, tmp_path, argv, message):
    status = cli.main(["optimize", *argv, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1
    assert message in err

"""Tests of dlvr_jax.viz: figures without pyplot, one jitted grid evaluation, atomic saves."""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from matplotlib.figure import Figure

from dlvr_jax import data, perceptron, viz


def test_importing_the_package_does_not_load_matplotlib_and_viz_avoids_pyplot():
    code = (
        "import sys, dlvr_jax, dlvr_jax.perceptron, dlvr_jax.data\n"
        "assert 'matplotlib' not in sys.modules, 'dlvr_jax imported matplotlib'\n"
        "import dlvr_jax.viz\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'viz imported pyplot'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_plot_dataset_returns_a_figure_with_both_classes():
    fig = viz.plot_dataset(data.circle(jax.random.key(0), 100), title="circle")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_title() == "circle"
    sizes = sorted(len(c.get_offsets()) for c in ax.collections)
    assert sum(sizes) == 100
    assert sizes[0] > 0


def test_plot_dataset_shows_regression_targets_as_colour():
    fig = viz.plot_dataset(data.plane(jax.random.key(0), 50))
    assert len(fig.axes) == 2  # the axes and its colour bar


def test_decision_boundary_evaluates_the_grid_in_one_call():
    calls = []

    def predict(grid):
        calls.append(grid.shape)
        return (grid[:, 0] > 0).astype(jnp.int32)

    fig = viz.plot_decision_boundary(predict, data.linear(jax.random.key(0), 50), resolution=30)
    assert calls == [(900, 2)]  # traced once, on the whole grid
    assert isinstance(fig, Figure)


def test_decision_boundary_draws_the_perceptron_line():
    train = data.linear(jax.random.key(0), 50)
    params = perceptron.Params(jnp.array([1.0, 2.0]), jnp.array(0.5))
    fig = viz.plot_decision_boundary(
        lambda g: perceptron.predict(params, g), train, line=params, title="PLA"
    )
    ax = fig.axes[0]
    (line,) = ax.lines
    xs, ys = line.get_data()
    np.testing.assert_allclose(np.asarray(ys), (-0.5 - 1.0 * np.asarray(xs)) / 2.0)
    assert ax.get_title() == "PLA"


def test_decision_boundary_regions_follow_the_classifier():
    train = data.linear(jax.random.key(0), 50)
    fig = viz.plot_decision_boundary(
        lambda g: (g[:, 0] > 0).astype(jnp.int32), train, resolution=20
    )
    contour = fig.axes[0].collections[0]
    # Two filled levels: {False} and {True}.
    assert list(contour.levels) == [-0.5, 0.5, 1.5]


def test_decision_boundary_shades_probabilities():
    train = data.circle(jax.random.key(0), 50)
    fig = viz.plot_decision_boundary(lambda g: jax.nn.sigmoid(g[:, 0]), train, resolution=20)
    assert len(fig.axes) == 2  # shaded, with a colour bar


def test_decision_boundary_draws_into_a_given_axes():
    fig = Figure()
    ax1, ax2 = fig.subplots(1, 2)
    out = viz.plot_decision_boundary(
        lambda g: g[:, 0] > 0, data.xor(jax.random.key(0), 20), ax=ax2, resolution=10
    )
    assert out is fig
    assert len(ax2.collections) > 0
    assert len(ax1.collections) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"resolution": 1}, "resolution must be"), ({"resolution": 2.5}, "resolution must be")],
)
def test_decision_boundary_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        viz.plot_decision_boundary(lambda g: g[:, 0], data.xor(jax.random.key(0), 5), **kwargs)
    with pytest.raises(TypeError, match="predict_fn must be callable"):
        viz.plot_decision_boundary(None, data.xor(jax.random.key(0), 5))


def test_plot_mistakes():
    result = perceptron.fit(
        *(lambda d: (d.x, data.signed(d.y)))(data.linear(jax.random.key(0), 50))
    )
    fig = viz.plot_mistakes(result.mistakes_per_epoch, result.epochs)
    (line,) = fig.axes[0].lines
    np.testing.assert_array_equal(line.get_ydata(), result.mistakes_per_epoch[: int(result.epochs)])


def test_save_writes_png_atomically(tmp_path):
    fig = viz.plot_dataset(data.linear(jax.random.key(0), 10))
    path = tmp_path / "sub" / "figure.png"
    viz.save(fig, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["figure.png"]
    viz.save(fig, tmp_path / "figure.svg")
    assert b"<svg" in (tmp_path / "figure.svg").read_bytes()[:500]

"""Tests of dlvr_jax.viz: figures without pyplot, one jitted grid evaluation, atomic saves."""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import sweep_rows
from matplotlib.colors import LogNorm
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure

from dlvr_jax import data, models, parallel, perceptron, train, viz


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


def test_save_writes_the_same_pixels_as_matplotlibs_default_png(tmp_path):
    # save compresses PNGs less (faster); the image must be the same, pixel for pixel.
    from PIL import Image

    fig = viz.plot_neuron_maps(*_params(hidden=(2,)), data.circle(jax.random.key(0), 20))
    viz.save(fig, tmp_path / "fast.png")
    fig.savefig(tmp_path / "default.png", format="png", dpi=100)
    with Image.open(tmp_path / "fast.png") as fast, Image.open(tmp_path / "default.png") as slow:
        assert fast.size == slow.size
        np.testing.assert_array_equal(np.asarray(fast), np.asarray(slow))


# ----------------------------------------------------------------------------
# Training figures.


def _params(hidden=(3, 4), n_outputs=2, n_inputs=2):
    model = models.MLP(hidden=hidden, n_outputs=n_outputs)
    return model, model.init(jax.random.key(0), jnp.zeros((1, n_inputs)))


def _random_like(tree, seed=1):
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return jax.tree.unflatten(
        treedef, [jax.random.normal(k, leaf.shape) for k, leaf in zip(keys, leaves, strict=True)]
    )


def _history(epochs=6, *, test=True, accuracy=True):
    _, params = _params()
    loss = jnp.linspace(0.7, 0.1, epochs)
    acc = jnp.linspace(0.5, 0.95, epochs) if accuracy else jnp.full((epochs,), jnp.nan)
    return train.History(
        train_loss=loss,
        train_accuracy=acc,
        test_loss=loss + 0.05 if test else None,
        test_accuracy=acc - 0.02 if test else None,
        grad_norms={"hidden_0": jnp.ones(epochs)},
        final_grads=_random_like(params),
    )


def _filled_and_lines(ax):
    contours = [c for c in ax.collections if isinstance(c, ContourSet)]
    return [c for c in contours if c.filled], [c for c in contours if not c.filled]


def test_loss_curve_draws_train_and_test_loss_per_epoch():
    history = _history()
    fig = viz.plot_loss_curve(history)
    assert isinstance(fig, Figure)
    loss_ax, accuracy_ax = fig.axes  # accuracy gets a panel of its own
    train_line, test_line = loss_ax.lines
    np.testing.assert_array_equal(train_line.get_xdata(), np.arange(1, 7))
    np.testing.assert_allclose(train_line.get_ydata(), history.train_loss)
    np.testing.assert_allclose(test_line.get_ydata(), history.test_loss)
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["train", "test"]
    assert loss_ax.get_title() == "Training Loss Curve"
    assert accuracy_ax.get_xlabel() == "epoch"
    np.testing.assert_allclose(accuracy_ax.lines[0].get_ydata(), history.train_accuracy)
    np.testing.assert_allclose(accuracy_ax.lines[1].get_ydata(), history.test_accuracy)


def test_loss_curve_without_test_or_accuracy_draws_one_line_on_one_axes():
    fig = viz.plot_loss_curve(_history(test=False, accuracy=False), log_scale=True)
    (ax,) = fig.axes
    (line,) = ax.lines
    assert ax.get_yscale() == "log"
    assert ax.get_xlabel() == "epoch"
    np.testing.assert_allclose(line.get_ydata(), np.linspace(0.7, 0.1, 6), rtol=1e-6)


def test_loss_curve_draws_into_a_given_axes():
    fig = Figure()
    ax1, ax2 = fig.subplots(1, 2)
    assert viz.plot_loss_curve(_history(), ax=ax2, title="run") is fig
    assert len(ax2.lines) == 2
    assert ax2.get_title() == "run"
    assert not ax1.lines


def test_loss_curve_rejects_bad_input():
    with pytest.raises(TypeError, match=r"history must be a dlvr_jax\.train\.History"):
        viz.plot_loss_curve(jnp.ones(3))
    with pytest.raises(ValueError, match=r"history\.test_loss must have one entry per epoch"):
        viz.plot_loss_curve(_history()._replace(test_loss=jnp.ones(2)))
    with pytest.raises(ValueError, match="non-empty 1-D"):
        viz.plot_loss_curve(_history()._replace(train_loss=jnp.ones((0,))))
    with pytest.raises(ValueError, match="accuracy=True"):
        viz.plot_loss_curve(_history(), ax=Figure().add_subplot(), accuracy=True)
    with pytest.raises(ValueError, match="no accuracies"):
        viz.plot_loss_curve(_history(accuracy=False), accuracy=True)


def _unit_norms(layer):
    # Independent of viz: the norm of each column of [kernel; bias].
    stacked = np.vstack([np.asarray(layer["kernel"]), np.asarray(layer["bias"])[None, :]])
    return np.linalg.norm(stacked, axis=0)


def test_gradient_heatmap_has_one_row_per_layer_and_unit_norms():
    _, params = _params(hidden=(3, 4))
    grads = _random_like(params)
    fig = viz.plot_gradient_heatmap(grads)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    (image,) = ax.images
    shown = np.ma.filled(image.get_array().astype(float), np.nan)
    assert shown.shape == (3, 4)  # hidden_0, hidden_1, output × the widest layer
    names = models.layer_names(params)
    assert (
        [t.get_text() for t in ax.get_yticklabels()] == names == ["hidden_0", "hidden_1", "output"]
    )
    for row, name in enumerate(names):
        norms = _unit_norms(grads["params"][name])
        np.testing.assert_allclose(shown[row, : norms.size], norms, rtol=1e-6)
        assert np.all(np.isnan(shown[row, norms.size :]))  # padding is blank
    assert np.isnan(shown[0, 3])
    assert np.isnan(shown[2, 2:]).all()
    assert fig.axes[1].get_ylabel() == "|gradient|"
    assert ax.get_xlabel() == "unit"
    assert len(ax.texts) == 3 + 4 + 2  # small grid: every cell annotated
    # The inner dict and a History give the same picture.
    for other in (grads["params"], _history()._replace(final_grads=grads)):
        again = viz.plot_gradient_heatmap(other).axes[0].images[0].get_array()
        np.testing.assert_array_equal(np.ma.filled(again.astype(float), np.nan), shown)


def test_gradient_heatmap_orders_layers_numerically():
    layer = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}
    tree = {name: layer for name in ["output", "hidden_10", "hidden_2", "hidden_0", "hidden_1"]}
    ax = viz.plot_gradient_heatmap(tree).axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["hidden_0", "hidden_1", "hidden_2", "hidden_10", "output"]
    assert ax.images[0].get_array().shape == (5, 2)


def test_gradient_heatmap_uses_a_log_scale_over_many_decades_and_shows_zeros():
    grads = {
        "hidden_0": {"kernel": jnp.array([[1e-5, 1.0, 0.0]]), "bias": jnp.zeros(3)},
        "output": {"kernel": jnp.array([[0.5], [0.5], [0.5]]), "bias": jnp.zeros(1)},
    }
    fig = viz.plot_gradient_heatmap(grads, annotate=False)
    ax = fig.axes[0]
    zeros, image = ax.images  # a grey layer under the zero cells, then the heatmap
    assert isinstance(image.norm, LogNorm)
    assert not ax.texts
    assert np.ma.filled(zeros.get_array().astype(float), np.nan)[0, 2] == 1.0
    assert "grey" in fig.axes[1].get_ylabel()
    linear = viz.plot_gradient_heatmap({"output": {"kernel": jnp.ones((2, 2))}})
    assert not isinstance(linear.axes[0].images[0].norm, LogNorm)


def test_gradient_heatmap_rejects_bad_input():
    with pytest.raises(TypeError, match="grads must be a gradient pytree"):
        viz.plot_gradient_heatmap([1.0, 2.0])
    with pytest.raises(ValueError, match="no dense layers"):
        viz.plot_gradient_heatmap({"params": {"scale": jnp.ones(3)}})
    with pytest.raises(ValueError, match="bias must have shape"):
        viz.plot_gradient_heatmap({"output": {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(2)}})
    with pytest.raises(ValueError, match="NaN or infinite"):
        viz.plot_gradient_heatmap({"output": {"kernel": jnp.full((2, 2), jnp.nan)}})


def test_decision_boundary_shades_probabilities_on_a_fixed_scale_with_the_half_line():
    train_set = data.circle(jax.random.key(0), 50)
    fig = viz.plot_decision_boundary(
        lambda g: jax.nn.sigmoid(3.0 * g[:, 0]), train_set, resolution=20
    )
    ax, bar = fig.axes
    (filled,), (line,) = _filled_and_lines(ax)
    assert filled.levels.min() == 0.0
    assert filled.levels.max() == 1.0
    assert (filled.norm.vmin, filled.norm.vmax) == (0.0, 1.0)
    assert list(line.levels) == [0.5]
    assert bar.get_ylabel() == "P(class 1)"
    # (m, 2) class probabilities are read as P(class 1) = column 1.
    both = viz.plot_decision_boundary(
        lambda g: jax.nn.softmax(jnp.stack([-g[:, 0], g[:, 0]], axis=1)), train_set, resolution=20
    )
    assert list(_filled_and_lines(both.axes[0])[1][0].levels) == [0.5]
    # Scores outside [0, 1] keep their own range, and labels stay flat regions.
    scores = viz.plot_decision_boundary(lambda g: 5.0 * g[:, 0], train_set, resolution=20)
    assert scores.axes[1].get_ylabel() == "model output"
    labels = viz.plot_decision_boundary(
        lambda g: (g[:, 0] > 0).astype(jnp.int32), train_set, resolution=20
    )
    (regions,), lines = _filled_and_lines(labels.axes[0])
    assert list(regions.levels) == [-0.5, 0.5, 1.5]
    assert not lines
    forced = viz.plot_decision_boundary(
        lambda g: jax.nn.sigmoid(g[:, 0]), train_set, resolution=20, probability=False
    )
    assert forced.axes[1].get_ylabel() == "model output"
    regression = viz.plot_decision_boundary(
        lambda g: jax.nn.sigmoid(g[:, 0]), data.plane(jax.random.key(0), 20), resolution=20
    )
    bars = {ax.get_ylabel() for ax in regression.axes[1:]}
    assert bars == {"model output", "y"}  # float targets: not P(class 1)


def test_decision_boundary_rejects_bad_probability_arguments():
    train_set = data.circle(jax.random.key(0), 20)
    with pytest.raises(ValueError, match=r"probability=True needs .* \[0, 1\]"):
        viz.plot_decision_boundary(lambda g: 2.0 * g[:, 0], train_set, probability=True)
    with pytest.raises(TypeError, match="probability must be"):
        viz.plot_decision_boundary(lambda g: g[:, 0], train_set, probability="yes")
    with pytest.raises(ValueError, match=r"returned shape \(400, 3\)"):
        viz.plot_decision_boundary(lambda g: jnp.ones((g.shape[0], 3)), train_set, resolution=20)


def _grid(extent, resolution):
    x0, x1, y0, y1 = extent
    u, v = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    return jnp.asarray(np.stack([u.ravel(), v.ravel()], axis=1), jnp.float32)


def test_neuron_maps_show_every_unit_from_one_jitted_evaluation(monkeypatch):
    model, params = _params(hidden=(3, 4))
    params = _random_like(params)  # biases too, so that no unit is trivially zero
    calls = []
    original = models.hidden_activations

    def counting(*args):
        calls.append(args[2].shape)
        return original(*args)

    monkeypatch.setattr(models, "hidden_activations", counting)
    extent, resolution = (-1.0, 2.0, -1.5, 1.0), 7
    fig = viz.plot_neuron_maps(model, params, extent=extent, resolution=resolution)
    assert calls == [(49, 2)]  # the whole grid, traced once
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3 + 4 + 1  # one thumbnail per hidden unit, one for the output
    grid = _grid(extent, resolution)
    expected = [np.asarray(a) for a in original(model, params, grid)]
    thumbnails = iter(fig.axes)
    for layer, activations in enumerate(expected):
        for unit in range(activations.shape[1]):
            ax = next(thumbnails)
            (image,) = ax.images
            np.testing.assert_allclose(
                image.get_array(), activations[:, unit].reshape(resolution, resolution), atol=1e-6
            )
            assert image.origin == "lower"
            assert tuple(image.get_extent()) == extent
            assert len(ax.get_xticks()) == 0  # no ticks (a NullLocator gives a list)
            assert len(ax.get_yticks()) == 0
            scale = np.abs(activations[:, unit]).max() or 1.0  # a dead unit: 0 / 1
            assert image.norm.vmin == pytest.approx(-scale)
            assert image.norm.vmax == pytest.approx(scale)
            if unit == 0:
                assert ax.get_ylabel() == f"layer {layer + 1}"
    output_ax = next(thumbnails)
    assert output_ax.get_ylabel() == "output"
    probability = jax.nn.softmax(model.apply(params, grid), axis=-1)[:, 1]
    np.testing.assert_allclose(
        output_ax.images[0].get_array(),
        np.reshape(probability, (resolution, resolution)),
        atol=1e-6,
    )


def test_neuron_maps_window_and_one_logit_output():
    model, params = _params(hidden=(2,), n_outputs=1)
    circle = data.circle(jax.random.key(0), 30)
    fig = viz.plot_neuron_maps(model, params, circle, resolution=4, pad=0.25)
    x = np.asarray(circle.x)
    expected = (
        x[:, 0].min() - 0.25,
        x[:, 0].max() + 0.25,
        x[:, 1].min() - 0.25,
        x[:, 1].max() + 0.25,
    )
    np.testing.assert_allclose(fig.axes[0].images[0].get_extent(), expected, rtol=1e-6)
    output = fig.axes[-1].images[0].get_array()
    logits = model.apply(params, _grid(expected, 4))[:, 0]
    np.testing.assert_allclose(output, np.reshape(jax.nn.sigmoid(logits), (4, 4)), atol=1e-6)
    assert len(fig.axes[-1].collections) == 1  # the data on the output map
    default = viz.plot_neuron_maps(*_params(hidden=()), resolution=3)
    (only,) = default.axes  # no hidden layer: just the output
    assert tuple(only.images[0].get_extent()) == (-2.5, 2.5, -2.5, 2.5)


def test_neuron_maps_reject_bad_input():
    model, params = _params()
    with pytest.raises(TypeError, match=r"model must be a dlvr_jax\.models\.MLP"):
        viz.plot_neuron_maps(lambda x: x, params)
    with pytest.raises(ValueError, match="params do not match the model"):
        viz.plot_neuron_maps(models.MLP(hidden=(3,)), params)
    with pytest.raises(TypeError, match="params must be"):
        viz.plot_neuron_maps(model, [1, 2])
    with pytest.raises(ValueError, match="2 inputs"):
        viz.plot_neuron_maps(*_params(n_inputs=3))
    with pytest.raises(ValueError, match="resolution must be"):
        viz.plot_neuron_maps(model, params, resolution=1)
    with pytest.raises(ValueError, match="extent must be finite"):
        viz.plot_neuron_maps(model, params, extent=(1.0, 0.0, 0.0, 1.0))
    with pytest.raises(TypeError, match="extent must be four numbers"):
        viz.plot_neuron_maps(model, params, extent=(0.0, 1.0))
    with pytest.raises(ValueError, match="data or extent, not both"):
        viz.plot_neuron_maps(
            model, params, data.circle(jax.random.key(0), 5), extent=(0.0, 1.0, 0.0, 1.0)
        )


def test_activation_comparison_draws_one_line_per_curve():
    with_test, without = _history(), _history(test=False)
    fig = viz.plot_activation_comparison({"relu": with_test, "tanh": without})
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    relu_train, relu_test, tanh_train = ax.lines
    assert relu_train.get_linestyle() == "-"
    assert relu_test.get_linestyle() == "--"
    assert relu_train.get_color() == relu_test.get_color() != tanh_train.get_color()
    np.testing.assert_allclose(relu_test.get_ydata(), with_test.test_loss)
    np.testing.assert_allclose(tanh_train.get_ydata(), without.train_loss)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["relu train", "relu test", "tanh train"]


def test_activation_comparison_adds_a_boundary_panel_per_run():
    circle = data.circle(jax.random.key(0), 20)
    histories = {"relu": _history(), "sigmoid": _history()}
    boundaries = {
        "relu": (lambda g: jax.nn.sigmoid(g[:, 0]), circle),
        "sigmoid": (lambda g: jax.nn.sigmoid(g[:, 1]), circle),
    }
    fig = viz.plot_activation_comparison(histories, boundaries=boundaries, title="Exercise 1.1")
    loss_ax, relu_ax, sigmoid_ax, bar = fig.axes  # the panels share one colour bar
    assert len(loss_ax.lines) == 4
    assert relu_ax.get_title().startswith("relu (test accuracy")
    assert sigmoid_ax.get_title().startswith("sigmoid")
    assert _filled_and_lines(relu_ax)[1]
    assert _filled_and_lines(sigmoid_ax)[1]
    assert bar.get_ylabel() == "P(class 1)"
    assert fig.get_suptitle() == "Exercise 1.1"


def test_activation_comparison_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one run"):
        viz.plot_activation_comparison({})
    with pytest.raises(TypeError, match="histories must be a mapping"):
        viz.plot_activation_comparison([_history()])
    with pytest.raises(TypeError, match=r"histories\['relu'\] must be a dlvr_jax.train.History"):
        viz.plot_activation_comparison({"relu": 1.0})
    with pytest.raises(TypeError, match=r"boundaries\['relu'\] must be a pair"):
        viz.plot_activation_comparison({"relu": _history()}, boundaries={"relu": lambda g: g})


@pytest.mark.parametrize(("label", "red"), [(-1, False), (1, True), (0, False)])
def test_a_classifier_predicting_one_class_everywhere_gets_that_class_colour(label, red):
    fig = viz.plot_decision_boundary(
        lambda g: jnp.full(g.shape[:1], label, jnp.int32),
        data.linear(jax.random.key(0), 20),
        resolution=10,
    )
    contour = fig.axes[0].collections[0]
    # One filled region: the lower level (0, blue) or the upper one (1, red).
    filled = [i for i, paths in enumerate(contour.get_paths()) if len(paths.vertices)]
    assert filled == ([1] if red else [0])


def test_the_sweep_statistic_lives_in_parallel_only():
    # viz draws; the statistic (mean and spread over seeds) is parallel.sweep_summary's,
    # so that a sweep's JSON needs no matplotlib. The old viz alias was never released.
    assert not hasattr(viz, "sweep_summary")
    assert "sweep_summary" in parallel.__all__


def test_sweep_heatmap_draws_mean_and_spread_panels():
    figure = viz.plot_sweep_heatmap(sweep_rows())
    axes = [ax for ax in figure.axes if ax.get_title()]
    titles = sorted(ax.get_title() for ax in axes)
    assert titles == [
        "test accuracy: mean",
        "test accuracy: std over seeds",
        "test loss: mean",
        "test loss: std over seeds",
    ]
    texts = [t.get_text() for t in axes[0].texts]
    assert "div" in texts
    assert "0.60" in texts


def test_class_names_name_the_legend_entries():
    points = data.Dataset(jnp.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]]), jnp.array([0, 1, 2]))
    named = viz.plot_dataset(points, class_names=["setosa", "versicolor", "virginica"])
    texts = [t.get_text() for t in named.axes[0].get_legend().get_texts()]
    assert texts == ["setosa", "versicolor, virginica"]
    plain = viz.plot_dataset(points)
    assert [t.get_text() for t in plain.axes[0].get_legend().get_texts()] == ["class 0", "class 1"]
    boundary = viz.plot_decision_boundary(
        lambda grid: (grid[:, 0] > 1).astype(jnp.int32), points, resolution=8,
        class_names=("a", "b", "c"),
    )  # fmt: skip
    assert [t.get_text() for t in boundary.axes[0].get_legend().get_texts()] == ["a", "b, c"]

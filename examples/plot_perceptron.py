"""
The perceptron learning algorithm
=================================

The chapter's first program: Rosenblatt's perceptron learns the line that
separates two classes of points in the plane.

We draw 200 points uniformly from the square :math:`(-1, 1)^2`, label them
by the side of the line :math:`x_1 + x_2 = 0` they fall on, run the
perceptron learning algorithm (PLA) until an epoch makes no mistake, and
draw the learned decision line over the data.

Run it as::

    python plot_perceptron.py [FIGURE]

``FIGURE`` is where the figure goes (``perceptron.png`` in the current folder
by default; the suffix picks the format).
"""

import sys

import jax
import jax.numpy as jnp

from dlvr_jax import data, perceptron, viz

# %%
# The data
# --------
#
# Every generator takes an explicit PRNG key: the same key gives the same
# points, bit for bit. Labels come as 0/1; the perceptron works with -1/+1,
# which :func:`dlvr_jax.data.signed` converts to.

train = data.linear(jax.random.key(0), 200)
x, y = train.x, data.signed(train.y)
print(f"{x.shape[0]} points, {int((y > 0).sum())} of class +1")

# %%
# Training
# --------
#
# :func:`dlvr_jax.perceptron.fit` runs the whole PLA as one compiled program.
# Starting from zero weights, it visits the points in order and, after each
# mistake, moves the line towards the misclassified point:
#
# .. math:: w \leftarrow w + \eta (y_i - \hat y_i) x_i, \quad
#           b \leftarrow b + \eta (y_i - \hat y_i).
#
# The data are linearly separable, so it converges: an epoch comes without a
# single mistake.

result = perceptron.fit(x, y)
w, b = result.params
print(f"learned weights: w = [{w[0]:.6g}, {w[1]:.6g}], b = {float(b):.6g}")
print(
    f"converged: {bool(result.converged)} after {int(result.epochs)} epochs "
    f"({int(result.updates)} updates)"
)
print(f"training accuracy: {float(perceptron.accuracy(result.params, x, y)):.1%}")

# Novikoff's theorem bounds the number of updates by (R / gamma)^2, given any
# separating line; the true one, x1 + x2 = 0, separates these data. Without a
# margin some point lies very close to that line, so gamma is tiny and the
# bound is loose (``data.linear(..., margin=0.1)`` gives a tighter one).
bound = float(perceptron.mistake_bound(x, y, jnp.array([1.0, 1.0])))
print(f"Novikoff bound for w* = (1, 1), b* = 0: {bound:.6g} updates")

# %%
# The chapter's figure
# --------------------
#
# The two regions the perceptron predicts, the data on top, and the learned
# line :math:`w \cdot x + b = 0` in black.

figure = viz.plot_decision_boundary(
    lambda grid: perceptron.predict(result.params, grid),
    train,
    line=result.params,
    title="Perceptron Learning Algorithm",
)
path = sys.argv[1] if len(sys.argv) > 1 else "perceptron.png"
viz.save(figure, path)
print(f"wrote {path}")

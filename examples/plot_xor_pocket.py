"""
XOR: where the perceptron fails, and the pocket algorithm
=========================================================

Minsky and Papert's XOR labels a point by whether its two coordinates differ
in sign. No line separates the two classes, so the perceptron learning
algorithm (PLA) never has an epoch without a mistake: it runs until
``max_epochs`` and its last weights are no better than a coin toss.

Gallant's pocket algorithm runs exactly the same PLA but keeps "in its
pocket" the best weights it has seen on the way. No line gets XOR right, but
the best one gets about three points in four, against about one in two for
the PLA's last iterate.

Run it as::

    python plot_xor_pocket.py [FIGURE]

``FIGURE`` is where the figure goes (``xor_pocket.png`` in the current folder
by default; the suffix picks the format).
"""

import sys

import jax

from dlvr_jax import data, perceptron, viz

# %%
# The data
# --------
#
# 200 points uniform on :math:`(-1, 1)^2`, class 1 iff :math:`x_1` and
# :math:`x_2` differ in sign; the perceptron wants labels in {-1, +1}.

train = data.xor(jax.random.key(0), 200)
x, y = train.x, data.signed(train.y)
print(f"{x.shape[0]} points, {int((y > 0).sum())} of class +1")

# %%
# The plain PLA does not converge
# -------------------------------
#
# :func:`dlvr_jax.perceptron.fit` stops after ``max_epochs`` (1000 by
# default) with ``converged=False``: every epoch made mistakes.

result = perceptron.fit(x, y)
last_accuracy = float(perceptron.accuracy(result.params, x, y))
print(
    f"PLA: converged = {bool(result.converged)} after {int(result.epochs)} epochs "
    f"({int(result.updates)} updates)"
)
print(f"PLA last iterate: accuracy {last_accuracy:.1%}")

# %%
# The pocket keeps the best weights
# ---------------------------------
#
# :func:`dlvr_jax.perceptron.pocket` runs the same PLA. By default it uses
# Gallant's ratchet: weights that survive a longer run of correct
# classifications than the pocket's are checked on the whole training set,
# and kept only if they are also more accurate. With ``every_update=True``
# every new weight vector is checked (one extra pass over the data per
# update), so the pocket ends with the most accurate weights of the whole
# run. Either way the pocket is never worse than the last iterate. In data
# order the ratchet lets many good weights pass unseen, which is why checking
# every update finds a much better line here.

ratchet = perceptron.pocket(x, y)
every = perceptron.pocket(x, y, every_update=True)
print(f"pocket (ratchet): accuracy {float(ratchet.accuracy):.1%}")
print(f"pocket (every update): accuracy {float(every.accuracy):.1%}")
w, b = every.params
print(f"pocket weights (every update): w = [{w[0]:.4g}, {w[1]:.4g}], b = {float(b):.4g}")

# %%
# The pocket's line
# -----------------
#
# The most accurate line the PLA met roughly cuts off one quadrant: nearly
# every point beyond it is of one class, while the other three quadrants stay
# mixed. That is the best a single line can do on XOR; it takes a hidden layer
# (a multilayer perceptron) to do better.

figure = viz.plot_decision_boundary(
    lambda grid: perceptron.predict(every.params, grid),
    train,
    line=every.params,
    title=f"XOR: pocket line ({float(every.accuracy):.0%} right)",
)
path = sys.argv[1] if len(sys.argv) > 1 else "xor_pocket.png"
viz.save(figure, path)
print(f"wrote {path}")

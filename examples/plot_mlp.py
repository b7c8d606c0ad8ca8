"""
The chapter's MLP on circle data
================================

The chapter's second and third programs: a multi-layer perceptron with five
hidden layers of eight ReLU units learns to separate a disc from the ring
around it, which no single line can do. We train it with Adam for 2000
full-batch epochs (all of them inside one compiled ``lax.scan``) and draw the
chapter's three figures, each improved: the decision boundary with
probability shading, the loss curve for train and held-out data, and the
gradient "heatmap" as a true heatmap (one row per layer, one column per unit).
A fourth figure shows what every hidden unit computes over the plane, as
TensorFlow Playground does.

Run it as::

    python plot_mlp.py [FOLDER]

The four PNG files go to ``FOLDER`` (the current folder by default).
"""

import os
import sys

import jax

from dlvr_jax import data, models, optim, train, viz

folder = sys.argv[1] if len(sys.argv) > 1 else "."

# %%
# Data and model
# --------------
#
# 1000 points with radius r ~ U(0, 2): class 1 iff r >= 1. A fifth is held out.

full = data.circle(jax.random.key(0), 1000)
train_set, test_set = data.train_test_split(jax.random.key(1), full, test_fraction=0.2)
model = models.MLP()  # hidden=(8, 8, 8, 8, 8), relu, two logits: the chapter's network
optimizer = optim.optimizer("adam", 1e-3)

# %%
# Training
# --------
#
# ``fit`` returns the final state and a per-epoch history; the same key gives
# the same bits every time.

state, history = train.fit(
    jax.random.key(2), model, optimizer, train_set, epochs=2000, test=test_set
)
print(
    f"final train loss {float(history.train_loss[-1]):.4f}, "
    f"test accuracy {float(history.test_accuracy[-1]):.3f}"
)

# %%
# The figures
# -----------


def probability(grid):
    return train.probabilities(model, state.params, grid)[:, 1]


figures = {
    "decision_boundary.png": viz.plot_decision_boundary(
        probability, test_set, title="MLP Classification and Predictions"
    ),
    "loss_curve.png": viz.plot_loss_curve(history),
    "gradient_heatmap.png": viz.plot_gradient_heatmap(history.final_grads),
    "neuron_maps.png": viz.plot_neuron_maps(model, state.params, test_set),
}
for name, figure in figures.items():
    viz.save(figure, os.path.join(folder, name))
    print("wrote", os.path.join(folder, name))

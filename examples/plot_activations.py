"""
Activation functions compared (Exercise 1.1)
============================================

The same network, data and key, trained three times: with ReLU, the sigmoid
and tanh. The sigmoid network sits on a plateau for hundreds of epochs
before it learns, the vanishing-gradient effect the chapter describes; ReLU
and tanh start learning at once.

Run it as::

    python plot_activations.py [FIGURE]

``FIGURE`` defaults to ``activation_comparison.png`` in the current folder.
"""

import sys

import jax

from dlvr_jax import data, models, optim, train, viz

path = sys.argv[1] if len(sys.argv) > 1 else "activation_comparison.png"
full = data.circle(jax.random.key(0), 1000)
train_set, test_set = data.train_test_split(jax.random.key(1), full, test_fraction=0.2)
optimizer = optim.optimizer("adam", 1e-3)

histories, boundaries = {}, {}
for name in ("relu", "sigmoid", "tanh"):
    model = models.MLP(activation=name)
    state, history = train.fit(
        jax.random.key(2), model, optimizer, train_set, epochs=2000, test=test_set
    )
    histories[name] = history

    def probability(grid, model=model, params=state.params):
        return train.probabilities(model, params, grid)[:, 1]

    boundaries[name] = (probability, test_set)
    print(f"{name:>8}: test accuracy {float(history.test_accuracy[-1]):.3f}")

viz.save(viz.plot_activation_comparison(histories, boundaries=boundaries), path)
print("wrote", path)

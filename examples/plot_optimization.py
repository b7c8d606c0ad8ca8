"""
Gradient descent and its family (Exercise 1.3)
==============================================

Three pictures of §1.3's update rule :math:`x \\leftarrow x - \\eta \\nabla f(x)`:

1. gradient descent with stopping criteria on the chapter's
   :math:`f(x) = x^2 + 4x + 4`, for a small, a large and a too-large step;
2. gradient descent, momentum, RMSProp and Adam on Rosenbrock's banana,
   drawn on a contour map and on a 3-D surface;
3. stochastic and mini-batch gradient descent recovering the coefficients of
   :math:`x^2 + 4x + 4` from noisy samples, over learning rates × batch sizes.

Run it as::

    python plot_optimization.py [FOLDER]

The PNG files go to ``FOLDER`` (the current folder by default). The same
figures come from ``dlvr-jax optimize --function rosenbrock`` and
``dlvr-jax optimize --function least_squares``.
"""

import os
import sys

import jax
import jax.numpy as jnp

from dlvr_jax import descent, viz

folder = sys.argv[1] if len(sys.argv) > 1 else "."
os.makedirs(folder, exist_ok=True)

# %%
# Stopping criteria on the quadratic
# ----------------------------------
#
# The error contracts by :math:`|1 - 2\eta|` per step: slowly for η = 0.1,
# with alternating sign for η = 0.9, and it grows for η > 1, which is
# reported as ``diverged`` (the run stops before any number overflows).

quadratic = descent.objective("quadratic")
runs = {
    f"η = {eta}": descent.gradient_descent(quadratic.f, 3.0, learning_rate=eta, max_steps=100)
    for eta in (0.1, 0.9, 1.1)
}
for name, path in runs.items():
    steps = int(path.steps)
    print(
        f"{name}: {steps} steps, x = {float(path.xs[steps]):.6f}, converged "
        f"{bool(path.converged)}, diverged {bool(path.diverged)}"
    )
figure = viz.plot_optimization_paths(
    quadratic.f,
    runs,
    extent=quadratic.extent,
    minima=quadratic.minima,
    title="Gradient descent on x² + 4x + 4",
)
viz.save(figure, os.path.join(folder, "quadratic_paths.png"))

# %%
# Optimizers on Rosenbrock's function
# -----------------------------------
#
# Plain gradient descent crawls along the curved valley; momentum and Adam
# follow it much faster. Each method gets a step size that suits it.

rosenbrock = descent.objective("rosenbrock")
paths = descent.compare(
    rosenbrock.f,
    rosenbrock.start,
    optimizers=("gd", "momentum", "rmsprop", "adam"),
    learning_rate={"gd": 1e-3, "momentum": 1e-3, "rmsprop": 1e-3, "adam": 1e-2},
    max_steps=5000,
)
for name, path in paths.items():
    print(f"{name:>9}: {int(path.steps)} steps, f = {float(path.values[-1]):.3g}")
for kind in ("contour", "surface"):
    figure = viz.plot_optimization_paths(
        rosenbrock.f,
        paths,
        extent=rosenbrock.extent,
        minima=rosenbrock.minima,
        kind=kind,
        title="Rosenbrock: optimization paths",
    )
    viz.save(figure, os.path.join(folder, f"rosenbrock_{kind}.png"))

# %%
# Learning rates × batch sizes on least squares
# ---------------------------------------------
#
# Batch size 1 (SGD) takes many cheap, noisy steps; the full batch takes few
# exact ones. All runs see the same shuffles (one key), so only η and the
# batch size differ. The learning rates of each batch size run in one ``vmap``.

problem = descent.quadratic_samples(jax.random.key(0), 100)
w_star, f_star = descent.least_squares_solution(problem)
print("least-squares coefficients:", [round(float(v), 3) for v in w_star])
grid = descent.convergence_grid(
    jax.random.key(1),
    problem,
    jnp.zeros(3),
    learning_rates=[0.01, 0.05, 0.2],
    batch_sizes=[1, 10, 100],
    epochs=30,
)
viz.save(viz.plot_convergence(grid, float(f_star)), os.path.join(folder, "convergence.png"))
print("wrote the figures to", folder)

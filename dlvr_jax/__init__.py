"""dlvr_jax: the introductory deep-learning chapter of DLVR as a functional JAX library.

Modules are flat and public; import the ones you need::

    from dlvr_jax import data, perceptron, viz

``viz`` (matplotlib) and ``cli`` are not imported here, so importing the
package never loads matplotlib.
"""

from dlvr_jax import data, perceptron

__version__ = "0.1.0"

# The other modules (models, losses, optim, train, parallel, checkpoint,
# tensor, viz, cli) are imported by name: ``from dlvr_jax import train``.
__all__ = ["__version__", "data", "perceptron"]

"""
A tour of tensor operations
===========================

Exercise 1.4 of the chapter: the tensor operations a neural network is made
of, one at a time, in JAX. Each step prints what it computed, so read the
code and its output side by side:

1. creating tensors;
2. element-wise addition and multiplication;
3. broadcasting;
4. reshaping;
5. slicing;
6. the dot product;
7. the matrix product, from scratch and by the library;
8. applying an activation: one dense layer, ``relu(x W + b)``, then softmax.

Run it as::

    python tensor_tour.py
"""

import jax
import jax.numpy as jnp

from dlvr_jax import tensor


def show(title, value):
    """Prints a step's title and its result."""
    print(f"\n{title}\n{value}")


# %%
# 1. Creating tensors
# -------------------
# A tensor is an n-dimensional array: a scalar has 0 axes, a vector 1, a
# matrix 2. Its *shape* lists the length of each axis, its *dtype* the type
# of every element (float32 unless you ask otherwise).

scalar = jnp.array(3.0)
vector = jnp.array([1.0, 2.0, 3.0])
matrix = jnp.arange(6.0).reshape(2, 3)  # 0, 1, ..., 5 laid out in 2 rows of 3
zeros = jnp.zeros((2, 3))
ones = jnp.ones((2, 3))
# Random tensors need an explicit key: the same key always gives the same numbers.
random = jax.random.normal(jax.random.key(0), (2, 3))

show("shapes of a scalar, a vector, a matrix:", (scalar.shape, vector.shape, matrix.shape))
show("matrix (dtype float32):", matrix)
show("normal random numbers, key 0:", random)

# %%
# 2. Addition and multiplication, element by element
# ---------------------------------------------------
# ``+`` and ``*`` work on matching elements; the shapes must agree.

show("matrix + ones:", matrix + ones)
show("matrix * matrix (element-wise, not the matrix product):", matrix * matrix)

# %%
# 3. Broadcasting
# ---------------
# When shapes differ, the smaller tensor is *broadcast*: repeated along the
# missing axes. Adding a bias vector of shape (3,) to a (2, 3) matrix adds
# it to every row; a (2, 1) column is added to every column.

bias = jnp.array([10.0, 20.0, 30.0])
show("matrix + bias (the bias is added to each row):", matrix + bias[None, :])
column = jnp.array([[100.0], [200.0]])
show("matrix + column (added to each column):", matrix + column)

# %%
# 4. Reshaping
# ------------
# A reshape keeps the elements and their order and changes the shape;
# ``-1`` means "whatever length makes the sizes match". A transpose swaps axes.

show("matrix.reshape(3, 2):", matrix.reshape(3, 2))
show("matrix.reshape(-1), flattened:", matrix.reshape(-1))
show("matrix.T, transposed:", matrix.T)

# %%
# 5. Slicing
# ----------
# ``[row, column]`` indexing picks elements, rows, columns or blocks. JAX
# arrays are immutable: ``x.at[i].set(v)`` returns a new array.

show("matrix[0], the first row:", matrix[0])
show("matrix[:, 1], the second column:", matrix[:, 1])
show("matrix[:, 1:], the last two columns:", matrix[:, 1:])
show("matrix.at[0, 0].set(-1.0), a new array:", matrix.at[0, 0].set(-1.0))

# %%
# 6. The dot product
# ------------------
# The dot product of two vectors multiplies them element by element and sums:
# u · v = Σ_i u_i v_i. It measures how much two vectors point the same way.

u = jnp.array([1.0, 2.0, 3.0])
v = jnp.array([4.0, 5.0, 6.0])
show("sum(u * v), by hand:", jnp.sum(u * v))
show("jnp.dot(u, v):", jnp.dot(u, v))

# %%
# 7. The matrix product
# ---------------------
# Entry (i, j) of A B is the dot product of row i of A with column j of B, so
# A (m × k) times B (k × n) is m × n. ``tensor.matmul_naive`` writes exactly
# that loop; ``tensor.matmul_blocked`` computes the same sums a tile at a
# time, fast; ``@`` is the library's product.

a = jax.random.normal(jax.random.key(1), (2, 3))
b = jax.random.normal(jax.random.key(2), (3, 4))
show("a @ b, the library (shape (2, 4)):", a @ b)
show("tensor.matmul_naive(a, b), the triple loop:", tensor.matmul_naive(a, b))
show("tensor.matmul_blocked(a, b), tiled:", tensor.matmul_blocked(a, b))
show(
    "largest difference between the three:",
    max(
        float(jnp.max(jnp.abs(tensor.matmul_naive(a, b) - a @ b))),
        float(jnp.max(jnp.abs(tensor.matmul_blocked(a, b) - a @ b))),
    ),
)
# A batch of products, one per leading index, by jax.vmap:
batch_a = jax.random.normal(jax.random.key(3), (5, 2, 3))
batch_b = jax.random.normal(jax.random.key(4), (5, 3, 4))
show("tensor.batched_matmul shape:", tensor.batched_matmul(batch_a, batch_b).shape)

# %%
# 8. Applying an activation: one dense layer
# ------------------------------------------
# A dense layer is a matrix product, a broadcast bias and an element-wise
# activation: h = relu(x W + b). ReLU keeps positives and zeroes negatives.
# Softmax turns the scores of the last layer into probabilities that sum to 1.

x = jax.random.normal(jax.random.key(5), (4, 3))  # 4 examples, 3 features each
w = jax.random.normal(jax.random.key(6), (3, 2))  # 3 inputs -> 2 units
b = jnp.array([0.1, -0.1])
scores = tensor.matmul_blocked(x, w) + b[None, :]
show("scores x W + b (4 examples, 2 units):", scores)
show("relu(scores):", jax.nn.relu(scores))
probabilities = tensor.softmax(scores, axis=-1)
show("softmax(scores), each row sums to 1:", probabilities)
show("row sums:", probabilities.sum(axis=-1))

"""scikit-learn estimators backed by dlvr_jax (the optional ``sklearn`` extra).

The contract is scikit-learn's own (``fit`` returns ``self``, fitted
attributes end in ``_``, ``__init__`` only stores its arguments)::

    PerceptronClassifier(learning_rate=, epochs=, pocket=)     # perceptron.fit / pocket
    MLPClassifier(hidden=, activation=, optimizer=, ...)       # train.fit, cross-entropy
    MLPRegressor(hidden=, activation=, optimizer=, ...)        # train.fit, mean squared error
    est.fit(X, y, sample_weight=None) -> est;  est.predict(X);  est.partial_fit(X, y)

They enter ``Pipeline``, ``GridSearchCV`` and ``cross_val_score`` and pass
``sklearn.utils.estimator_checks`` (``tests/test_estimators.py``).

- **The same training as the library.** An MLP's ``fit`` is
  :func:`dlvr_jax.train.fit` with ``models.MLP(hidden, n_outputs, activation,
  dropout)``, ``optim.injected(optimizer)`` at ``learning_rate``, the key
  ``jax.random.key(random_state)`` and the same ``epochs``, ``batch_size``,
  ``l1`` and ``l2``: the same bits as calling it directly. ``sample_weight``
  is ``train.fit``'s own, so every loss is
  :math:`\\sum_i w_i \\ell_i / \\sum_i w_i`; several regression targets
  train one output each. Folds of a grid search pad to whole batches
  (``train.fit``'s ``pad_batches``) and share one compiled loop.
- **Reproducible.** An int ``random_state`` gives the same bits on every fit;
  None draws a fresh seed each fit.
- **Resumable.** ``partial_fit`` runs one more epoch (scikit-learn's meaning),
  and ``warm_start=True`` makes ``fit`` continue for ``epochs`` more: ``fit``
  for ``n`` epochs then ``m`` calls of ``partial_fit`` give the bits of one
  ``fit`` of ``n + m`` epochs. ``loss_curve_`` and ``history_`` (the
  :class:`~dlvr_jax.train.History`) cover every epoch so far.
- **Compiled once per shape.** The learning rate lives in the optimizer's
  state and ``l1``/``l2`` in the :class:`~dlvr_jax.train.TrainState`, so a grid
  search over them reuses one compiled program per data shape.
- **Light to import, cached compiles.** ``import dlvr_jax.estimators`` loads
  scikit-learn's base classes only; JAX and the library load at the first
  ``fit``, which also turns on JAX's persistent compilation cache (the
  command's folder, ``$DLVR_JAX_CACHE_DIR`` or ``~/.cache/dlvr_jax/jax``),
  unless ``DLVR_JAX_NO_CACHE=1`` or the user configured JAX's cache already
  (their folder and settings are kept). See ``docs/estimators.md``.
- **Predictions independent of the batch.** ``predict`` and ``predict_proba``
  are :func:`dlvr_jax.train.predict` and :func:`~dlvr_jax.train.probabilities`,
  which run fixed-size blocks: a row gets the same bits in any batch.
- **Picklable.** The fitted state is kept as NumPy arrays (parameters,
  optimizer state, key data, step and epoch); the static parts (model,
  optimizer, loss) are rebuilt from the hyperparameters when needed.

``batch_size`` is clipped to the number of examples, as scikit-learn does;
None means full batch.

Examples:
    >>> from sklearn.datasets import make_moons
    >>> from dlvr_jax import estimators
    >>> X, y = make_moons(200, noise=0.1, random_state=0)
    >>> clf = estimators.MLPClassifier(hidden=(16,), learning_rate=0.02, epochs=200,
    ...                                batch_size=None, random_state=0).fit(X, y)
    >>> bool(clf.score(X, y) > 0.85), clf.n_iter_, len(clf.loss_curve_)
    (True, 200, 200)
"""

from __future__ import annotations

import importlib
import secrets
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_array
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["MLPClassifier", "MLPRegressor", "PerceptronClassifier"]


class _OnFirstUse(types.ModuleType):
    """A module imported at its first attribute access: JAX loads at the first fit, not here."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._module: types.ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        if self._module is None:
            self._module = importlib.import_module(self.__name__)
        return getattr(self._module, attribute)


if TYPE_CHECKING:
    import jax
    import jax.numpy as jnp

    from dlvr_jax import _validate as check
    from dlvr_jax import data, engine, losses, models, optim, perceptron, train
else:
    jax = _OnFirstUse("jax")
    jnp = _OnFirstUse("jax.numpy")
    check = _OnFirstUse("dlvr_jax._validate")
    data = _OnFirstUse("dlvr_jax.data")
    engine = _OnFirstUse("dlvr_jax.engine")
    losses = _OnFirstUse("dlvr_jax.losses")
    models = _OnFirstUse("dlvr_jax.models")
    optim = _OnFirstUse("dlvr_jax.optim")
    perceptron = _OnFirstUse("dlvr_jax.perceptron")
    train = _OnFirstUse("dlvr_jax.train")


# ----------------------------------------------------------------------------
# Shared checks.


def _sample_weight(sample_weight: Any, n: int) -> np.ndarray:
    """``sample_weight`` as ``float32[n]``, checked by the core's one rule for it.

    (:func:`dlvr_jax.engine.check_sample_weight`: finite, >= 0, not all zero,
    with a finite float32 sum.)
    """
    weight = check_array(
        sample_weight, ensure_2d=False, dtype=[np.float64, np.float32], input_name="sample_weight"
    )
    if weight.ndim != 1 or weight.shape[0] != n:
        raise ValueError(
            f"sample_weight.shape == {weight.shape}, expected ({n},): one weight per sample"
        )
    return np.asarray(engine.check_sample_weight(weight, n))


def _random_state(value: Any) -> int:
    """The seed of a fit: ``random_state`` itself, or a fresh one for None."""
    if value is None:
        return secrets.randbits(31)
    if not check.is_int(value):
        raise TypeError(
            f"random_state must be an int or None, got {type(value).__name__}: "
            f"{check.show(value)}; dlvr_jax derives its PRNG key from an int seed"
        )
    return int(value)


def _hidden(value: Any) -> tuple[int, ...]:
    if check.is_int(value):
        value = (value,)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"hidden must be a sequence of ints, got {check.show(value)}")
    return tuple(check.positive_int("hidden width", width) for width in value)


# The predictions are the library's own (train.predict, train.probabilities),
# whose forward pass runs in fixed-size blocks, one compiled program per model and
# width: the same bits as calling them directly, whatever the other rows. Jitting
# them whole here fused the softmax with the forward pass differently, and the
# probabilities differed in the last bit.


_cache_decided = False


def _compilation_cache() -> None:
    """At the first fit: JAX's persistent compilation cache, unless the user decided already.

    A user who set ``jax_compilation_cache_dir`` (or ``JAX_COMPILATION_CACHE_DIR``)
    or turned ``jax_enable_compilation_cache`` off keeps their setting. Otherwise
    the cache goes where the command's goes (``jobs.compilation_cache``:
    ``$DLVR_JAX_CACHE_DIR``, else ``~/.cache/dlvr_jax/jax``), programs of any
    compile time included, and ``DLVR_JAX_NO_CACHE=1`` leaves it off.
    """
    global _cache_decided
    if _cache_decided:
        return
    _cache_decided = True
    config = jax.config
    if config.jax_compilation_cache_dir or not config.jax_enable_compilation_cache:  # type: ignore[attr-defined]
        return
    from dlvr_jax import jobs

    jobs.compilation_cache()


def _numpy(tree: Any) -> Any:
    """``tree`` with every array leaf as a NumPy array (picklable, bit-identical)."""
    return jax.tree.map(np.asarray, jax.device_get(tree))


# ----------------------------------------------------------------------------
# The MLPs.


class _BaseMLP(BaseEstimator):  # type: ignore[misc]
    """What the MLP classifier and regressor share: training, resuming, the fitted state."""

    # The fitted state (set by fit; pickled as it is, NumPy arrays and numbers).
    params_: Any
    opt_state_: Any
    key_data_: np.ndarray
    t_: int
    n_iter_: int
    history_: train.History
    loss_curve_: list[float]
    _fitted_architecture_: tuple[Any, ...]

    _loss: str  # the library's loss

    def __init__(
        self,
        hidden: Sequence[int] = (100,),
        *,
        activation: str = "relu",
        optimizer: str = "adam",
        learning_rate: float = 1e-3,
        epochs: int = 200,
        batch_size: int | None = 200,
        l1: float = 0.0,
        l2: float = 0.0,
        dropout: float = 0.0,
        random_state: int | None = None,
        warm_start: bool = False,
    ) -> None:
        self.hidden = hidden
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.batch_size = batch_size
        self.l1 = l1
        self.l2 = l2
        self.dropout = dropout
        self.random_state = random_state
        self.warm_start = warm_start

    # -- the pieces a fit is made of ------------------------------------------

    def _model(self, n_outputs: int) -> models.MLP:
        return models.MLP(
            hidden=_hidden(self.hidden),
            n_outputs=n_outputs,
            activation=self.activation,
            dropout=self.dropout,
        )

    def _settings(self) -> tuple[float, float, float, int]:
        learning_rate = check.real("learning_rate", self.learning_rate, low=0.0, low_open=True)
        l1 = check.real("l1", self.l1, low=0.0)
        l2 = check.real("l2", self.l2, low=0.0)
        epochs = check.positive_int("epochs", self.epochs)
        return learning_rate, l1, l2, epochs

    def _batch_size(self, n: int) -> int:
        if self.batch_size is None:
            return n
        return min(check.positive_int("batch_size", self.batch_size), n)

    def _architecture(self, n_outputs: int) -> tuple[Any, ...]:
        return (_hidden(self.hidden), n_outputs, self.activation, self.dropout, self.optimizer)

    def _restore(self, model: models.MLP, tx: Any) -> train.TrainState:
        """The fitted :class:`TrainState`, rebuilt from its NumPy leaves (same bits)."""
        return train.TrainState(
            step=jnp.asarray(self.t_, jnp.int32),
            epoch=jnp.asarray(self.n_iter_, jnp.int32),
            params=jax.tree.map(jnp.asarray, self.params_),
            opt_state=jax.tree.map(jnp.asarray, self.opt_state_),
            key=jax.random.wrap_key_data(jnp.asarray(self.key_data_)),
            l1=jnp.float32(0.0),
            l2=jnp.float32(0.0),
            apply_fn=train.ModuleApply(model),
            tx=tx,
            loss_fn=losses.get_loss(self._loss),
            task=losses.task(self._loss),
        )

    def _train(
        self,
        x: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None,
        n_outputs: int,
        *,
        epochs: int | None,
        resume: bool,
    ) -> None:
        """Trains for ``epochs`` (default ``self.epochs``), fresh or resuming; stores the result."""
        learning_rate, l1, l2, default_epochs = self._settings()
        _compilation_cache()
        epochs = default_epochs if epochs is None else epochs
        model = self._model(n_outputs)
        tx = optim.injected(check.choice("optimizer", self.optimizer, optim.names()))
        architecture = self._architecture(n_outputs)
        if resume and architecture != self._fitted_architecture_:
            raise ValueError(
                f"cannot continue training: hidden, n_outputs, activation, dropout and "
                f"optimizer are {architecture}, but the fitted model has "
                f"{self._fitted_architecture_}; refit from scratch (warm_start=False)"
            )
        if resume:
            state = self._restore(model, tx)
            before: train.History | None = self.history_
        else:
            key = jax.random.key(_random_state(self.random_state))
            state = train.create_train_state(key, model, tx, x, loss=self._loss, l1=l1, l2=l2)
            before = None
        state = state.replace(opt_state=optim.with_learning_rate(state.opt_state, learning_rate))
        # train.fit on whole batches: a grid search's folds of 455 and 456 rows share one
        # compiled loop, each with the bits of its own unpadded fit.
        state, history = train.fit(
            state.key,
            model,
            tx,
            data.Dataset(check.to_device(x), check.to_device(y)),
            epochs=epochs,
            batch_size=self._batch_size(x.shape[0]),
            loss=self._loss,
            l1=l1,
            l2=l2,
            state=state,
            sample_weight=sample_weight,
            pad_batches=True,
        )
        if before is not None:
            history = train.concatenate(before, history)
        self.params_ = _numpy(state.params)
        self.opt_state_ = _numpy(state.opt_state)
        self.key_data_ = np.asarray(jax.random.key_data(state.key))
        self.t_ = int(state.step)
        self.n_iter_ = int(state.epoch)
        self.history_ = cast(train.History, _numpy(history))
        self.loss_curve_ = [float(value) for value in self.history_.train_loss]
        self._fitted_architecture_ = architecture

    def _outputs(self, X: Any) -> tuple[models.MLP, jax.Array]:
        check_is_fitted(self)
        x = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        n_outputs = self._fitted_architecture_[1]
        return self._model(n_outputs), check.to_device(np.asarray(x, np.float32))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False  # an int random_state gives the same bits
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):  # type: ignore[misc]
    """A multi-layer perceptron classifier: :func:`dlvr_jax.train.fit` with cross-entropy.

    Any number of classes (two logits for two classes); the labels may be any
    values NumPy can sort (strings included) and ``classes_`` keeps them.

    Args:
        hidden: widths of the hidden layers (``hidden_layer_sizes``).
        activation: a name of :data:`dlvr_jax.models.activations`.
        optimizer: a name of :func:`dlvr_jax.optim.names`.
        learning_rate: the optimizer's step size, > 0.
        epochs: passes over the data per ``fit``, >= 1.
        batch_size: examples per step, clipped to the number of examples; None
            for full batch.
        l1: weight of the L1 penalty on the weight matrices.
        l2: weight of the L2 penalty :math:`\\tfrac12 \\sum W^2` on the weight matrices.
        dropout: dropout rate after each hidden layer, in ``[0, 1)``.
        random_state: an int seed (the same bits every fit), or None for a fresh seed.
        warm_start: if True, ``fit`` continues from the fitted state for ``epochs`` more.

    Attributes:
        classes_: the class labels, sorted.
        n_features_in_: the number of features seen by ``fit``.
        n_iter_: epochs trained so far; ``t_``: optimizer steps so far.
        loss_curve_: the training loss of every epoch.
        history_: the full :class:`~dlvr_jax.train.History` of every epoch.
        params_: the model's parameters (NumPy arrays, as ``model.init`` nests them).
    """

    _loss = "cross_entropy"
    classes_: np.ndarray

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPClassifier:
        """Trains for ``epochs`` epochs (continuing if ``warm_start`` and fitted); returns self."""
        resume = bool(self.warm_start) and hasattr(self, "params_")
        return self._fit(X, y, sample_weight, classes=None, epochs=None, reset=not resume)

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> MLPClassifier:
        """One more epoch on ``X, y``; the first call may give every class in ``classes``."""
        fitted = hasattr(self, "params_")
        return self._fit(X, y, sample_weight, classes=classes, epochs=1, reset=not fitted)

    def _fit(
        self, X: Any, y: Any, sample_weight: Any, *, classes: Any, epochs: int | None, reset: bool
    ) -> MLPClassifier:
        x, y = validate_data(self, X, y, reset=reset, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        if reset:
            known = np.unique(y) if classes is None else np.unique(np.asarray(classes))
            if known.shape[0] < 2:
                raise ValueError(
                    f"MLPClassifier needs samples of at least 2 classes, got 1 class: {known[0]!r}"
                )
        else:
            known = self.classes_
            if classes is not None and not np.array_equal(np.unique(classes), known):
                raise ValueError(
                    f"classes={np.unique(classes).tolist()} is not the same as on the first "
                    f"call to partial_fit: {known.tolist()}"
                )
        labels = np.searchsorted(known, y)
        unknown = (labels >= known.shape[0]) | (known[np.minimum(labels, known.shape[0] - 1)] != y)
        if np.any(unknown):
            raise ValueError(
                f"y contains labels {np.unique(y[unknown]).tolist()} not in classes_ "
                f"{known.tolist()}"
            )
        weight = None if sample_weight is None else _sample_weight(sample_weight, x.shape[0])
        if weight is not None and np.unique(labels[weight > 0]).shape[0] < 2 and reset:
            raise ValueError(
                "MLPClassifier needs samples of at least 2 classes with a positive sample_weight"
            )
        self.classes_ = known
        self._train(
            np.asarray(x, np.float32),
            labels.astype(np.int32),
            weight,
            known.shape[0],
            epochs=epochs,
            resume=not reset,
        )
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``[n, n_classes]`` (softmax of the logits), in ``classes_`` order."""
        model, x = self._outputs(X)
        return np.asarray(train.probabilities(model, self.params_, x), np.float64)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """The logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return cast(np.ndarray, np.log(self.predict_proba(X)))

    def predict(self, X: Any) -> np.ndarray:
        """The class with the largest logit, as one of ``classes_``."""
        model, x = self._outputs(X)
        return cast(np.ndarray, self.classes_[np.asarray(train.predict(model, self.params_, x))])

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.multi_label = False
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):  # type: ignore[misc]
    """A multi-layer perceptron regressor: :func:`dlvr_jax.train.fit` with mean squared error.

    One target (``y`` of shape ``[n]``; ``predict`` gives ``[n]``) or several
    (``[n, k]``; ``predict`` gives ``[n, k]``). The arguments and attributes are
    those of :class:`MLPClassifier`, without ``classes_``.
    """

    _loss = "mse"

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """Trains for ``epochs`` epochs (continuing if ``warm_start`` and fitted); returns self."""
        resume = bool(self.warm_start) and hasattr(self, "params_")
        return self._fit(X, y, sample_weight, epochs=None, reset=not resume)

    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One more epoch on ``X, y`` (a first epoch if not fitted yet)."""
        return self._fit(X, y, sample_weight, epochs=1, reset=not hasattr(self, "params_"))

    def _fit(
        self, X: Any, y: Any, sample_weight: Any, *, epochs: int | None, reset: bool
    ) -> MLPRegressor:
        x, y = validate_data(
            self,
            X,
            y,
            reset=reset,
            multi_output=True,
            y_numeric=True,
            dtype=[np.float64, np.float32],
        )
        y = np.asarray(y, np.float32)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if not reset and n_outputs != self._fitted_architecture_[1]:
            raise ValueError(
                f"y has {n_outputs} targets, but the fitted model has "
                f"{self._fitted_architecture_[1]}"
            )
        weight = None if sample_weight is None else _sample_weight(sample_weight, x.shape[0])
        self._train(
            np.asarray(x, np.float32), y, weight, n_outputs, epochs=epochs, resume=not reset
        )
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The model's outputs: ``[n]`` for one target, ``[n, k]`` for ``k``."""
        model, x = self._outputs(X)
        return np.asarray(train.predict(model, self.params_, x, loss="mse"), np.float64)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


# ----------------------------------------------------------------------------
# The perceptron.


class PerceptronClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Rosenblatt's perceptron (:func:`dlvr_jax.perceptron.fit`) for two classes.

    Trains in data order from zero weights until an epoch makes no mistake or
    ``epochs`` have run; ``pocket=True`` keeps the most accurate weights of
    the run instead (:func:`dlvr_jax.perceptron.pocket`), for data that are
    not separable. The larger of ``classes_`` is the positive class.

    Args:
        learning_rate: the step size η > 0.
        epochs: the most passes over the data, >= 1.
        pocket: use Gallant's pocket algorithm.

    Attributes:
        classes_: the two class labels, sorted.
        coef_: the weights ``float32[1, d]``; ``intercept_``: the bias ``float32[1]``.
        n_iter_: epochs run; ``converged_``: whether the last epoch made no mistake.
        n_features_in_: the number of features seen by ``fit``.
    """

    classes_: np.ndarray
    coef_: np.ndarray
    intercept_: np.ndarray
    n_iter_: int
    converged_: bool

    def __init__(
        self, *, learning_rate: float = 0.1, epochs: int = 1000, pocket: bool = False
    ) -> None:
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.pocket = pocket

    def fit(self, X: Any, y: Any) -> PerceptronClassifier:
        """Runs the PLA (or the pocket algorithm) on ``X, y``; returns self."""
        x, y = validate_data(self, X, y, dtype=[np.float64, np.float32])
        check_classification_targets(y)
        if type_of_target(y, input_name="y") != "binary":
            raise ValueError(
                "Only binary classification is supported. PerceptronClassifier needs "
                f"exactly 2 classes, got {np.unique(y).shape[0]}: {np.unique(y).tolist()[:10]}"
            )
        classes, labels = np.unique(y, return_inverse=True)
        if classes.shape[0] != 2:
            raise ValueError(
                f"PerceptronClassifier needs samples of 2 classes, got 1 class: {classes[0]!r}"
            )
        signed = np.where(labels == 1, 1, -1).astype(np.int32)
        x = np.asarray(x, np.float32)
        result: perceptron.FitResult | perceptron.PocketResult
        if self.pocket:
            result = perceptron.pocket(
                x, signed, learning_rate=self.learning_rate, max_epochs=self.epochs
            )
        else:
            result = perceptron.fit(
                x, signed, learning_rate=self.learning_rate, max_epochs=self.epochs
            )
        params = result.params
        self.classes_ = classes
        self.coef_ = np.asarray(params.w)[None, :]
        self.intercept_ = np.asarray(params.b).reshape(1)
        self.n_iter_ = int(result.epochs)
        self.converged_ = bool(result.converged)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """The signed score ``X @ w + b``; > 0 means ``classes_[1]``."""
        check_is_fitted(self)
        x = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        params = perceptron.Params(jnp.asarray(self.coef_[0]), jnp.asarray(self.intercept_[0]))
        return np.asarray(perceptron.score(params, np.asarray(x, np.float32)), np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """``classes_[1]`` where the score is > 0, else ``classes_[0]`` (as perceptron.predict)."""
        scores = self.decision_function(X)
        return self.classes_[(scores > 0).astype(np.intp)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.non_deterministic = False
        return tags

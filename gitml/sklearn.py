"""``gitml.sklearn.autolog()``: every scikit-learn ``fit`` logged as a run, as MLflow's autolog does.

Once called, ``fit`` (and ``fit_transform``, ``fit_predict``) of each scikit-learn estimator
logs, around the user's call:

- params: ``estimator.get_params(deep=True)`` (objects as their text, as MLflow stores them);
- tags ``estimator_name`` and ``estimator_class``;
- training metrics under MLflow's names, computed on the training data: for a classifier
  ``training_accuracy_score``, ``training_precision_score``, ``training_recall_score``,
  ``training_f1_score`` (weighted; binary when there are two classes), ``training_log_loss`` and
  ``training_roc_auc`` (with ``predict_proba``); for a regressor ``training_mean_squared_error``,
  ``training_root_mean_squared_error``, ``training_mean_absolute_error``, ``training_r2_score``;
  and ``training_score`` (the estimator's own ``score``);
- the fitted model, saved in MLflow's format under ``model/`` (:func:`gitml.log_model`, with
  an input example and signature from the first rows), and the training data's digest
  (:func:`gitml.log_input`, context ``training``);
- for ``GridSearchCV`` and ``RandomizedSearchCV``: ``best_<param>`` params, the
  ``best_cv_score`` metric, and one child run per candidate (``tags.mlflow.parentRunId``) with
  its params and its ``cv_results_`` scores.

With no active run, each ``fit`` gets a run of its own (named after the estimator), ended when
``fit`` returns (FAILED when it raises). Inside a run, it logs into that run. A ``fit`` that a
logged ``fit`` makes (a pipeline's steps, a search's clones) is not logged again; the data
handling classes (``sklearn.preprocessing``, ``impute``, ``feature_extraction``,
``feature_selection``, ``ColumnTransformer``) are not logged on their own, as in MLflow. Logging never
breaks the user's ``fit``: a failure is one warning, and ``fit``'s result is returned as always.
``autolog(disable=True)`` puts every original ``fit`` back.
"""

from __future__ import annotations

import functools
import logging
import math
import sys
import threading
import warnings
from typing import Any

log = logging.getLogger(__name__)

FIT_METHODS = ("fit", "fit_transform", "fit_predict")
SEARCHES = ("GridSearchCV", "RandomizedSearchCV", "HalvingGridSearchCV", "HalvingRandomSearchCV")
# Data handling, not learning: not logged on their own (inside a Pipeline they are its params),
# as MLflow's autolog leaves them out.
EXCLUDED_MODULES = ("sklearn.preprocessing", "sklearn.impute", "sklearn.feature_extraction",
                    "sklearn.feature_selection")
EXCLUDED_CLASSES = ("sklearn.compose._column_transformer.ColumnTransformer",)
_INHERITED = object()  # the class had no method of its own: disabling deletes the wrapper
_patched: dict[tuple[type, str], Any] = {}  # (class, method) -> the original function, or _INHERITED
_options: dict[str, Any] = {}
_state = threading.local()  # depth of logged fits in this thread


def autolog(disable: bool = False, log_models: bool = True, log_datasets: bool = True,
            log_training_metrics: bool = True, max_tuning_runs: int | None = None) -> None:
    """Log every scikit-learn ``fit`` from now on (or, with ``disable=True``, stop).

    Args:
        disable: undo: every patched method is restored.
        log_models: save the fitted estimator as the run's ``model/`` (MLflow's format).
        log_datasets: record the training data's digest and schema (``log_input``).
        log_training_metrics: compute and log the training metrics.
        max_tuning_runs: for a search, at most this many child runs, the best ranked first
            (None: one per candidate).

    Raises:
        BadInputError: scikit-learn is not installed, or ``max_tuning_runs`` is negative.
    """
    from gitml.core.errors import BadInputError

    if disable:
        for (cls, name), original in _patched.items():
            if original is _INHERITED:
                delattr(cls, name)
            else:
                setattr(cls, name, original)
        _patched.clear()
        return
    if max_tuning_runs is not None and (not isinstance(max_tuning_runs, int) or max_tuning_runs < 0):
        raise BadInputError(f"max_tuning_runs must be None or a count, not {max_tuning_runs!r}")
    try:
        from sklearn.utils import all_estimators
    except ImportError:
        raise BadInputError("gitml.sklearn.autolog needs scikit-learn: pip install scikit-learn") from None
    _options.update(log_models=log_models, log_datasets=log_datasets, log_training_metrics=log_training_metrics,
                    max_tuning_runs=max_tuning_runs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # importing every estimator module warns about experimental ones
        classes = [cls for _, cls in all_estimators()]
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    for cls in {*classes, GridSearchCV, RandomizedSearchCV}:
        if cls.__module__.startswith(EXCLUDED_MODULES) or f"{cls.__module__}.{cls.__name__}" in EXCLUDED_CLASSES:
            continue
        for name in FIT_METHODS:
            method = getattr(cls, name, None)
            if method is None or (cls, name) in _patched or getattr(method, "__gitml_autolog__", False):
                continue
            # each class gets its own wrapper (an inherited fit too: GridSearchCV's is BaseSearchCV's),
            # so that patching an estimator never patches the data-handling classes sharing its base
            _patched[(cls, name)] = cls.__dict__.get(name, _INHERITED)
            setattr(cls, name, _wrap(method))


def _wrap(original: Any) -> Any:
    @functools.wraps(original)
    def logged_fit(self, *args, **kwargs):
        if getattr(_state, "depth", 0):  # a fit inside a logged fit: only the outer one logs
            return original(self, *args, **kwargs)
        _state.depth = 1
        try:
            return _fit_in_run(original, self, args, kwargs)
        finally:
            _state.depth = 0

    logged_fit.__gitml_autolog__ = True
    return logged_fit


def _fit_in_run(original: Any, estimator: Any, args: tuple, kwargs: dict) -> Any:
    import gitml

    own = gitml.active_run() is None
    run = None
    if own:
        try:
            run = gitml.start_run(name=type(estimator).__name__.lower())
        except Exception as exc:  # noqa: BLE001 - no run (not a repository, say): fit unlogged
            _warn("could not start a run", exc)
            return original(estimator, *args, **kwargs)
    _guard("params", _log_params, estimator)
    try:
        result = original(estimator, *args, **kwargs)
    except BaseException:
        if run is not None:
            run.__exit__(*sys.exc_info())
        raise
    X = args[0] if args else kwargs.get("X")
    y = args[1] if len(args) > 1 else kwargs.get("y")
    if _options.get("log_training_metrics", True):
        _guard("training metrics", _log_training_metrics, estimator, X, y, kwargs.get("sample_weight"))
    if type(estimator).__name__ in SEARCHES:
        _guard("search results", _log_search, estimator)
    if _options.get("log_datasets", True) and X is not None and not _sparse(X):  # no digest for sparse data yet
        _guard("dataset", gitml.log_input, X, "training")
    if _options.get("log_models", True):
        _guard("model", _log_model, estimator, X)
    if run is not None:
        run.__exit__(None, None, None)
    return result


def _guard(what: str, func: Any, *args: Any) -> None:
    try:
        func(*args)
    except Exception as exc:  # noqa: BLE001 - autolog must never break the user's fit
        _warn(f"could not log the {what}", exc)


def _warn(what: str, exc: BaseException) -> None:
    warnings.warn(f"gitml autolog {what}: {type(exc).__name__}: {exc}", stacklevel=4)


def _log_params(estimator: Any) -> None:
    import gitml

    params = {key: value for key, value in estimator.get_params(deep=True).items()}
    gitml.log_params({key: _param(value) for key, value in params.items()})
    gitml.set_tags({"estimator_name": type(estimator).__name__,
                    "estimator_class": f"{type(estimator).__module__}.{type(estimator).__name__}"})


def _param(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # an estimator, a list, a callable: its text, as MLflow logs it


def _log_training_metrics(estimator: Any, X: Any, y: Any, sample_weight: Any) -> None:
    from sklearn.base import is_classifier, is_regressor

    import gitml

    if y is None or X is None or not hasattr(estimator, "predict"):
        return
    metrics: dict[str, float] = {}
    if is_classifier(estimator):
        metrics.update(_classifier_metrics(estimator, X, y, sample_weight))
    elif is_regressor(estimator):
        metrics.update(_regressor_metrics(estimator, X, y, sample_weight))
    if hasattr(estimator, "score"):
        try:
            metrics["training_score"] = float(estimator.score(X, y, sample_weight=sample_weight)
                                              if sample_weight is not None else estimator.score(X, y))
        except Exception as exc:  # noqa: BLE001 - a scorer that cannot run: that metric only is missing
            log.debug("training_score: %s", exc)
    gitml.log_metrics({key: value for key, value in metrics.items() if not math.isnan(value)})


def _classifier_metrics(estimator: Any, X: Any, y: Any, sample_weight: Any) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics

    predicted = estimator.predict(X)
    binary = len(np.unique(y)) == 2
    average = "binary" if binary else "weighted"
    out = {}
    for name, func, extra in (("precision_score", metrics.precision_score, {"average": average, "zero_division": 0}),
                              ("recall_score", metrics.recall_score, {"average": average, "zero_division": 0}),
                              ("f1_score", metrics.f1_score, {"average": average, "zero_division": 0}),
                              ("accuracy_score", metrics.accuracy_score, {})):
        try:
            out[f"training_{name}"] = float(func(y, predicted, sample_weight=sample_weight, **extra))
        except (ValueError, TypeError) as exc:  # labels that are not 0/1 for a binary average, say
            log.debug("training_%s: %s", name, exc)
    if hasattr(estimator, "predict_proba"):
        try:
            proba = estimator.predict_proba(X)
            out["training_log_loss"] = float(metrics.log_loss(y, proba, sample_weight=sample_weight,
                                                              labels=getattr(estimator, "classes_", None)))
            scores = proba[:, 1] if proba.shape[1] == 2 else proba
            out["training_roc_auc"] = float(metrics.roc_auc_score(y, scores, average="weighted", multi_class="ovo",
                                                                  sample_weight=sample_weight))
        except (ValueError, TypeError, AttributeError) as exc:
            log.debug("training probabilities: %s", exc)
    return out


def _regressor_metrics(estimator: Any, X: Any, y: Any, sample_weight: Any) -> dict[str, float]:
    from sklearn import metrics

    predicted = estimator.predict(X)
    mse = float(metrics.mean_squared_error(y, predicted, sample_weight=sample_weight))
    return {"training_mean_squared_error": mse, "training_root_mean_squared_error": math.sqrt(mse),
            "training_mean_absolute_error": float(metrics.mean_absolute_error(y, predicted,
                                                                              sample_weight=sample_weight)),
            "training_r2_score": float(metrics.r2_score(y, predicted, sample_weight=sample_weight))}


def _log_search(search: Any) -> None:
    import gitml

    gitml.log_params({f"best_{key}": _param(value) for key, value in search.best_params_.items()})
    if getattr(search, "best_score_", None) is not None:
        gitml.log_metric("best_cv_score", float(search.best_score_))
    results = search.cv_results_
    # one metric: rank_test_score; several (scoring=[...]): the refit metric's rank, else the first
    refit = search.refit if isinstance(search.refit, str) else None
    rank = "rank_test_score" if "rank_test_score" in results else (
        f"rank_test_{refit}" if f"rank_test_{refit}" in results else
        next((key for key in results if key.startswith("rank_test_")), None))
    order = list(range(len(results["params"])))
    if rank is not None:
        order.sort(key=lambda i: results[rank][i])
    limit = _options.get("max_tuning_runs")
    scores = [key for key in results if key.startswith(("mean_", "std_", "rank_")) or key.startswith("split")]
    base = search.estimator.get_params(deep=True) if hasattr(search.estimator, "get_params") else {}
    for i in order[:limit] if limit is not None else order:
        with gitml.start_run(name=f"candidate-{i}", nested=True):
            # the estimator's every param, the candidate's over them, as MLflow logs a child run
            gitml.log_params({key: _param(value) for key, value in {**base, **results["params"][i]}.items()})
            gitml.set_tags({"estimator_name": type(search.estimator).__name__,
                            "estimator_class": f"{type(search.estimator).__module__}.{type(search.estimator).__name__}"})
            gitml.log_metrics({key: float(results[key][i]) for key in scores
                               if isinstance(results[key][i], (int, float)) or hasattr(results[key][i], "item")})


def _log_model(estimator: Any, X: Any) -> None:
    import gitml

    example = None
    if X is not None and not _sparse(X) and hasattr(X, "__getitem__") and hasattr(X, "shape"):
        example = X.iloc[:5] if hasattr(X, "iloc") else X[:5]  # a sparse X: the model, without an example
    gitml.log_model(estimator, "model", input_example=example)


def _sparse(X: Any) -> bool:
    """Whether ``X`` is a scipy sparse matrix or array."""
    return type(X).__module__.startswith("scipy.sparse")

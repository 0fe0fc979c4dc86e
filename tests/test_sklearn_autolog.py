"""gitml.sklearn.autolog (issue 14): real scikit-learn fits logged as runs, as MLflow's autolog logs them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import gitml as api
import gitml.sklearn

X, Y = load_iris(return_X_y=True, as_frame=True)


@pytest.fixture
def autolog(repo, monkeypatch):
    monkeypatch.chdir(repo)
    gitml.sklearn.autolog()
    try:
        yield repo
    finally:
        gitml.sklearn.autolog(disable=True)


def _runs(repo):
    return {run.name: run for run in api.search_runs(repo=repo)}


def test_a_pipeline_fit_is_one_run_with_params_metrics_model_and_data(autolog):
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, Y)
    (run,) = _runs(autolog).values()
    assert run.name == "pipeline" and run.status == "FINISHED"
    assert run.params["logisticregression__C"] == 1.0 and run.params["standardscaler__with_mean"] is True
    assert run.tags["estimator_class"] == "sklearn.pipeline.Pipeline"
    predicted = pipeline.predict(X)
    assert run.metrics["training_accuracy_score"] == pytest.approx(metrics.accuracy_score(Y, predicted))
    assert run.metrics["training_f1_score"] == pytest.approx(metrics.f1_score(Y, predicted, average="weighted"))
    assert run.metrics["training_score"] == pytest.approx(pipeline.score(X, Y))
    assert {"training_log_loss", "training_roc_auc", "training_precision_score", "training_recall_score"} <= set(
        run.metrics)
    model = api.load_model(f"runs:/{run.id}/model", repo=autolog)
    assert (model.predict(X) == predicted).all() and model.metadata.signature is not None
    with api.start_run(name="check", repo=autolog):
        digest = api.log_input(X)["digest"]
    assert run.inputs["training"]["dataset"]["digest"] == digest


def test_regressors_get_mlflows_regression_metrics(autolog):
    features, target = load_diabetes(return_X_y=True)
    ridge = Ridge().fit(features, target)
    run = _runs(autolog)["ridge"]
    mse = metrics.mean_squared_error(target, ridge.predict(features))
    assert run.metrics["training_mean_squared_error"] == pytest.approx(mse)
    assert run.metrics["training_root_mean_squared_error"] == pytest.approx(np.sqrt(mse))
    assert run.metrics["training_r2_score"] == pytest.approx(ridge.score(features, target))


def test_a_search_has_one_child_run_per_candidate(autolog):
    search = GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.01, 0.1, 1.0]}, cv=3).fit(X, Y)
    runs = _runs(autolog)
    parent = runs["gridsearchcv"]
    children = [run for run in runs.values() if run.tags.get("mlflow.parentRunId") == parent.id]
    assert len(runs) == 4 and len(children) == 3  # the clones' fits were not logged again
    assert parent.params["best_C"] == search.best_params_["C"]
    assert parent.metrics["best_cv_score"] == pytest.approx(search.best_score_)
    by_c = {run.params["C"]: run for run in children}
    for i, params in enumerate(search.cv_results_["params"]):
        assert by_c[params["C"]].metrics["mean_test_score"] == pytest.approx(search.cv_results_["mean_test_score"][i])
    gitml.sklearn.autolog(max_tuning_runs=1)
    GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1.0]}, cv=2).fit(X, Y)
    newest = api.search_runs("name = 'gridsearchcv'", order_by="attributes.start_time DESC", repo=autolog)[0]
    assert len(api.search_runs(f"tags.mlflow.parentRunId = '{newest.id}'", repo=autolog)) == 1


def test_searches_with_several_metrics_and_sparse_data(autolog):
    from scipy.sparse import csr_matrix

    GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1.0]}, cv=3, scoring=["accuracy", "f1_macro"],
                 refit="accuracy").fit(X, Y)
    runs = _runs(autolog)
    parent = runs["gridsearchcv"]
    children = [run for run in runs.values() if run.tags.get("mlflow.parentRunId") == parent.id]
    assert len(children) == 2 and all("mean_test_f1_macro" in run.metrics for run in children)
    assert all(run.params["max_iter"] == 300 and run.tags["estimator_name"] == "LogisticRegression"
               for run in children)  # the estimator's every param, as MLflow's child runs have
    sparse = LogisticRegression(max_iter=300).fit(csr_matrix(X.to_numpy()), Y)
    run = api.search_runs("name = 'logisticregression'", repo=autolog)[0]
    assert "model" in run.artifacts and run.inputs == {}  # the model without an example; no digest yet
    assert (api.load_model(f"runs:/{run.id}/model", repo=autolog).predict(csr_matrix(X.to_numpy()))
            == sparse.predict(csr_matrix(X.to_numpy()))).all()


def test_inside_a_run_it_logs_into_that_run(autolog):
    with api.start_run(name="mine", repo=autolog) as run:
        api.log_param("note", "by hand")
        LogisticRegression(max_iter=300).fit(X, Y)
    runs = _runs(autolog)
    assert list(runs) == ["mine"] and runs["mine"].params["note"] == "by hand"
    assert "training_accuracy_score" in runs["mine"].metrics and "model" in runs["mine"].artifacts
    assert run.id == runs["mine"].id


def test_a_failing_fit_fails_its_run_and_a_failing_log_never_breaks_fit(autolog, tmp_path, monkeypatch):
    with pytest.raises(ValueError):
        LogisticRegression().fit(X, Y.iloc[:3])  # mismatched lengths: the user's error, as ever
    assert _runs(autolog)["logisticregression"].status == "FAILED"
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    monkeypatch.chdir(outside)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = LogisticRegression(max_iter=300).fit(X, Y)  # no repository: no run, but the fit works
    assert fitted.score(X, Y) > 0.9
    assert any("gitml autolog could not start a run" in str(w.message) for w in caught)


def test_disable_restores_every_fit(autolog):
    assert getattr(Pipeline.fit, "__gitml_autolog__", False)
    gitml.sklearn.autolog(disable=True)
    assert not getattr(Pipeline.fit, "__gitml_autolog__", False)
    assert not getattr(LogisticRegression.fit, "__gitml_autolog__", False)
    LogisticRegression(max_iter=300).fit(X, Y)
    assert _runs(autolog) == {}

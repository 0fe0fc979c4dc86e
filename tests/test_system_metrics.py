"""System metrics of a run (issue 14): a real background thread sampling the real machine."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from conftest import git

import gitml as api
from gitml.core import runsref
from gitml.errors import BadInputError

MLFLOW_NAMES = {  # MLflow's names for what a machine without a GPU reports
    "system/cpu_utilization_percentage", "system/system_memory_usage_megabytes",
    "system/system_memory_usage_percentage", "system/disk_usage_percentage", "system/disk_usage_megabytes",
    "system/disk_available_megabytes", "system/network_receive_megabytes", "system/network_transmit_megabytes",
}


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setenv("GITML_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.2")


def test_a_run_samples_the_machine_under_mlflows_names(repo, fast):
    with api.start_run(name="train", repo=repo, log_system_metrics=True) as run:
        api.log_metric("loss", 0.5)
        time.sleep(1.3)
    record = api.get_run(run.id, repo=repo)
    assert set(record.metrics) == MLFLOW_NAMES | {"loss"}
    cpu = api.get_metric_history(run.id, "system/cpu_utilization_percentage", repo=repo)
    assert len(cpu) >= 3 and [p.step for p in cpu] == list(range(len(cpu)))
    assert all(0 <= p.value <= 100 for p in cpu)
    assert 0 < record.metrics["system/system_memory_usage_percentage"] < 100
    assert record.metrics["system/disk_available_megabytes"] > 0


def test_off_by_default_and_on_from_the_environment(repo, fast, monkeypatch):
    with api.start_run(name="quiet", repo=repo) as quiet:
        time.sleep(0.5)
    assert api.get_run(quiet.id, repo=repo).metrics == {}
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")  # MLflow's switch works too
    with api.start_run(name="loud", repo=repo) as loud:
        time.sleep(0.5)
    assert "system/cpu_utilization_percentage" in api.get_run(loud.id, repo=repo).metrics
    code = textwrap.dedent(f"""
        import sys, gitml
        with gitml.start_run(name="x", repo={str(repo)!r}):
            pass
        assert "gitml.tracking.sysmetrics" not in sys.modules and "psutil" not in sys.modules
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={k: v for k, v in __import__("os").environ.items() if "SYSTEM_METRICS" not in k})
    assert proc.returncode == 0, proc.stderr  # off, it costs not even an import


def test_bad_settings_are_refused_before_any_run_exists(repo, monkeypatch):
    monkeypatch.setenv("GITML_SYSTEM_METRICS_SAMPLING_INTERVAL", "soon")
    with pytest.raises(BadInputError, match="GITML_SYSTEM_METRICS_SAMPLING_INTERVAL='soon'"):
        api.start_run(name="x", repo=repo, log_system_metrics=True)
    for bad in (0, -1, float("nan"), float("inf"), 1e20, "10", True):  # nan and inf broke the sampler
        with pytest.raises(BadInputError, match="number of seconds"):
            api.set_system_metrics_sampling_interval(bad)
    for text in ("nan", "inf", "-1"):
        monkeypatch.setenv("GITML_SYSTEM_METRICS_SAMPLING_INTERVAL", text)
        with pytest.raises(BadInputError, match="number of seconds"):
            api.start_run(name="x", repo=repo, log_system_metrics=True)
    monkeypatch.delenv("GITML_SYSTEM_METRICS_SAMPLING_INTERVAL")
    code = textwrap.dedent(f"""
        import sys
        sys.modules["psutil"] = None
        import gitml
        try:
            gitml.start_run(name="x", repo={str(repo)!r}, log_system_metrics=True)
        except gitml.errors.BadInputError as exc:
            print(exc)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "pip install 'gitml[system]'" in proc.stdout, proc.stderr
    assert api.list_active_runs(repo=repo) == []
    assert git(repo, "for-each-ref", runsref.RUNS_REF).strip() == ""  # no run, started or committed

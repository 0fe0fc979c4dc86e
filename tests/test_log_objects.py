"""Logging Python objects as artifacts (issue 14): log_dict, log_text, log_figure, log_image, log_table.

Real matplotlib, plotly, Pillow and pandas objects; the files are read back from the content
store through the runs ref; MLflow itself (its own virtualenv, ``GITML_MLFLOW``) writes the
same calls into a file store, and the bytes must be the same. Bad input: one clear error, and
the run records nothing of it.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import git

import gitml as api
from gitml.artifacts.local import materialize
from gitml.errors import BadInputError, GitmlError

MLFLOW = os.environ.get("GITML_MLFLOW")
CONFIG = {"model": {"depth": 3, "lr": 0.1}, "features": ["age", "plan"], "name": "churn-é"}
TABLE = pd.DataFrame({"id": [1, 2], "score": [0.25, 0.75], "label": ["no", "yes"]})
MORE = {"id": [3], "score": [0.5], "label": ["maybe"]}


def read(repo: Path, run_id: str, path: str) -> bytes:
    return materialize(f"runs:/{run_id}/{path}", repo=repo).read_bytes()


def test_dicts_text_and_tables_are_written_as_mlflow_writes_them(repo, tmp_path):
    with api.start_run(name="objects", repo=repo) as run:
        api.log_dict(CONFIG, "cfg/params.json")
        api.log_dict(CONFIG, "cfg/params.yaml")
        api.log_text("# Notes\nfirst try ✓\n", "notes.md")
        api.log_table(TABLE, "eval/preds.json")
        api.log_table(MORE, "eval/preds.json")  # the same file again: rows appended
    got = {path: read(repo, run.id, path) for path in ("cfg/params.json", "cfg/params.yaml", "notes.md",
                                                       "eval/preds.json")}
    assert json.loads(got["cfg/params.json"]) == CONFIG
    assert got["notes.md"].decode() == "# Notes\nfirst try ✓\n"
    table = json.loads(got["eval/preds.json"])
    assert table == {"columns": ["id", "score", "label"],
                     "data": [[1, 0.25, "no"], [2, 0.75, "yes"], [3, 0.5, "maybe"]]}
    record = api.get_run(run.id, repo=repo)
    assert record.tags["mlflow.loggedArtifacts"] == '[{"path": "eval/preds.json", "type": "table"}]'
    assert sorted(record.artifacts) == ["cfg/params.json", "cfg/params.yaml", "eval/preds.json", "notes.md"]
    fsck = subprocess.run(["git", "fsck", "--strict", "--no-progress"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0 and fsck.stderr == ""
    if not MLFLOW:
        pytest.skip("GITML_MLFLOW is not set: the byte-for-byte comparison with MLflow's files needs it")
    script = textwrap.dedent(f"""
        import json, sys, mlflow, pandas as pd
        mlflow.set_tracking_uri({(tmp_path / 'mlruns').as_uri()!r})
        config = json.loads(sys.argv[1])
        with mlflow.start_run() as run:
            mlflow.log_dict(config, "cfg/params.json")
            mlflow.log_dict(config, "cfg/params.yaml")
            mlflow.log_text("# Notes\\nfirst try ✓\\n", "notes.md")
            mlflow.log_table(pd.DataFrame({TABLE.to_dict(orient="list")!r}), "eval/preds.json")
            mlflow.log_table({MORE!r}, "eval/preds.json")
        print(mlflow.get_run(run.info.run_id).info.artifact_uri)
    """)
    proc = subprocess.run([MLFLOW, "-c", script, json.dumps(CONFIG)], capture_output=True, text=True,
                          env={**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    theirs = Path(proc.stdout.strip().splitlines()[-1].removeprefix("file://"))
    for path, ours in got.items():
        assert (theirs / path).read_bytes() == ours, path


def test_figures_and_images(repo):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go
    from PIL import Image

    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [1.0, 0.5, 0.25])
    pixels = (np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5)
    with api.start_run(name="pictures", repo=repo) as run:
        api.log_figure(fig, "plots/loss.png")
        api.log_figure(fig, "plots/loss.svg")
        api.log_figure(go.Figure(go.Scatter(x=[0, 1], y=[2, 3])), "plots/loss.html")
        api.log_image(pixels, "images/sample.png")
        api.log_image(Image.fromarray(pixels), "images/sample.jpg")
        api.log_image(np.linspace(0, 1, 16).reshape(4, 4), key="attention/head 1", step=7, timestamp=1_700_000_000_000)
        api.log_image(np.ones((2, 2)), "grad.png", step=2)  # a file name with a step: that series' step
    plt.close(fig)
    assert read(repo, run.id, "plots/loss.png").startswith(b"\x89PNG")
    assert b"<svg" in read(repo, run.id, "plots/loss.svg")
    html = read(repo, run.id, "plots/loss.html")
    assert b"<html>" in html and len(html) > 1_000_000 and b'<script src="http' not in html  # plotly.js inline: offline
    back = Image.open(io.BytesIO(read(repo, run.id, "images/sample.png")))
    assert (np.asarray(back) == pixels).all()
    assert Image.open(io.BytesIO(read(repo, run.id, "images/sample.jpg"))).format == "JPEG"
    record = api.get_run(run.id, repo=repo)
    series = sorted(p for p in record.artifacts if p.startswith("images/attention~head 1+step+7+timestamp+1700000000000+"))
    assert len(series) == 2 and series[0].endswith("+compressed.webp") and series[1].endswith(".png")
    scaled = np.asarray(Image.open(io.BytesIO(read(repo, run.id, series[1]))))
    assert scaled[0, 0] == 0 and scaled[-1, -1] == 255  # floats 0–1 scaled to 0–255
    assert any(p.startswith("images/grad+step+2+") for p in record.artifacts)
    assert record.tags["mlflow.loggedImages"] == "True"


@pytest.mark.parametrize("call, words", [
    (lambda: api.log_dict({"when": object()}, "d.json"), "cannot write 'd.json' as JSON"),
    (lambda: api.log_dict({"x": float("nan")}, "d.json"), "as JSON"),
    (lambda: api.log_dict({"when": object()}, "d.yaml"), "as YAML"),
    (lambda: api.log_dict({"a": 1}, "d.txt"), "writes .json, .yaml or .yml"),
    (lambda: api.log_dict([1, 2], "d.json"), "needs a dict"),
    (lambda: api.log_text(b"bytes", "t.txt"), "needs a str"),
    (lambda: api.log_text("ok", "../t.txt"), ".."),
    (lambda: api.log_figure("a plot", "p.png"), "matplotlib or plotly figure"),
    (lambda: api.log_figure(__import__("plotly.graph_objects").graph_objects.Figure(), "p.doc"),
     "plotly cannot write 'p.doc'; use .html"),
    (lambda: api.log_image(np.zeros(3), "i.png"), "not an image"),
    (lambda: api.log_image(np.full((2, 2), 300), "i.png"), "0–255"),
    (lambda: api.log_image(np.full((2, 2), 1.5), "i.png"), "0–1"),
    (lambda: api.log_image(np.zeros((2, 2)), "i.nope"), "Pillow cannot write"),
    (lambda: api.log_image(__import__("PIL.Image").Image.new("F", (4, 4)), "f.png"), "cannot write a F image"),
    (lambda: api.log_image(np.zeros((2, 2)), "i.png", key="k"), "not both"),
    (lambda: api.log_image(np.zeros((2, 2))), "not neither"),
    (lambda: api.log_image(np.zeros((2, 2)), key="a%b"), "may hold only"),
    (lambda: api.log_image(np.zeros((2, 2)), key="k", step=-1), "step must be"),
    (lambda: api.log_table(TABLE, "t.csv"), "a .json or .parquet file"),
    (lambda: api.log_table([1, 2], "t.json"), "DataFrame or a dict"),
])
def test_bad_objects_are_refused_and_nothing_is_logged(repo, call, words):
    import matplotlib

    matplotlib.use("Agg")
    with api.start_run(name="bad", repo=repo) as run:
        with pytest.raises(BadInputError) as caught:
            call()
        assert words in str(caught.value)
    record = api.get_run(run.id, repo=repo)
    assert record.artifacts == {} and record.tags.get("mlflow.loggedImages") is None


def test_appending_a_table_to_a_file_that_is_no_table_is_refused(repo):
    with api.start_run(name="mixed", repo=repo) as run:
        api.log_text("not a table", "t.json")
        with pytest.raises(BadInputError, match="'t.json' is not a table to append to"):
            api.log_table({"a": [1]}, "t.json")
    assert read(repo, run.id, "t.json") == b"not a table"


def test_objects_need_an_active_run(repo):
    with pytest.raises(GitmlError, match="no active run"):
        api.log_dict({"a": 1}, "d.json")
    assert git(repo, "for-each-ref", "refs/gitml").strip() == ""


@pytest.mark.parametrize("first, second", [("d/f.txt", "d"), ("d", "d/f.txt"), ("a/b/c.txt", "a/b"),
                                           ("m", "m/x/y.txt")])
def test_a_path_that_would_be_another_ones_folder_is_refused_when_logged(repo, tmp_path, first, second):
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"w")
    with api.start_run(repo=repo) as run:
        api.log_text("one", first)
        with pytest.raises(BadInputError, match="clashes with"):
            api.log_text("two", second)
        api.log_text("again", first)  # the same path again replaces it
        api.log_artifact(str(folder))  # a folder artifact, then a file inside it
        with pytest.raises(BadInputError, match="clashes with 'folder'"):
            api.log_text("x", "folder/inner.txt")
    found = api.get_run(run.id, repo=repo)  # readable, and pushable
    assert sorted(found.artifacts) == sorted([first, "folder"])

"""``gitml demo``: a small repository with a training script and a few runs, for a first look."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gitml.artifacts.remotes import add_remote
from gitml.artifacts.transfer import push
from gitml.core.errors import BadInputError
from gitml.core.formats import Run
from gitml.registry.ops import assign, register_model
from gitml.tracking.commit import commit_run
from gitml.tracking.query import search_runs
from gitml.tracking.setup import init

TRAIN_PY = '''\
"""A toy training script: reads params.yaml, writes metrics.json and model.pkl."""
import json
import math
import pickle
import random
import sys

import yaml

params = yaml.safe_load(open("params.yaml"))
rng = random.Random(params["seed"])
data = [(x, 1 if x + rng.gauss(0, 0.3) > 0 else 0) for x in (rng.uniform(-1, 1) for _ in range(400))]
w, b = 0.0, 0.0
for epoch in range(params["epochs"]):
    loss = 0.0
    for x, y in data:
        p = 1 / (1 + math.exp(-(w * x + b)))
        w -= params["lr"] * (p - y) * x
        b -= params["lr"] * (p - y)
        loss -= math.log(max(p if y else 1 - p, 1e-12))
    if "--log-with-api" in sys.argv:
        import gitml
        gitml.log_metric("loss", loss / len(data), step=epoch)
accuracy = sum((w * x + b > 0) == bool(y) for x, y in data) / len(data)
json.dump({"accuracy": accuracy, "loss": loss / len(data)}, open("metrics.json", "w"))
pickle.dump({"w": w, "b": b}, open("model.pkl", "wb"))
'''

API_PY = '''\
"""The same training, logged from inside the script with the gitml API."""
import json
import runpy
import sys

import gitml
import yaml

with gitml.start_run(name="api-run", experiment="demo") as run:
    gitml.log_params(yaml.safe_load(open("params.yaml")))
    sys.argv = ["train.py", "--log-with-api"]
    runpy.run_path("train.py")
    gitml.log_metric("accuracy", json.load(open("metrics.json"))["accuracy"])
    gitml.log_artifact("model.pkl")
print(run.id)
'''


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _commit(cwd: Path, message: str) -> None:
    # A fresh machine may have no git identity yet; the demo must still work there.
    has_identity = subprocess.run(["git", "config", "user.email"], cwd=cwd, capture_output=True)
    identity = [] if has_identity.stdout.strip() else ["-c", "user.name=gitml demo",
                                                       "-c", "user.email=demo@gitml.invalid"]
    _git(cwd, *identity, "commit", "-q", "-m", message)


def demo(directory: str | Path = "gitml-demo") -> tuple[Path, list[Run]]:
    """Create a demo repository, train three times with different params and commit the runs.

    Two runs are committed the way a script that never imports gitml does (``commit-run`` after
    training); one logs from inside the script with the API; a fourth trains longer on branch
    ``more-epochs``, for ``gitml diff main more-epochs``. The models are pushed to an artifact
    remote, a folder ``.storage/`` inside the demo standing in for a bucket, and the best one on
    main is registered as ``toy-classifier`` v0.0.1 and put in stage ``prod``.

    Returns:
        The repository path and its runs, newest first.
    """
    path = Path(directory).resolve()
    if path.exists() and any(path.iterdir()):
        raise BadInputError(f"{path} exists and is not empty", hint="give a new directory")
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q", "-b", "main")
    (path / "train.py").write_text(TRAIN_PY, encoding="utf-8")
    (path / "train_with_api.py").write_text(API_PY, encoding="utf-8")
    (path / ".gitignore").write_text("metrics.json\nmodel.pkl\n.storage/\n", encoding="utf-8")
    init(path)
    config = path / "gitml.yaml"
    config.write_text(config.read_text().replace("# experiment: default", "experiment: demo"))
    (path / "params.yaml").write_text("lr: 0.01\nepochs: 5\nseed: 1\n", encoding="utf-8")
    for name, lr in (("baseline", 0.01), ("faster-lr", 0.1)):
        (path / "params.yaml").write_text(f"lr: {lr}\nepochs: 5\nseed: 1\n", encoding="utf-8")
        _git(path, "add", ".")
        _commit(path, f"train with lr={lr}")
        subprocess.run([sys.executable, "train.py"], cwd=path, check=True, capture_output=True)
        commit_run(name=name, experiment="demo", artifacts=[path / "model.pkl"],
                   params_files=[path / "params.yaml"], metrics_files=[path / "metrics.json"],
                   command="python train.py", repo=path)
    subprocess.run([sys.executable, "train_with_api.py"], cwd=path, check=True, capture_output=True)
    # A branch that trains longer, for `gitml diff main more-epochs`.
    _git(path, "checkout", "-q", "-b", "more-epochs")
    (path / "params.yaml").write_text("lr: 0.1\nepochs: 20\nseed: 1\n", encoding="utf-8")
    _git(path, "add", "params.yaml")
    _commit(path, "train for 20 epochs")
    subprocess.run([sys.executable, "train.py"], cwd=path, check=True, capture_output=True)
    commit_run(name="more-epochs", experiment="demo", artifacts=[path / "model.pkl"],
               params_files=[path / "params.yaml"], metrics_files=[path / "metrics.json"],
               command="python train.py", repo=path)
    _git(path, "checkout", "-q", "main")
    # A folder stands in for the team's bucket: the same commands work with s3://, gs://, ...
    add_remote("storage", str(path / ".storage"), default=True, local=True, repo=path)
    push(repo=path)
    # The best model on main becomes version v0.0.1 of "toy-classifier", promoted to prod.
    best = search_runs("attributes.branch = 'main'", order_by="metrics.accuracy DESC", limit=1, repo=path)[0]
    version = register_model("toy-classifier", best.id, repo=path)["version"]
    assign("toy-classifier", version, "prod", repo=path)
    return path, search_runs(repo=path)

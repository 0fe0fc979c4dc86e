"""``gitml models serve`` (issue 13): MLflow's scoring protocol over real HTTP, from a real server process.

Each server is ``gitml models serve --port 0`` started as a subprocess: the test reads the URL it
prints once the model is loaded and the port bound, asks ``/ping`` (which must answer at once),
sends real requests with ``requests``, then stops it with SIGTERM (or Ctrl-C's SIGINT) and
checks it exits 0. MLflow's own client (its virtualenv, ``GITML_MLFLOW``) scores against it too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests
from conftest import GITML, gitml
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier

import gitml as api
from gitml import registry
from gitml.models import PythonModel
from gitml.models.signature import infer_signature

MLFLOW = os.environ.get("GITML_MLFLOW")
X, Y = load_iris(return_X_y=True, as_frame=True)
X = X.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
JSON = {"Content-Type": "application/json"}
CSV = {"Content-Type": "text/csv"}
PARQUET = {"Content-Type": "application/vnd.apache.parquet"}


class Knob(PythonModel):
    """A custom model: ``x`` times the ``mult`` param; ``mode`` makes it fail or take 30 s."""

    def predict(self, context, model_input, params=None):
        params = params or {}
        if params.get("mode") == "sleep":
            time.sleep(30)  # far longer than the server's --timeout 1
        if params.get("mode") == "fail":
            raise RuntimeError("the knob broke")
        return model_input["x"] * params.get("mult", 1.0)


class Echo(PythonModel):
    """Returns its input's first column: the tests of what reaches a model."""

    def predict(self, context, model_input, params=None):
        return model_input[:, 0] if isinstance(model_input, np.ndarray) else model_input.iloc[:, 0]


class Counted(PythonModel):
    """Counts its predictions in the file $COUNTED (one line each) and takes 2 s, or exits."""

    def predict(self, context, model_input, params=None):
        if (params or {}).get("mode") == "exit":
            raise SystemExit(3)
        with open(os.environ["COUNTED"], "a") as f:
            f.write("x\n")
        time.sleep(2)
        return model_input["x"]


@pytest.fixture(scope="module")
def forest():
    return RandomForestClassifier(n_estimators=10, random_state=0).fit(X, Y)


@pytest.fixture(scope="module")
def models(tmp_path_factory, forest):
    """Model folders: ``rf`` (sklearn, column signature) and ``knob`` (custom, params schema)."""
    root = tmp_path_factory.mktemp("models")
    api.save_model(forest, root / "rf", input_example=X[:3])
    signature = infer_signature(pd.DataFrame({"x": [1.0]}), params={"mult": 1.0, "mode": "ok"})
    api.save_model(Knob(), root / "knob", signature=signature)
    return root


def _env(home: Path) -> dict[str, str]:
    """This process's environment without git's and gitml's variables, and its own HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GITML_"))}
    return {**env, "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"}


class Server:
    """A running ``gitml models serve``: its process, URL, and requests to it."""

    def __init__(self, proc: subprocess.Popen, url: str, stderr: Path) -> None:
        self.proc, self.url, self.stderr = proc, url, stderr

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, timeout=60)

    def post(self, body, headers=JSON, path="/invocations") -> requests.Response:
        data = json.dumps(body) if isinstance(body, (dict, list)) else body
        return requests.post(self.url + path, data=data, headers=headers, timeout=60)

    def children(self) -> list[int]:
        tasks = Path(f"/proc/{self.proc.pid}/task")
        return [int(pid) for task in tasks.iterdir() for pid in (task / "children").read_text().split()]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and wait for the exit status (killed, and a failure, if it hangs)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("the server did not stop within 60 s of the signal") from None
        return self.proc.returncode


@contextlib.contextmanager
def serving(model, *options: str, cwd: Path, stop: bool = True, env: dict | None = None):
    """``gitml models serve -m MODEL --port 0 OPTIONS`` running in ``cwd``; stopped (exit 0) after."""
    home = cwd / ".home"
    home.mkdir(exist_ok=True)
    stderr = cwd / f".serve-{time.monotonic_ns()}.err"
    with open(stderr, "w") as err:
        proc = subprocess.Popen([*GITML, "models", "serve", "-m", str(model), "--port", "0", *options],
                                cwd=cwd, stdout=subprocess.PIPE, stderr=err, text=True, env={**_env(home), **(env or {})})
    server = None
    try:
        line = proc.stdout.readline()  # the URL line, once loaded and bound (or "" if it exits)
        found = re.search(r"http://\S+", line)
        assert found, f"no URL from the server: {line!r}; stderr: {stderr.read_text()[-2000:]}"
        server = Server(proc, found.group(0), stderr)
        ping = server.get("/ping")  # bound before the line: this connects at once, never refused
        assert ping.status_code == 200 and ping.json() == {"status": "ok"}
        yield server
        if stop:
            assert server.stop() == 0, stderr.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stdout.close()


@pytest.fixture(scope="module")
def rf_server(models):
    with serving(models / "rf", cwd=models) as server:
        yield server


@pytest.fixture(scope="module")
def knob_server(models):
    with serving(models / "knob", "--timeout", "1", "--max-body", "4096", cwd=models) as server:
        yield server


def split(frame: pd.DataFrame) -> dict:
    return {"dataframe_split": frame.to_dict(orient="split")}


def test_every_input_form_scores_the_sklearn_model(rf_server, forest):
    rows = X.iloc[[0, 60, 120]]
    want = forest.predict(rows).tolist()
    bodies = [
        split(rows),  # with "index", as MLflow's client sends it
        {"dataframe_split": {"columns": list(X.columns), "data": rows.values.tolist()}},
        {"dataframe_records": rows.to_dict(orient="records")},
        {"instances": rows.to_dict(orient="records")},
        {"inputs": rows.to_dict(orient="list")},
        {"inputs": rows.to_dict(orient="records")},
        {"dataframe_split": {"columns": list(X.columns), "data": rows.round().astype(int).values.tolist()}},
    ]
    for body in bodies[:-1]:
        answer = rf_server.post(body)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == {"predictions": want}, body
    integers = rf_server.post(bodies[-1])  # integers sent for double columns widen, as MLflow's server does
    assert integers.status_code == 200 and integers.json()["predictions"] == forest.predict(
        rows.round().astype(float)).tolist()
    csv = rf_server.post(rows.to_csv(index=False), headers=CSV)
    assert csv.status_code == 200 and csv.json() == {"predictions": want}
    parquet = rf_server.post(rows.to_parquet(), headers=PARQUET)
    assert parquet.status_code == 200 and parquet.json() == {"predictions": want}
    charset = rf_server.post(split(rows), headers={"Content-Type": "application/json; charset=UTF-8"})
    assert charset.status_code == 200 and charset.json() == {"predictions": want}


def test_health_and_version(rf_server):
    assert rf_server.get("/health").json() == {"status": "ok"}
    version = rf_server.get("/version").json()
    assert version["gitml"] == api.__version__ and version["mlflow_protocol"]
    assert len(version["model_uuid"]) == 32


def _error(answer: requests.Response, status: int, code: str, words: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["error_code"] == code and words in body["message"], body
    assert "stack_trace" not in body


def test_bad_requests_are_json_errors(rf_server):
    rows = X.iloc[:2]
    _error(rf_server.post("{not json"), 400, "BAD_REQUEST", "not valid JSON")
    _error(rf_server.post([1, 2]), 400, "BAD_REQUEST", "must be a JSON object")
    _error(rf_server.post({"columns": ["a"], "data": [[1]]}), 400, "BAD_REQUEST", "exactly one of")
    _error(rf_server.post({**split(rows), "inputs": rows.to_dict(orient="list")}), 400, "BAD_REQUEST",
           "exactly one of")
    _error(rf_server.post({"dataframe_split": {"rows": [[1]]}}), 400, "BAD_REQUEST", "'data'")
    _error(rf_server.post({"dataframe_records": {"a": 1}}), 400, "BAD_REQUEST", "list of row objects")
    _error(rf_server.post({**split(rows), "params": [1]}), 400, "BAD_REQUEST", "'params'")
    _error(rf_server.post({"dataframe_records": [{"petal": 1.0}]}), 400, "INVALID_PARAMETER_VALUE",
           "Model is missing inputs")
    text = rows.astype(object)
    text.iloc[0, 0] = "five"
    _error(rf_server.post(split(text)), 400, "INVALID_PARAMETER_VALUE", "sepal_length")
    bad_csv = rows.to_csv(index=False).replace("5.1", "five", 1)
    _error(rf_server.post(bad_csv, headers=CSV), 400, "BAD_REQUEST", "not CSV")
    _error(rf_server.post(b"\xff\xfe", headers=CSV), 400, "BAD_REQUEST", "not CSV")
    _error(rf_server.post("", headers=CSV), 400, "BAD_REQUEST", "not CSV")
    shifted = rows.to_csv(index=False) + "1,1,1,1,5,6\n"  # more fields than the header: never shifted
    _error(rf_server.post(shifted, headers=CSV), 400, "BAD_REQUEST", "not CSV")
    _error(rf_server.post("[" * 100000), 400, "BAD_REQUEST", "nested too deeply")
    twice = {"dataframe_split": {"columns": ["sepal_length"] * 4, "data": [[1.0] * 4]}}
    _error(rf_server.post(twice), 400, "BAD_REQUEST", "more than once")
    _error(rf_server.post(b"PAR1 not parquet", headers=PARQUET), 400, "BAD_REQUEST", "not Parquet")
    # what the model itself cannot take is the client's input, answered 400 as MLflow answers it
    logged = len(rf_server.stderr.read_text().splitlines())
    columns = json.dumps(list(X.columns))
    for body in ({"dataframe_split": {"columns": list(X.columns), "data": []}},  # an empty batch
                 f'{{"dataframe_split": {{"columns": {columns}, "data": [[1e999, 1, 1, 1]]}}}}'):  # infinity
        _error(rf_server.post(body), 400, "BAD_REQUEST", "the model failed on this input: ValueError")
    nan = f'{{"dataframe_split": {{"columns": {columns}, "data": [[NaN, 1, 1, 1]]}}}}'  # caught before the model
    _error(rf_server.post(nan), 400, "INVALID_PARAMETER_VALUE", "required but has missing values")
    failures = rf_server.stderr.read_text().splitlines()[logged:]
    assert [line.split(": ")[:3] for line in failures] == [["gitml serve", "predict failed", "ValueError"]] * 2, failures


def test_unknown_content_types_paths_and_methods(rf_server):
    body = json.dumps(split(X.iloc[:1]))
    _error(rf_server.post(body, headers={"Content-Type": "text/plain"}), 415, "UNSUPPORTED_MEDIA_TYPE", "text/plain")
    _error(rf_server.post(body, headers={"Content-Type": "application/json; charset=latin-1"}), 415,
           "UNSUPPORTED_MEDIA_TYPE", "UTF-8")
    _error(rf_server.post(body, headers={"Content-Type": "application/json; format=pandas-split"}), 415,
           "UNSUPPORTED_MEDIA_TYPE", "format")
    no_type = requests.post(rf_server.url + "/invocations", data=body.encode(), timeout=60)
    _error(no_type, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type is required")
    _error(rf_server.get("/nowhere"), 404, "ENDPOINT_NOT_FOUND", "/nowhere")
    _error(rf_server.get("/invocations"), 405, "METHOD_NOT_ALLOWED", "GET")
    _error(rf_server.post(body, path="/ping"), 405, "METHOD_NOT_ALLOWED", "POST")


def test_parquet_without_a_parquet_reader_is_415(models, tmp_path):
    for name in ("pyarrow", "fastparquet"):  # a server whose Python cannot import either
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError('no {name} here')\n")
    with serving(models / "rf", cwd=models, env={"PYTHONPATH": str(tmp_path)}) as server:
        _error(server.post(X.iloc[:1].to_parquet(), headers=PARQUET), 415, "UNSUPPORTED_MEDIA_TYPE",
               "pip install pyarrow")
        assert server.post(split(X.iloc[:1])).status_code == 200  # JSON as ever


def _raw_answer(server, rest: bytes, until: bytes, wait: float) -> bytes:
    """What the server answers, within ``wait`` seconds, to a POST whose head ends with ``rest``."""
    import socket

    with socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1]))) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + rest)
        sock.settimeout(wait)
        answer = b""
        while until not in answer:  # the head and the body may come in two reads
            more = sock.recv(4096)
            if not more:
                break
            answer += more
    return answer


def test_custom_model_params_timeout_failure_and_size_limit(knob_server):
    frame = pd.DataFrame({"x": [1.0, 5.0]})
    plain = knob_server.post(split(frame))
    assert plain.status_code == 200 and plain.json() == {"predictions": [{"x": 1.0}, {"x": 5.0}]}  # a Series, as MLflow answers it
    doubled = knob_server.post({**split(frame), "params": {"mult": 2}})
    assert doubled.json() == {"predictions": [{"x": 2.0}, {"x": 10.0}]}
    column = knob_server.post({"inputs": [1, 2], "params": {"mult": 3.0}})  # one column: a bare list is that column
    assert column.json() == {"predictions": [{"x": 3.0}, {"x": 6.0}]}
    _error(knob_server.post({**split(frame), "params": {"mult": "two"}}), 400, "INVALID_PARAMETER_VALUE", "mult")
    _error(knob_server.post({**split(frame), "params": {"mode": "fail"}}), 400, "BAD_REQUEST", "the knob broke")
    _error(knob_server.post({**split(frame), "params": {"mode": "sleep"}}), 504, "DEADLINE_EXCEEDED", "1 s")
    big = {"dataframe_records": [{"x": float(i)} for i in range(500)]}
    assert len(json.dumps(big)) > 4096
    _error(knob_server.post(big), 413, "PAYLOAD_TOO_LARGE", "4096 bytes")
    chunked = requests.post(knob_server.url + "/invocations", data=iter([b'{"inputs": [', b"1.0, " * 2000, b"1.0]}"]),
                            headers=JSON, timeout=60)  # no Content-Length: counted as it comes
    _error(chunked, 413, "PAYLOAD_TOO_LARGE", "4096 bytes")
    # says 5000 and sends 2: refused at once, from the header alone, long before --timeout
    declared = _raw_answer(knob_server, b"Content-Length: 5000\r\n\r\n{}", b"PAYLOAD_TOO_LARGE", wait=0.9)
    assert declared.startswith(b"HTTP/1.1 413") and b"4096 bytes" in declared, declared[:300]
    # says 100 and sends 1, then nothing: cut off at --timeout
    stalled = _raw_answer(knob_server, b"Content-Length: 100\r\n\r\n{", b"DEADLINE_EXCEEDED", wait=30)
    assert stalled.startswith(b"HTTP/1.1 504"), stalled[:300]
    again = knob_server.post(split(frame))  # the slow predict still running does not block others
    assert again.status_code == 200 and again.json()["predictions"] == [{"x": 1.0}, {"x": 5.0}]


def test_serves_a_registered_model_by_stage(repo, forest):
    with api.start_run(name="rf", repo=repo):
        api.log_model(forest, "model", input_example=X[:3], registered_model_name="churn")
    registry.assign("churn", "v0.0.1", "prod", repo=repo)
    with serving("models:/churn@prod", cwd=repo) as server:
        answer = server.post(split(X))
    assert answer.status_code == 200 and answer.json()["predictions"] == forest.predict(X).tolist()


def test_two_workers_answer_and_stop_with_their_parent(models, forest):
    with serving(models / "rf", "--workers", "2", cwd=models, stop=False) as server:
        answers = [server.post(split(X.iloc[i:i + 5])) for i in range(0, 40, 5)]
        workers = server.children()
        assert len(workers) >= 2  # the worker processes (plus multiprocessing's helper, if any)
        assert server.stop(signal.SIGINT) == 0, server.stderr.read_text()[-2000:]  # Ctrl-C
    assert [a.json()["predictions"] for a in answers] == [forest.predict(X.iloc[i:i + 5]).tolist()
                                                          for i in range(0, 40, 5)]
    # multiprocessing's resource tracker ends when it reads its pipe's end, a moment after the parent
    for _ in range(600):
        left = [pid for pid in workers if _alive(pid)]
        if not left:
            break
        time.sleep(0.05)
    assert left == []


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_bad_models_and_missing_extra_fail_before_listening(tmp_path, repo, models):
    (tmp_path / "empty").mkdir()
    empty = gitml(tmp_path, "models", "serve", "-m", "empty", "--port", "0")
    assert empty.code == 2 and empty.out == "" and empty.err.count("\n") == 1 and "MLmodel" in empty.err
    nothing = gitml(repo, "models", "serve", "-m", "models:/nope@prod", "--port", "0")
    assert nothing.code == 2 and nothing.out == "" and nothing.err.startswith("gitml: error:")
    for host in ("999.1.1.1", "0.0.0.0.0"):  # an address that cannot be bound: one line, no warning first
        bad = gitml(tmp_path, "models", "serve", "-m", str(models / "rf"), "--host", host, "--port", "0")
        assert (bad.code, bad.out) == (2, "") and bad.err.startswith(f"gitml: error: cannot listen on {host}:0")
        assert bad.err.count("\n") == 1, bad.err
    with serving(models / "rf", "--host", "0.0.0.0", cwd=models) as exposed:  # bound: now it warns
        assert exposed.stderr.read_text().startswith(
            "gitml: warning: listening on 0.0.0.0: the model is reachable from the network\n")
    code = ("import sys; sys.modules['starlette'] = None; from gitml.cli.main import main; "
            "main(['models', 'serve', '-m', 'anything'])")
    missing = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr == "gitml: error: gitml models serve needs gitml[serve]: pip install 'gitml[serve]'\n"


def test_cli_help_imports_no_server_or_model_library():
    for argv in (["--help"], ["models", "--help"], ["models", "serve", "--help"]):
        code = textwrap.dedent(f"""
            import sys
            from gitml.cli.main import main
            try:
                main({argv!r})
            except SystemExit:
                pass
            heavy = ("starlette", "uvicorn", "pandas", "sklearn", "numpy")
            print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)
        """)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert proc.stderr.strip() == "[]", argv


@pytest.mark.interop
@pytest.mark.skipif(not MLFLOW and not os.environ.get("CI"), reason="MLflow not available (GITML_MLFLOW)")
def test_mlflows_own_client_scores_against_gitml(rf_server, knob_server, forest, tmp_path):
    assert MLFLOW, "GITML_MLFLOW must be set in CI"
    X.to_csv(tmp_path / "x.csv", index=False)
    script = textwrap.dedent(f"""
        import json, sys, pandas as pd
        from mlflow.pyfunc.scoring_server.client import ScoringServerClient

        def client(url):
            host, port = url.rsplit("/", 1)[-1].split(":")
            return ScoringServerClient(host, int(port))

        X = pd.read_csv({str(tmp_path / "x.csv")!r})
        rf, knob = client({rf_server.url!r}), client({knob_server.url!r})
        rf.ping()
        out = {{"rf": rf.invoke(X).get_predictions(predictions_format="ndarray").tolist(),
               "knob": knob.invoke(pd.DataFrame({{"x": [1.0, 5.0]}}), params={{"mult": 2.0}})
                       .get_predictions().to_dict(orient="list")}}
        json.dump(out, sys.stdout)
    """)
    proc = subprocess.run([MLFLOW, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout)
    assert got["rf"] == forest.predict(X).tolist()
    assert got["knob"] == {"x": [2.0, 10.0]}


def test_requests_answered_504_while_queued_never_run(models, tmp_path):
    import concurrent.futures

    counted = tmp_path / "counted.txt"
    signature = infer_signature(pd.DataFrame({"x": [1.0]}), params={"mode": "ok"})
    api.save_model(Counted(), tmp_path / "counted", signature=signature)
    with serving(tmp_path / "counted", "--timeout", "0.5", cwd=tmp_path, env={"COUNTED": str(counted)}) as server:
        body = {"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}
        with concurrent.futures.ThreadPoolExecutor(40) as pool:
            answers = list(pool.map(lambda _: server.post(body).status_code, range(40)))
        assert answers == [504] * 40
        time.sleep(4.5)  # the predictions begun are done; the ones that only queued were dropped
        begun = counted.read_text().count("x")
        # a few run at once; each slot a timed-out request gives back may start one more just
        # before its own deadline, at most one per thread of the pool: never all 40
        assert min(4, os.cpu_count() or 1) <= begun <= 16
        time.sleep(2.5)
        assert counted.read_text().count("x") == begun  # and none of the others ever starts
        _error(server.post({**body, "params": {"mode": "exit"}}), 400, "BAD_REQUEST", "SystemExit")


def test_values_the_signature_cannot_hold_are_400(tmp_path, models):
    frame = pd.DataFrame({"i": [1], "d": pd.to_datetime(["2020-01-01"]), "x": [0.5]})
    api.save_model(Echo(), tmp_path / "typed", signature=infer_signature(frame))
    api.save_model(Echo(), tmp_path / "tensor", signature=infer_signature(np.zeros((2, 2))))
    with serving(tmp_path / "typed", cwd=tmp_path) as typed, serving(tmp_path / "tensor", cwd=tmp_path) as tensor:
        ok = typed.post({"dataframe_records": [{"i": 2.0, "d": "2020-01-02", "x": 1}]})
        assert ok.status_code == 200, ok.text
        for record, words in (({"i": 1e20, "d": "2020-01-02", "x": 1.0}, "'i'"),  # past int64: never wrapped
                              ({"i": 9.3e18, "d": "2020-01-02", "x": 1.0}, "'i'"),
                              ({"i": 1, "d": "2020-01-01T00:00:00+05:00", "x": 1.0}, "time zone"),
                              ({"i": 1, "d": "2020-01-02", "x": 2**60 + 1}, "lose digits")):
            _error(typed.post({"dataframe_records": [record]}), 400, "INVALID_PARAMETER_VALUE", words)
        _error(typed.post("i,i,d,x\n1,2,2020-01-01,0.5\n", headers=CSV), 400, "BAD_REQUEST", "more than once")
        _error(tensor.post({"inputs": [[1.0, 2.0], [3.0]]}), 400, "BAD_REQUEST", "nested) list of numbers")
        assert tensor.post({"inputs": [[1.0, 2.0], [3.0, 4.0]]}).status_code == 200


def test_a_malformed_signature_is_refused_when_the_model_loads(tmp_path, models):
    import shutil

    for spec, words in (('[{"name": "x"}]', "no type"), ('[{"name": "x", "type": "quux"}]', "unknown type 'quux'"),
                        ('[{"type": "tensor", "tensor-spec": {"dtype": "nope"}}]', "numpy dtype")):
        folder = tmp_path / f"bad-{len(spec)}"
        shutil.copytree(models / "knob", folder)
        mlmodel = folder / "MLmodel"
        text = mlmodel.read_text()
        start = text.index("  inputs: ")
        end = text.index("\n", start)
        mlmodel.write_text(text[:start] + f"  inputs: '{spec}'" + text[end:])
        got = gitml(tmp_path, "models", "serve", "-m", str(folder), "--port", "0")
        assert (got.code, got.out) == (2, "") and words in got.err and got.err.count("\n") == 1, got.err
    nan = gitml(tmp_path, "models", "serve", "-m", str(models / "knob"), "--timeout", "nan", "--port", "0")
    assert nan.code == 2 and "finite" in nan.err

"""Experiments as objects: records on the runs ref, MLflow's API names, the CLI, sync and strangers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import GITML, RUNS_REF, craft, git, gitml, runs_tip

import gitml as api
from gitml import sync
from gitml.core.errors import BadInputError, ExperimentNotFoundError
from gitml.core.experiments import experiment_id_for
from gitml.tracking import experiments as exps


@pytest.fixture(autouse=True)
def no_current_experiment(monkeypatch):
    """set_experiment is per process: each test starts without one."""
    monkeypatch.setattr(exps, "_current", None)
    for name in exps.EXPERIMENT_ENV:
        monkeypatch.delenv(name, raising=False)


def records(path) -> list[str]:
    """The experiment.yaml paths on the runs ref, as git lists them."""
    out = git(path, "ls-tree", "-r", "--name-only", RUNS_REF, "--", "experiments", check=False)
    return sorted(out.split())


def test_set_experiment_records_it_once_and_start_run_uses_it(repo):
    exp = api.set_experiment("churn", repo=repo)
    assert exp.experiment_id == experiment_id_for("churn") and exp.recorded and exp.run_count == 0
    assert records(repo) == [f"experiments/{exp.experiment_id[:2]}/{exp.experiment_id}/experiment.yaml"]
    tip = runs_tip(repo)
    assert api.set_experiment("churn", repo=repo).experiment_id == exp.experiment_id
    assert runs_tip(repo) == tip  # known already: nothing written
    with api.start_run(repo=repo) as run:
        api.log_metric("acc", 0.9)
    assert run.experiment == "churn"
    assert api.commit_run(metrics={"acc": 0.8}, repo=repo).experiment == "churn"
    assert api.get_experiment_by_name("churn", repo=repo).run_count == 2
    git(repo, "fsck", "--strict")
    # the runs written after the record kept it
    assert len(records(repo)) == 1
    assert api.set_experiment(experiment_id=exp.experiment_id, repo=repo).name == "churn"


def test_environment_names_the_experiment_and_set_experiment_wins(repo, monkeypatch):
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-mlflow-env")
    assert api.commit_run(repo=repo).experiment == "from-mlflow-env"
    monkeypatch.setenv("GITML_EXPERIMENT_NAME", "from-env")
    assert api.commit_run(repo=repo).experiment == "from-env"
    api.set_experiment("chosen", repo=repo)
    assert api.commit_run(repo=repo).experiment == "chosen"
    assert api.commit_run(experiment="explicit", repo=repo).experiment == "explicit"


@pytest.mark.parametrize("kwargs, error", [
    ({}, BadInputError), ({"experiment_name": "a", "experiment_id": "0" * 32}, BadInputError),
    ({"experiment_id": "f" * 32}, ExperimentNotFoundError), ({"experiment_name": "bad\nname"}, BadInputError),
    ({"experiment_name": ""}, BadInputError),
])
def test_set_experiment_refuses_bad_input_and_writes_nothing(repo, kwargs, error):
    with pytest.raises(error):
        api.set_experiment(**kwargs, repo=repo)
    assert runs_tip(repo) == "" and exps.default_experiment() is None


def test_experiments_known_only_from_runs_are_listed_and_found(repo):
    api.commit_run(experiment="old", repo=repo)
    api.commit_run(experiment="old", repo=repo)
    found = api.get_experiment_by_name("old", repo=repo)
    assert (found.recorded, found.run_count, found.experiment_id) == (False, 2, experiment_id_for("old"))
    assert api.get_experiment(found.experiment_id, repo=repo).name == "old"
    assert api.get_experiment_by_name("nope", repo=repo) is None
    with pytest.raises(ExperimentNotFoundError):
        api.get_experiment("0" * 32, repo=repo)
    # tagging it writes its record, with the id it was listed under and its first run's start
    tagged = api.set_experiment_tag("team", "ml", experiment="old", repo=repo)
    assert tagged.recorded and tagged.experiment_id == found.experiment_id
    assert tagged.creation_time == found.creation_time and tagged.tags == {"team": "ml"}


def test_search_experiments_answers_mlflow_filters(repo):
    ids = {}
    for name, team in [("churn-a", "ml"), ("churn-b", "data"), ("Fraud", "ml")]:
        ids[name] = api.create_experiment(name, tags={"team": team}, repo=repo)
    api.commit_run(experiment="runs-only", repo=repo)

    def names(*args, **kwargs):
        return [e.name for e in api.search_experiments(*args, repo=repo, **kwargs)]

    assert names() == ["runs-only", "Fraud", "churn-b", "churn-a"]  # newest first, as MLflow
    assert names("name LIKE 'churn%'", order_by=["name ASC"]) == ["churn-a", "churn-b"]
    assert names("name ILIKE 'f%'") == ["Fraud"]
    assert names("name LIKE 'f%'") == []
    assert names("tags.team = 'ml'", order_by="name DESC") == ["churn-a", "Fraud"]  # as text: 'c' > 'F'
    assert names("tags.team != 'ml'") == ["churn-b"]  # an experiment without the tag never matches
    assert names("tags.team IS NULL") == ["runs-only"]
    assert names(f"experiment_id = '{ids['Fraud']}'") == ["Fraud"]
    assert names("name IN ('churn-a', 'Fraud') OR tags.team = 'data'", order_by=["name"]) == \
        ["Fraud", "churn-a", "churn-b"]
    assert names("creation_time > 0", max_results=2) == ["runs-only", "Fraud"]
    assert names("creation_time < '2000-01-01'") == []
    for bad in ["metrics.acc > 1", "name = 1", "nonsense ~ 2", "params.x = 'a'"]:
        with pytest.raises(BadInputError):
            api.search_experiments(bad, repo=repo)
    for bad_order in [["metrics.acc"], ["tags.team"], ["start_time"]]:
        with pytest.raises(BadInputError):
            api.search_experiments(order_by=bad_order, repo=repo)
    with pytest.raises(BadInputError):
        api.search_experiments(max_results=0, repo=repo)


def test_tags_and_description_follow_mlflow(repo):
    api.set_experiment("churn", repo=repo)
    exp = api.set_experiment_tags({"team": "ml", "mlflow.note.content": "the churn model", "n": 3}, repo=repo)
    assert exp.description == "the churn model"
    assert exp.tags == {"team": "ml", "n": "3", "mlflow.note.content": "the churn model"}
    raw = git(repo, "show", f"{RUNS_REF}:experiments/{exp.experiment_id[:2]}/{exp.experiment_id}/experiment.yaml")
    assert 'description: "the churn model"' in raw and "mlflow.note.content" not in raw
    exp = api.delete_experiment_tag("n", repo=repo)
    assert "n" not in exp.tags
    tip = runs_tip(repo)
    with pytest.raises(BadInputError, match="no tag 'n'"):
        api.delete_experiment_tag("n", repo=repo)
    with pytest.raises(BadInputError):
        api.set_experiment_tag("bad\nkey", "v", repo=repo)
    with pytest.raises(BadInputError):
        api.set_experiment_tag("big", "x" * 8001, repo=repo)
    with pytest.raises(BadInputError):
        api.set_experiment_tag("obj", object(), repo=repo)
    assert api.set_experiment_tag("team", "ml", repo=repo).tags["team"] == "ml"  # unchanged: no commit
    assert runs_tip(repo) == tip
    assert api.set_experiment_description(None, repo=repo).description is None
    log = git(repo, "log", "--format=%s", RUNS_REF).splitlines()
    assert log[0] == "experiment churn: describe" and "experiment churn: delete tag n" in log


def test_rename_moves_the_runs_in_one_commit_and_keeps_the_id(repo):
    first = api.commit_run(experiment="old", metrics={"acc": 0.5}, repo=repo)
    second = api.commit_run(experiment="old", repo=repo)
    other = api.commit_run(experiment="other", repo=repo)
    before = git(repo, "rev-parse", RUNS_REF).strip()
    exp = api.rename_experiment("old", "legacy", repo=repo)
    assert exp.name == "legacy" and exp.experiment_id == experiment_id_for("old") and exp.run_count == 2
    assert git(repo, "rev-parse", f"{RUNS_REF}^").strip() == before  # one commit
    assert sorted(r.id for r in api.search_runs(experiment="legacy", repo=repo)) == sorted([first.id, second.id])
    assert api.search_runs(experiment="old", repo=repo) == []
    assert api.get_run(first.id, repo=repo).metrics == {"acc": 0.5}
    assert api.get_run(other.id, repo=repo).experiment == "other"
    changed = git(repo, "diff", "--name-only", before, RUNS_REF, "--", "runs").split()
    assert sorted(changed) == sorted(f"runs/{r[:2]}/{r}/run.yaml" for r in (first.id, second.id))
    git(repo, "fsck", "--strict")
    # the old name is free again, with a new id; its runs stay apart from legacy's
    assert api.set_experiment("old", repo=repo).experiment_id not in (exp.experiment_id, experiment_id_for("legacy"))
    assert api.commit_run(repo=repo).experiment == "old"
    assert api.get_experiment_by_name("legacy", repo=repo).run_count == 2


def test_rename_refuses_a_taken_name_and_writes_nothing(repo):
    api.create_experiment("a", repo=repo)
    api.commit_run(experiment="a", repo=repo)
    api.create_experiment("b", repo=repo)
    api.commit_run(experiment="c", repo=repo)
    tip = runs_tip(repo)
    for target in ("b", "c"):
        with pytest.raises(BadInputError, match="exists already"):
            api.rename_experiment("a", target, repo=repo)
    with pytest.raises(ExperimentNotFoundError):
        api.rename_experiment("nope", "d", repo=repo)
    with pytest.raises(BadInputError):
        api.rename_experiment("a", "bad\x1bname", repo=repo)
    assert runs_tip(repo) == tip
    assert api.rename_experiment("a", "a", repo=repo).name == "a" and runs_tip(repo) == tip


def test_a_run_that_arrives_under_the_old_name_is_moved_by_renaming_again(repo):
    api.commit_run(experiment="old", repo=repo)
    with api.start_run(experiment="old", repo=repo) as late:  # in progress during the rename
        api.rename_experiment("old", "new", repo=repo)
    assert api.get_run(late.id, repo=repo).experiment == "old"
    assert api.get_experiment_by_name("old", repo=repo).recorded is False
    moved = api.rename_experiment("old", "new", repo=repo)
    assert moved.run_count == 2 and api.get_run(late.id, repo=repo).experiment == "new"
    assert api.get_experiment_by_name("old", repo=repo) is None


def _tag_many(path: str, key: str, count: int) -> None:
    import gitml

    for i in range(count):
        gitml.set_experiment_tag(f"{key}{i}", str(i), experiment="shared", repo=path)
        gitml.create_experiment(f"{key}-{i}", repo=path)


def test_parallel_processes_tagging_and_creating_lose_nothing(repo):
    api.create_experiment("shared", repo=repo)
    code = "import sys, test_experiments as t; t._tag_many(sys.argv[1], sys.argv[2], 5)"
    env_path = str(__import__("pathlib").Path(__file__).parent)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(repo), key], cwd=env_path)
             for key in ("p", "q", "r")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0]
    shared = api.get_experiment_by_name("shared", repo=repo)
    assert sorted(shared.tags) == sorted(f"{k}{i}" for k in "pqr" for i in range(5))
    assert len(api.search_experiments(repo=repo)) == 1 + 15
    git(repo, "fsck", "--strict")


def test_records_merge_across_clones_like_runs(clones):
    origin, a, b = clones
    api.create_experiment("churn", tags={"by": "a"}, repo=a)
    api.commit_run(experiment="churn", repo=a)
    assert sync.push(repo=a)
    # b makes the same experiment offline: same id; then tags it later than a does
    api.create_experiment("churn", tags={"by": "b"}, repo=b)
    api.create_experiment("only-b", repo=b)
    api.set_experiment_tag("late", "yes", experiment="churn", repo=b)
    sync.pull(repo=b)
    churn = api.get_experiment_by_name("churn", repo=b)
    assert churn.tags == {"by": "b", "late": "yes"} and churn.run_count == 1  # the later record wins
    assert {e.name for e in api.search_experiments(repo=b)} == {"churn", "only-b"}
    assert len([p for p in records(b) if p.endswith("experiment.yaml")]) == 2
    sync.push(repo=b)
    sync.pull(repo=a)
    assert api.get_experiment_by_name("churn", repo=a).tags == {"by": "b", "late": "yes"}
    assert api.get_experiment_by_name("only-b", repo=a).recorded
    # a rename on one side, a tag on the other: the later change wins, both stay in history
    api.rename_experiment("only-b", "renamed", repo=a)
    sync.push(repo=a)
    sync.pull(repo=b)
    assert api.get_experiment_by_name("renamed", repo=b) is not None
    for path in (a, b, origin):
        git(path, "fsck", "--strict")


BAD = "cd" + "7" * 30


def _record(exp_id: str, text: bytes) -> dict[str, bytes]:
    return {f"experiments/{exp_id[:2]}/{exp_id}/experiment.yaml": text}


HOSTILE = {
    "control character in the name": b'id: "%s"\nname: "evil\\e[31m"\n',
    "id that is not its folder": b'id: "%s0"\nname: evil\n',
    "not YAML": b"id: [unclosed\n",
    "alias bomb": b'id: "%s"\nname: &a evil\ntags: {x: *a}\n',
    "tag that is not text": b'id: "%s"\nname: evil\ntags: {x: {y: 1}}\n',
    "tag far too long": b'id: "%s"\nname: evil\ntags: {x: "' + b"y" * 9000 + b'"}\n',
    "bad time": b'id: "%s"\nname: evil\ncreation_time: yesterday\n',
    "time in the future": b'id: "%s"\nname: evil\nupdated: "9999-12-31T00:00:00.000Z"\n',
}


@pytest.mark.parametrize("shape", sorted(HOSTILE))
def test_a_strangers_bad_record_is_refused_and_hides_nothing(clones, shape):
    origin, victim, evil = clones
    api.create_experiment("good", tags={"ok": "1"}, repo=victim)
    sync.push(repo=victim)
    sync.pull(repo=evil)
    text = HOSTILE[shape].replace(b"%s", BAD.encode())
    craft(evil, _record(BAD, text) | {"experiments/zz/not-an-id/experiment.yaml": b"name: x\n"})
    api.create_experiment("fine", repo=evil)
    git(evil, "push", "-q", "origin", f"{RUNS_REF}:{RUNS_REF}")
    # reading a ref that holds it: the others are answered, it is reported
    problems: dict[str, str] = {}
    assert {e.name for e in api.search_experiments(repo=evil, problems=problems)} == {"good", "fine"}
    assert any(BAD in key for key in problems) and "experiments/zz" in " ".join(problems)
    listed = gitml(evil, "experiments", "list")
    assert listed.code == 0 and "good" in listed.out and BAD in listed.err and "Traceback" not in listed.err
    # pulling it: refused, nothing merged; --exclude-bad takes the rest and leaves it out
    tip = runs_tip(victim)
    refused = gitml(victim, "pull")
    assert refused.code == 1 and "experiment" in refused.err and runs_tip(victim) == tip
    assert len(refused.err.strip().splitlines()) == 1
    taken = gitml(victim, "pull", "--exclude-bad")
    assert taken.code == 0, taken.err
    assert {e.name for e in api.search_experiments(repo=victim)} == {"good", "fine"}
    assert not any(BAD in p or "/zz/" in p for p in records(victim))
    git(victim, "fsck", "--strict")


def test_pre_push_refuses_a_crafted_record(clones):
    origin, a, _ = clones
    assert gitml(a, "hooks", "install").code == 0
    api.create_experiment("good", repo=a)
    craft(a, _record(BAD, HOSTILE["control character in the name"].replace(b"%s", BAD.encode())))
    proc = subprocess.run(["git", "push", "origin", f"{RUNS_REF}:{RUNS_REF}"], cwd=a, capture_output=True, text=True)
    assert proc.returncode != 0 and BAD in proc.stderr and "Traceback" not in proc.stderr
    assert git(origin, "rev-parse", "-q", "--verify", RUNS_REF, check=False).strip() == ""


def test_cli_lists_shows_creates_renames_tags_and_describes(repo):
    api.commit_run(experiment="old", repo=repo)
    made = gitml(repo, "experiments", "create", "churn", "-t", "team=ml", "-d", "the model")
    assert made.code == 0 and made.out.strip() == experiment_id_for("churn")
    listed = gitml(repo, "experiments", "list", "--json")
    data = json.loads(listed.out)
    assert [e["name"] for e in data] == ["churn", "old"]
    assert data[0]["tags"] == {"team": "ml", "mlflow.note.content": "the model"} and data[1]["recorded"] is False
    assert set(data[0]) == {"experiment_id", "name", "description", "tags", "creation_time", "last_update_time",
                            "recorded", "run_count", "lifecycle_stage"}
    assert len(json.loads(gitml(repo, "experiments", "list", "-n", "0", "--json").out)) == 2  # 0: all
    table = gitml(repo, "experiments", "list", "-f", "name = 'old'")
    assert "(runs only)" in table.out and "churn" not in table.out
    assert gitml(repo, "experiments", "set-tag", "churn", "owner=ana", "stage=dev").code == 0
    assert gitml(repo, "experiments", "set-tag", "churn", "-d", "stage").code == 0
    assert gitml(repo, "experiments", "describe", "churn", "new text").code == 0
    shown = gitml(repo, "experiments", "show", "churn")
    assert "owner = ana" in shown.out and "stage" not in shown.out and "new text" in shown.out
    renamed = gitml(repo, "experiments", "rename", "old", "legacy")
    assert renamed.code == 0 and "legacy" in renamed.out
    assert "legacy" in gitml(repo, "runs", "list").out
    shown_json = json.loads(gitml(repo, "experiments", "show", experiment_id_for("old"), "--json").out)
    assert shown_json["name"] == "legacy" and shown_json["run_count"] == 1


@pytest.mark.parametrize("args, code, words", [
    (["show", "nope"], 2, "no experiment 'nope'"),
    (["rename", "nope", "x"], 2, "no experiment"),
    (["rename", "churn", "old"], 2, "exists already"),
    (["create", "churn"], 2, "exists already"),
    (["create", "bad\nname"], 2, "invalid experiment name"),
    (["set-tag", "churn"], 2, "nothing to do"),
    (["set-tag", "churn", "novalue"], 2, "KEY=VALUE"),
    (["set-tag", "churn", "-d", "missing"], 2, "no tag 'missing'"),
    (["set-tag", "nope", "a=b"], 2, "no experiment"),
    (["list", "-f", "metrics.acc > 1"], 2, "experiments have no metrics"),
    (["list", "-f", "name ="], 2, "bad filter"),
    (["list", "--json", "--csv"], 2, "choose one"),
    (["list", "-o", "params.x"], 2, "experiments sort by"),
    (["set-tag", "churn", "a=1", "-d", "a"], 2, "both set and removed"),
    (["list", "-n", "-1"], 2, "-1"),
])
def test_cli_bad_input_is_one_line_and_changes_nothing(repo, args, code, words):
    api.commit_run(experiment="old", repo=repo)
    api.create_experiment("churn", repo=repo)
    tip = runs_tip(repo)
    result = gitml(repo, "experiments", *args)
    assert result.code == code and words in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err
    assert runs_tip(repo) == tip


def test_a_ref_with_records_stays_readable_by_runs_commands(repo):
    api.create_experiment("churn", repo=repo)
    proc = subprocess.run([*GITML, "runs", "list"], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    run = api.commit_run(experiment="churn", repo=repo)
    assert [r.id for r in api.search_runs(repo=repo)] == [run.id]
    assert gitml(repo, "index", "rebuild").code == 0
    git(repo, "fsck", "--strict")


def test_the_chosen_experiment_follows_its_rename_in_this_process(repo):
    api.set_experiment("draft", repo=repo)
    api.commit_run(repo=repo)
    api.rename_experiment("draft", "final", repo=repo)
    assert api.commit_run(repo=repo).experiment == "final"
    assert api.get_experiment_by_name("final", repo=repo).run_count == 2


def test_search_runs_takes_experiment_ids_as_mlflow_does(repo):
    churn = api.create_experiment("churn", repo=repo)
    run = api.commit_run(experiment="churn", repo=repo)
    other = api.commit_run(experiment="other", repo=repo)
    assert [r.id for r in api.search_runs(experiment_ids=[churn], repo=repo)] == [run.id]
    both = api.search_runs(experiment="other", experiment_ids=churn, repo=repo)
    assert sorted(r.id for r in both) == sorted([run.id, other.id])
    assert api.search_runs(experiment_ids=[], repo=repo) == []
    with pytest.raises(ExperimentNotFoundError):
        api.search_runs(experiment_ids=["0" * 32], repo=repo)
    with pytest.raises(BadInputError):
        api.search_runs(experiment_ids=["0"], repo=repo)


def test_a_crafted_record_cannot_take_over_an_experiment_by_its_name(clones):
    origin, victim, evil = clones
    api.create_experiment("shared", tags={"owner": "ada"}, repo=victim)
    run = api.commit_run(experiment="shared", repo=victim)
    sync.push(repo=victim)
    sync.pull(repo=evil)
    fake = "0" * 31 + "1"
    craft(evil, _record(fake, b'id: "%s"\nname: shared\ncreation_time: "2000-01-01T00:00:00.000Z"\n'
                               b'description: HIJACKED\n' % fake.encode()))
    git(evil, "push", "-q", "origin", f"{RUNS_REF}:{RUNS_REF}")
    tip = runs_tip(victim)
    refused = gitml(victim, "pull")
    assert refused.code == 1 and "belongs to experiment" in refused.err and runs_tip(victim) == tip
    assert gitml(victim, "pull", "--exclude-bad").code == 0
    shared = api.get_experiment_by_name("shared", repo=victim)
    assert shared.experiment_id == experiment_id_for("shared") and shared.tags == {"owner": "ada"}
    assert shared.run_count == 1 and api.get_run(run.id, repo=victim).experiment == "shared"
    # on the stranger's own clone both records exist: the one the name gives owns it
    assert api.get_experiment_by_name("shared", repo=evil).experiment_id == experiment_id_for("shared")


def test_bad_values_of_the_api_are_refused_before_anything_is_written(repo):
    for call in (lambda: api.create_experiment("t4", description=5, repo=repo),
                 lambda: api.create_experiment("t4", artifact_location="s3://b/x", repo=repo),
                 lambda: api.create_experiment("t4", tags=["a"], repo=repo),
                 lambda: api.search_experiments(view_type=7, repo=repo)):
        with pytest.raises(BadInputError):
            call()
    assert runs_tip(repo) == ""
    api.create_experiment("t4", repo=repo)
    assert [e.name for e in api.search_experiments(view_type="ALL", repo=repo)] == ["t4"]
    assert api.search_experiments(view_type=2, repo=repo) == []


@pytest.mark.parametrize("recorded", [True, False])
def test_the_chosen_experiment_follows_a_rename_made_by_another_process(repo, recorded):
    if not recorded:
        api.commit_run(experiment="draft", repo=repo)  # known from its runs only
    api.set_experiment("draft", repo=repo)
    assert gitml(repo, "experiments", "rename", "draft", "final").code == 0  # another process
    assert api.commit_run(repo=repo).experiment == "final"
    assert exps.default_experiment() == "final"


def test_renaming_an_experiment_with_a_run_in_progress_warns(repo):
    api.commit_run(experiment="old", repo=repo)
    with api.start_run(experiment="old", repo=repo) as late:
        renamed = gitml(repo, "experiments", "rename", "old", "new")
    assert renamed.code == 0 and renamed.err.startswith(f"gitml: warning: run {late.id[:8]} is in progress under 'old'")
    assert gitml(repo, "experiments", "rename", "old", "new").code == 0  # moves it, as the warning says
    assert api.get_run(late.id, repo=repo).experiment == "new"


def test_runs_left_under_a_name_without_a_record_join_an_existing_experiment(clones):
    """Two clones rename one experiment apart: the later rename wins, and the other's runs can
    be moved into it (the name they carry has no record)."""
    origin, a, b = clones
    api.create_experiment("shared", tags={"owner": "ada"}, repo=a)
    sync.push(repo=a)
    sync.pull(repo=b)
    api.rename_experiment("shared", "shared-a", repo=a)
    made_on_a = api.commit_run(experiment="shared-a", repo=a)
    api.rename_experiment("shared", "shared-b", repo=b)  # later: its record wins the merge
    sync.push(repo=b)
    sync.pull(repo=a)
    assert api.get_experiment_by_name("shared-a", repo=a).recorded is False
    moved = api.rename_experiment("shared-a", "shared-b", repo=a)
    assert moved.experiment_id == experiment_id_for("shared") and moved.run_count == 1
    assert api.get_run(made_on_a.id, repo=a).experiment == "shared-b"
    assert api.get_experiment_by_name("shared-a", repo=a) is None


def test_a_record_changed_on_both_clones_merges_tag_by_tag(clones):
    origin, a, b = clones
    api.create_experiment("shared", tags={"stage": "dev"}, repo=a)
    sync.push(repo=a)
    sync.pull(repo=b)
    api.set_experiment_tags({"owner": "ada", "stage": "test"}, experiment="shared", repo=a)
    api.rename_experiment("shared", "shared-a", repo=a)
    api.set_experiment_tags({"team": "ml", "stage": "prod"}, experiment="shared", repo=b)  # later
    sync.push(repo=a)
    sync.pull(repo=b)
    merged = api.get_experiment(experiment_id_for("shared"), repo=b)
    assert merged.name == "shared-a"  # only a renamed it
    assert merged.tags == {"owner": "ada", "team": "ml", "stage": "prod"}  # both changed stage: the later
    sync.push(repo=b)
    sync.pull(repo=a)
    assert api.get_experiment(experiment_id_for("shared"), repo=a).to_dict() == merged.to_dict()


def test_ids_and_their_prefixes_name_experiments_in_the_cli_and_in_searches(repo):
    exp_id = api.create_experiment("churn", repo=repo)
    run = api.commit_run(experiment="churn", repo=repo)
    shown = gitml(repo, "experiments", "show", exp_id[:8])  # as `experiments list` prints it
    assert shown.code == 0 and "name       churn" in shown.out
    assert [r.id for r in api.search_runs(experiment=exp_id, repo=repo)] == [run.id]
    assert run.id[:8] in gitml(repo, "runs", "list", "-e", exp_id).out


def test_duplicate_tag_deletions_are_one_and_change_nothing_on_a_refusal(repo):
    api.create_experiment("churn", tags={"a": "1", "b": "2"}, repo=repo)
    done = gitml(repo, "experiments", "set-tag", "churn", "z=9", "-d", "a", "-d", "a")
    assert done.code == 0, done.err
    assert api.get_experiment_by_name("churn", repo=repo).tags == {"b": "2", "z": "9"}


def test_a_fresh_clone_with_two_records_of_one_name_warns_and_names_the_owner(clones):
    origin, a, b = clones
    api.create_experiment("churn-model", repo=a)
    api.rename_experiment("churn-model", "churn-2026", repo=a)  # its id is the old name's
    sync.push(repo=a)
    fake = experiment_id_for("churn-2026")
    craft(a, _record(fake, b'id: "%s"\nname: churn-2026\ndescription: owned by eve\n' % fake.encode()))
    git(a, "push", "-q", "origin", f"{RUNS_REF}:{RUNS_REF}")
    sync.pull(repo=b)
    listed = gitml(b, "experiments", "list")
    assert listed.code == 0 and "2 experiment records are named 'churn-2026'" in listed.err, listed.err

"""The registry at scale: a command about one model touches only that model's tags.

Real repositories and the real git CLI. What is checked is the kind of fault that made every
command fold every model, never a timing: which tag objects a command reads (through a
``GitRepo`` that records what it is asked to read), that another model's tag objects may be
corrupt without any effect, and that the per-model cache follows the tags when another process
adds, deletes, re-creates, packs or fetches them.
"""

from __future__ import annotations

import json
import os
import random
import string
import subprocess
from pathlib import Path

import pytest
from conftest import git, gitml

import gitml as api
from gitml import registry
from gitml.core import yamlfmt
from gitml.core.gitrepo import GitRepo
from gitml.core.registry import fold, format_block, load_events, parse_message, versions_with_digest
from gitml.core.workspace import Workspace


class RecordingRepo(GitRepo):
    """A real repository that records the tag objects it is asked to read (no stand-in)."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.read: list[str] = []

    def read_tags(self, shas):
        self.read += list(shas)
        return super().read_tags(shas)

    def read_tag(self, sha):
        self.read.append(sha)
        return super().read_tag(sha)


def tag(repo: Path, name: str, message: str, target: str = "HEAD") -> str:
    git(repo, "tag", "-a", name, "-m", message, target)
    return git(repo, "rev-parse", f"refs/tags/{name}").strip()


def cache_dir(repo: Path) -> Path:
    return repo / ".git" / "gitml" / "registry-cache"


def answers(repo: Path, model: str) -> tuple:
    """What the commands about ``model`` say, through the API (one Workspace per call)."""
    (state,) = registry.show(model, repo=repo)
    events = [(e.tag, e.kind, e.version, e.stage) for e in registry.history(model, repo=repo)]
    return state.to_dict(), events, registry.problems(model, repo=repo)


@pytest.fixture
def two_models(repo):
    """Models ``a`` (registered with gitml: run, path, digest) and ``b`` (hand-made tags, many)."""
    (repo / "model.pkl").write_bytes(b"weights of a")
    run = api.commit_run(name="a", artifacts=[repo / "model.pkl"], repo=repo)
    registry.register_model("a", run.id, repo=repo)
    registry.register_model("a", run.id, repo=repo)
    registry.assign("a", "v0.0.1", "prod", repo=repo)
    registry.assign("a", "v0.0.2", "staging", repo=repo)
    b_tags = {}
    for k in range(1, 13):
        b_tags[f"b@v0.0.{k}"] = tag(repo, f"b@v0.0.{k}", f"Registering artifact b version v0.0.{k}")
    for k in range(1, 9):
        name = f"b#prod#{k}"
        b_tags[name] = tag(repo, name, f"Assigning stage prod to artifact b version v0.0.{k}")
    tag(repo, "release-1", "a release tag")
    a_tags = {name: sha for name, sha in ((line.split()[1][len("refs/tags/"):], line.split()[0])
                                          for line in git(repo, "show-ref", "--tags").splitlines())
              if name.startswith(("a@", "a#"))}
    return repo, run.id, a_tags, b_tags


# -- 1. one model's commands read one model's tags ------------------------------------------------
def test_commands_about_one_model_read_no_tag_object_of_another(two_models):
    repo, _, a_tags, b_tags = two_models
    for path in cache_dir(repo).glob("*.json"):
        path.unlink()  # cold: every tag object of a is read once
    recording = RecordingRepo(repo)
    ws = Workspace(recording)
    try:
        assert registry.which("a@prod", repo=ws).version == "v0.0.1"
        assert registry.show("a", repo=ws)[0].stages == {"prod": "v0.0.1", "staging": "v0.0.2"}
        assert len(registry.history("a", repo=ws)) == 4
        assert registry.problems("a", repo=ws) == []
        assert registry.assign("a", "v0.0.2", "prod", repo=ws).tag == "a#prod#3"
        assert registry.which("a@prod", repo=ws).version == "v0.0.2"
    finally:
        ws.close()
        recording.close()
    read = set(recording.read)
    assert read and read <= set(a_tags.values()) | {git(repo, "rev-parse", "refs/tags/a#prod#3").strip()}
    assert not read & set(b_tags.values())
    assert sorted(p.name for p in cache_dir(repo).glob("*.json")) == ["a.json"]  # b was never even listed
    # Warm: nothing is read again.
    recording = RecordingRepo(repo)
    with Workspace(recording) as ws:
        registry.which("a@prod", repo=ws)
        registry.history("a", repo=ws)
    recording.close()
    assert recording.read == []


def test_another_models_corrupt_tag_objects_change_nothing_for_this_one(two_models):
    repo, _, a_tags, b_tags = two_models
    before = answers(repo, "a")
    caches = cache_dir(repo)
    for path in caches.glob("*.json"):
        path.unlink()
    # b's tags are fresh `git tag -a` objects, hence loose files: overwrite each with garbage.
    originals = {}
    for sha in b_tags.values():
        path = repo / ".git" / "objects" / sha[:2] / sha[2:]
        originals[path] = path.read_bytes()
        os.chmod(path, 0o644)
        path.write_bytes(b"not zlib at all " + sha.encode())
    assert git(repo, "cat-file", "-p", b_tags["b@v0.0.1"], check=False) == ""  # git cannot read them either
    assert answers(repo, "a") == before
    for command in (["which", "a@prod"], ["show", "a"], ["history", "a"], ["assign", "a", "--version", "v0.0.1",
                                                                          "--stage", "dev"]):
        done = gitml(repo, "registry", *command)
        assert done.code == 0 and done.err == "", (command, done.err)
    assert gitml(repo, "registry", "which", "a@dev").out.split("\t")[0] == "v0.0.1"
    assert sorted(p.name for p in caches.glob("*.json")) == ["a.json"]
    # Asked about b, gitml finds no readable event, remembers nothing, and sees b again once repaired.
    assert gitml(repo, "registry", "show", "b").code == 2
    assert not (caches / "b.json").exists()
    for path, data in originals.items():
        path.write_bytes(data)
    shown = gitml(repo, "registry", "show", "b", "--json")
    assert shown.code == 0 and json.loads(shown.out)[0]["latest"] == "v0.0.12"


def test_one_model_reads_the_same_state_as_every_model(two_models):
    repo, run, _, _ = two_models
    git(repo, "tag", "-a", "nlp/sentiment@v1.0.0", "-m", "nested", "HEAD")
    git(repo, "tag", "-a", "nlp@v0.1.0", "-m", "parent name", "HEAD")
    git(repo, "tag", "nlp#prod#1", "HEAD")  # lightweight
    git(repo, "tag", "-a", "a@v9", "-m", "not semver", "HEAD")
    git(repo, "tag", "-a", "a@v1.0.0/x", "-m", "a slash after the version", "HEAD")
    everything = {s.name: s.to_dict() for s in registry.show(repo=repo)}
    assert set(everything) == {"a", "b", "nlp", "nlp/sentiment"}
    for path in cache_dir(repo).rglob("*.json"):
        path.unlink()
    for name, state in everything.items():
        assert registry.show(name, repo=repo)[0].to_dict() == state
    assert registry.show("nlp", repo=repo)[0].stages == {"prod": "v0.1.0"}
    assert [p.split("'")[1] for p in registry.problems("a", repo=repo)] == ["a@v1.0.0/x", "a@v9"]
    assert registry.problems("nlp", repo=repo) == []
    with pytest.raises(api.GitmlError):
        registry.show("c", repo=repo)


# -- 2. the cache follows the tags -----------------------------------------------------------------
def test_a_tag_another_process_adds_for_the_same_model_is_seen(two_models):
    repo, _, _, _ = two_models
    assert gitml(repo, "registry", "which", "a@prod").out.startswith("v0.0.1\t")  # warm cache
    cached = json.loads((cache_dir(repo) / "a.json").read_text())["tags"]
    # Another process: plain git, as GTO or a teammate's push would.
    new = tag(repo, "a#prod#7", "Assigning stage prod to artifact a version v0.0.2")
    assert gitml(repo, "registry", "which", "a@prod").out.startswith("v0.0.2\t")
    now = json.loads((cache_dir(repo) / "a.json").read_text())["tags"]
    assert set(now) == set(cached) | {f"a#prod#7 {new}"}
    # And another gitml process, between two calls sharing one Workspace.
    with Workspace(GitRepo(repo), owns_repo=True) as ws:
        assert registry.which("a@staging", repo=ws).version == "v0.0.2"
        assert gitml(repo, "registry", "unassign", "a", "--version", "v0.0.2", "--stage", "staging").code == 0
        with pytest.raises(api.GitmlError):
            registry.which("a@staging", repo=ws)
    assert gitml(repo, "registry", "assign", "a", "--version", "v0.0.1", "--stage", "dev").out.strip() == "a#dev#9"


def test_deleted_recreated_packed_and_fetched_tags_are_followed(two_models, tmp_path):
    origin, _, _, _ = two_models
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    assert registry.which("a@prod", repo=clone).version == "v0.0.1"
    # Deleted: the stage falls back, the entry leaves the cache.
    git(origin, "tag", "-d", "a#prod#1")
    git(clone, "fetch", "-q", "--prune", "--prune-tags", "origin")
    with pytest.raises(api.GitmlError):
        registry.which("a@prod", repo=clone)
    assert not any(k.startswith("a#prod#1 ") for k in json.loads((cache_dir(clone) / "a.json").read_text())["tags"])
    # Re-created under the same name on another version: a new object id, a new cache key.
    tag(origin, "a#prod#1", "Assigning stage prod to artifact a version v0.0.2\n\ngitml:\n  version: \"v0.0.2\"")
    git(clone, "fetch", "-q", "--tags", "origin")
    assert registry.which("a@prod", repo=clone).version == "v0.0.2"
    # Packed, then one of them shadowed by a loose ref of the same name (git's own precedence).
    git(clone, "pack-refs", "--all", "--prune")
    assert registry.which("a@prod", repo=clone).version == "v0.0.2"
    other = tag(clone, "tmp", "Assigning stage prod to artifact a version v0.0.1\n\ngitml:\n  version: \"v0.0.1\"")
    (clone / ".git" / "refs" / "tags" / "a#prod#1").write_text(other + "\n")
    assert git(clone, "rev-parse", "refs/tags/a#prod#1").strip() == other
    assert registry.which("a@prod", repo=clone).version == "v0.0.1"
    assert registry.show("a", repo=clone)[0].to_dict() == registry.show(repo=clone)[0].to_dict()


def test_cache_entries_are_checked_before_they_are_used(two_models):
    repo, _, _, _ = two_models
    before = answers(repo, "a")
    path = cache_dir(repo) / "a.json"
    good = json.loads(path.read_text())
    for bad in ("not json", json.dumps({"version": 2, "tags": good["tags"]}), json.dumps({"version": 3, "tags": []}),
                json.dumps({"version": 3, "tags": {k: {**v, "tag": "a@v0.0.9"} for k, v in good["tags"].items()}}),
                json.dumps({"version": 3, "tags": {k: {**v, "extra": 1} for k, v in good["tags"].items()}}),
                json.dumps({"version": 3, "tags": {k: {"tag": v["tag"]} for k, v in good["tags"].items()}})):
        path.write_text(bad)
        assert answers(repo, "a") == before
        assert json.loads(path.read_text()) == good  # rewritten from the tags
    legacy = repo / ".git" / "gitml" / "registry-cache.json"
    legacy.write_text(json.dumps({"version": 2, "tags": {}}))
    path.unlink()
    assert answers(repo, "a") == before and not legacy.exists()


# -- 3. writes ----------------------------------------------------------------------------------
def test_packed_claims_and_tags_still_count(two_models):
    repo, run, _, _ = two_models
    git(repo, "pack-refs", "--all", "--prune")
    assert not (repo / ".git" / "refs" / "gitml" / "registry-claims" / "a" / "2").exists()
    assert registry.assign("a", "v0.0.1", "dev", repo=repo).counter == 3  # claims 1, 2 are packed
    # A claim taken (and packed) with no tag yet: the next writer skips it.
    with GitRepo(repo) as g:
        commit = git(repo, "rev-parse", "HEAD").strip()
        assert g.add_ref_if_absent("refs/gitml/registry-claims/a/4", commit)
        assert not g.add_ref_if_absent("refs/gitml/registry-claims/a/4", commit)
        git(repo, "pack-refs", "--all", "--prune")
        assert not g.add_ref_if_absent("refs/gitml/registry-claims/a/4", commit)
        assert g.create_tag("a@v0.0.1", commit, "taken, and packed") is None
        assert g.create_tag("c@v0.0.1", commit, "new") is not None
    assert registry.assign("a", "v0.0.1", "staging", repo=repo).counter == 5
    assert registry.register_model("a", run, repo=repo).version == "v0.0.3"
    assert git(repo, "tag", "-l", "c@*").split() == ["c@v0.0.1"]
    git(repo, "fsck", "--strict", "--no-progress")


def test_same_bytes_warning_matches_the_fold_of_every_model(two_models):
    repo, run, _, _ = two_models
    digest = json.loads((cache_dir(repo) / "a.json").read_text())  # warm; the digest of a's artifact:
    digest = next(v["meta"]["sha256"] for v in digest["tags"].values() if v["kind"] == "register")
    head = git(repo, "rev-parse", "HEAD").strip()
    block = f"\n\ngitml:\n  sha256: \"{digest}\""
    tag(repo, "c@v1.0.0", "hand-made twin" + block, head)
    tag(repo, "c@v1.0.0!", "withdrawn", head)
    # A deregistration older than its registration does not count (events apply in time order).
    env = {**os.environ, "GIT_COMMITTER_DATE": "1600000000 +0000"}
    subprocess.run(["git", "tag", "-a", "d@v2.0.0!", "-m", "early", head], cwd=repo, env=env, check=True)
    tag(repo, "d@v2.0.0", "late twin" + block, head)
    tag(repo, "e@v1.0.0", "other bytes\n\ngitml:\n  sha256: \"" + "0" * 64 + "\"", head)
    with GitRepo(repo) as g:
        everything = fold(load_events(g))
        expected = [(name, info.version, info.deregistered) for name, state in sorted(everything.items())
                    for _, info in state.to_versions() if info.sha256 == digest]
        found = [(name, info.version, info.deregistered) for name, info in versions_with_digest(g, digest)]
        assert found == expected == [("a", "v0.0.1", False), ("a", "v0.0.2", False), ("c", "v1.0.0", True),
                                     ("d", "v2.0.0", False)]
        git(repo, "tag", "-d", "c@v1.0.0!")
        assert ("c", "v1.0.0", False) in [(n, i.version, i.deregistered) for n, i in versions_with_digest(g, digest)]
    done = registry.register_model("a", run, repo=repo)
    assert done.warnings == ["same bytes as a v0.0.1, a v0.0.2, c v1.0.0, d v2.0.0"]


# -- 4. the plumbing -------------------------------------------------------------------------------
def test_refs_by_prefix_agree_with_git(two_models):
    repo, _, _, _ = two_models
    git(repo, "tag", "nlp/sentiment@v1.0.0", "HEAD")
    git(repo, "tag", "a@v1.0.0/x", "HEAD")
    git(repo, "pack-refs", "--all")  # packed, and still loose: the loose copy wins
    tag(repo, "a#x#99", "loose only")
    (repo / ".git" / "refs" / "tags" / "a@v0.0.7.lock").write_text("0" * 40 + "\n")  # a writer's lock
    with GitRepo(repo) as g:
        for prefix in ("refs/tags/a@", "refs/tags/a#", "refs/tags/b@", "refs/tags/nlp/sentiment@", "refs/tags/nlp/",
                       "refs/gitml/registry-claims/a/", "refs/tags/zz@", "refs/nothing/"):
            listed = git(repo, "for-each-ref", "--format=%(refname) %(objectname)").splitlines()
            expected = dict(line.split(" ") for line in listed if line.startswith(prefix))
            assert g.refs_with_prefix(prefix) == expected, prefix
        for part in ("@v", "#", "sentiment", "zz"):
            assert g.tags_containing(part) == {name: sha for name, sha in g.tags().items() if part in name}, part


def test_reading_tag_objects_in_bulk_equals_one_by_one(two_models):
    repo, _, a_tags, b_tags = two_models
    git(repo, "tag", "light", "HEAD")
    shas = [*a_tags.values(), *b_tags.values(), git(repo, "rev-parse", "light").strip()]
    with GitRepo(repo) as g:
        bulk = g.read_tags([*shas, "f" * 40])  # one missing
        assert len(shas) >= 16 and set(bulk) == set(shas)
        assert bulk == {sha: g.read_tag(sha) for sha in shas}


def test_gitmls_block_is_read_and_written_as_yamlfmt_does():
    rng = random.Random(12)
    alphabet = string.printable + "é\u2028\x00\\\""
    cases = [{"run": "a" * 32, "path": "model.pkl", "sha256": "b" * 64, "size": 26, "version": "v0.1.0",
              "description": "300 trees"}, {}, {"description": None}, {"size": True}, {"size": -0}, {"on": "x"}]
    for _ in range(400):
        keys = rng.sample(["description", "path", "run", "sha256", "size", "version", "on", "y", "extra"],
                          rng.randint(1, 4))
        cases.append({k: rng.choice([rng.randint(-10**6, 10**12), None, 1.5, False,
                                     "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))])
                      for k in keys})
    for meta in cases:
        written = yamlfmt.dump({"gitml": {k: v for k, v in meta.items() if v is not None}})
        assert format_block(meta) == written
        for text in (written, written.rstrip("\n"), written + "\n", written.replace('"', "'"), written + "  x: 1\n"):
            message = f"title\n\n{text}"
            try:
                expected = yamlfmt.load(text if text.endswith("\n") else text + "\n").get("gitml")
            except ValueError:
                expected = None
            got = parse_message(message)
            if isinstance(expected, dict):
                assert got == parse_message_through_yamlfmt(message), text
            else:
                assert got == {}, text


def parse_message_through_yamlfmt(message: str) -> dict:
    """parse_message as it was before its plain-ASCII reader: yamlfmt for every block."""
    from gitml.core.registry import _checked_meta

    _, _, rest = message.partition("\n\n")
    block = yamlfmt.load(rest if rest.endswith("\n") else rest + "\n").get("gitml")
    return _checked_meta(block) if isinstance(block, dict) else {}


def test_model_names_too_long_for_a_cache_file_still_read(repo):
    """Hostile names only git's packed-refs can hold: read every time, never cached, never a crash."""
    head = git(repo, "rev-parse", "HEAD").strip()
    sha = tag(repo, "short@v1.0.0", "Registering artifact short version v1.0.0")
    deep, wide = "/".join(["d"] * 2000), "/".join(["w" * 200] * 3)
    git(repo, "pack-refs", "--all", "--prune")
    with open(repo / ".git" / "packed-refs", "a") as packed:
        packed.write(f"{sha} refs/tags/{deep}@v2.0.0\n{sha} refs/tags/{wide}#prod#1\n{head} refs/tags/{wide}@v1.0.0\n")
    for _ in range(2):
        shown = gitml(repo, "registry", "show", "--json")
        assert shown.code == 0 and shown.err == ""
        assert {m["name"]: m["latest"] for m in json.loads(shown.out)} == {"short": "v1.0.0", deep: "v2.0.0",
                                                                         wide: "v1.0.0"}
        assert registry.which(f"{deep}@latest", repo=repo).version == "v2.0.0"
        assert registry.which(f"{wide}@prod", repo=repo).version == "v1.0.0"
    assert sorted(p.name for p in cache_dir(repo).iterdir()) == ["_models.json", "short.json"]  # and show's summary


# -- 4. show of every model: one listing, a summary per model kept under its tag set --------------
def full_view(repo: Path) -> tuple[list[dict], list[str]]:
    """Every model by folding every event (show, problems): what the summary must agree with."""
    return [m.to_dict() for m in registry.show(repo=repo)], registry.problems(repo=repo)


def summary_view(repo: Path) -> tuple[list[dict], list[str]]:
    found = registry.overview(repo=repo)
    return [m.to_dict() for m in found.models], found.problems


def test_reading_every_tag_with_for_each_ref_equals_reading_them_one_by_one(two_models):
    repo, _, a_tags, b_tags = two_models
    git(repo, "tag", "light", "HEAD")
    tag(repo, "nlp/sent@v1.0.0", "Ünïcode title\n\nand a body\nof lines\n")
    git(repo, "tag", "-a", "tree-tag", "-m", "a tag of a tree", "HEAD^{tree}")
    with GitRepo(repo) as g:
        every = g.read_all_tags()
        listed = set(g.tags().values())
        assert set(every) == listed and len(listed) == len(a_tags) + len(b_tags) + 4  # release-1 and three here
        assert every == {sha: g.read_tag(sha) for sha in listed}


def test_the_summary_of_every_model_follows_every_change(two_models, tmp_path):
    repo, run, _, _ = two_models
    assert summary_view(repo) == full_view(repo)
    assert summary_view(repo) == full_view(repo)  # from the summary this time
    registry.register_model("a", run, repo=repo)  # the writes of this repository
    registry.assign("a", "v0.0.3", "prod", repo=repo)
    registry.deregister("b", "v0.0.12", repo=repo)
    assert summary_view(repo) == full_view(repo)
    # Another process: a new model, a problem tag, a deleted tag, a re-pointed tag, packing.
    tag(repo, "c@v1.0.0", "hand made")
    tag(repo, "c@v1.0", "not semver")
    git(repo, "tag", "-d", "b#prod#8")
    tag_b = tag(repo, "tmp", "Assigning stage prod to artifact b version v0.0.2\n\ngitml:\n  version: \"v0.0.2\"")
    (repo / ".git" / "refs" / "tags" / "b#prod#7").write_text(tag_b + "\n")
    models, problems = summary_view(repo)
    assert (models, problems) == full_view(repo)
    assert {m["name"]: m["stages"] for m in models}["b"] == {"prod": "v0.0.2"}
    assert problems == ["tag 'c@v1.0' is not a registry version: 'v1.0' is not semver "
                        "(vMAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]); it is ignored"]
    git(repo, "pack-refs", "--all", "--prune")
    assert summary_view(repo) == full_view(repo)
    git(repo, "tag", "-d", "c@v1.0.0", "c@v1.0")  # a model gone
    assert [m["name"] for m in summary_view(repo)[0]] == ["a", "b"]
    assert summary_view(repo) == full_view(repo)
    # The stage rule of gitml.yaml is part of what a summary was made under.
    (repo / "gitml.yaml").write_text("registry:\n  one_stage_per_version: true\n")
    assert summary_view(repo) == full_view(repo)
    # The CLI lists the same.
    shown = gitml(repo, "registry", "show", "--json")
    assert shown.code == 0 and json.loads(shown.out) == full_view(repo)[0]


def test_a_torn_or_edited_summary_is_not_trusted(two_models):
    repo, _, _, _ = two_models
    tag(repo, "a@v1", "not semver")
    expected = full_view(repo)
    assert summary_view(repo) == expected
    path = cache_dir(repo) / "_models.json"
    good = json.loads(path.read_text())
    entry = good["tags"]["a"]
    for bad in ("not json", json.dumps({"version": 2, "tags": good["tags"]}),
                json.dumps({"version": 3, "tags": {**good["tags"], "a": {**entry, "fp": "0" * 40}}}),
                json.dumps({"version": 3, "tags": {**good["tags"], "a": {**entry, "rules": "one-stage"}}}),
                json.dumps({"version": 3, "tags": {**good["tags"], "a": {**entry, "state": {"name": "a"}}}}),
                json.dumps({"version": 3, "tags": {**good["tags"], "a": {**entry, "problems": "x"}}}),
                json.dumps({"version": 3, "tags": {**good["tags"], "b": {**entry, "fp": good["tags"]["b"]["fp"]}}})):
        path.write_text(bad)
        assert summary_view(repo) == expected
        assert json.loads(path.read_text()) == good  # rewritten from the tags


def test_a_cold_summary_reads_every_tag_in_one_pass_and_agrees(two_models, monkeypatch):
    """Past BULK_READ uncached tags, the objects come from one git for-each-ref: the same events."""
    import gitml.core.registry as core

    repo, _, _, _ = two_models
    expected = full_view(repo)
    for bulk, remember, files in ((256, 16, ["_models.json", "a.json", "b.json"]), (1, 0, ["_models.json"])):
        monkeypatch.setattr(core, "BULK_READ", bulk)  # past it: one git for-each-ref
        monkeypatch.setattr(core, "REMEMBER_AT_MOST", remember)  # past it: no file per model
        with RecordingRepo(repo) as g:
            for path in cache_dir(repo).iterdir():
                path.unlink()
            models, problems = core.overview(g)
            assert ([m.to_dict() for m in models], problems) == expected
            assert (g.read == []) == (bulk == 1)  # every object came from read_all_tags, or none
        assert sorted(p.name for p in cache_dir(repo).iterdir()) == files
        assert summary_view(repo) == expected


def test_the_digest_of_a_message_is_what_parse_message_reads():
    from gitml.core.registry import _digest_of

    good = "ab" * 32
    blocks = [f'gitml:\n  sha256: "{good}"\n', f'gitml:\n  run: "x"\n  sha256: "{good}"\n', 'gitml:\n  sha256: "abc"\n',
              f'gitml:\n  sha256: "{good.upper()}"\n', f"gitml:\n  sha256: {good}\n", f'gitml: {{sha256: "{good}"}}\n',
              f'gitml:\n  sha256: "{good}"\n  description: "é"\n', "gitml: {}\n", "gitml:\n  sha256: 7\n", "no block",
              f'gitml:\n  sha256: "{good}"\n  sha256: "{good}"\n', f'gitml:\n  path: "../x"\n  sha256: "{good}"\n']
    for block in blocks:
        for message in (f"title\n\n{block}", f"title\n\n{block.rstrip()}", block):
            assert _digest_of(message) == parse_message(message).get("sha256"), message


def test_a_cold_same_bytes_index_read_in_one_pass_agrees(two_models, monkeypatch):
    import gitml.core.registry as core

    repo, run, _, _ = two_models
    tag(repo, "nlp/sent@v1.0.0", "Registering\n\ngitml:\n  sha256: \"" + "0" * 64 + "\"")
    (state,) = registry.show("a", repo=repo)
    digest = state.versions["v0.0.1"].sha256
    answers_ = []
    for bulk in (256, 1):
        monkeypatch.setattr(core, "BULK_READ", bulk)
        (cache_dir(repo) / "_digests.json").unlink(missing_ok=True)
        with RecordingRepo(repo) as g:
            answers_.append([(m, v.version) for m, v in versions_with_digest(g, digest)]
                            + [(m, v.version) for m, v in versions_with_digest(g, "0" * 64)])
            assert (g.read == []) == (bulk == 1)
    assert answers_[0] == answers_[1] == [("a", "v0.0.1"), ("a", "v0.0.2"), ("nlp/sent", "v1.0.0")]

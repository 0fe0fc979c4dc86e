"""Registry versions are full semver (pre-release and build parts too), read and ordered by the
``semver`` library as GTO reads them; registry-looking tags that are not semver are reported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import git, gitml

import gitml as api
from gitml import registry
from gitml.core.errors import BadInputError
from gitml.core.tags import TagName, bump, check_version, format_tag, parse_tag, tag_problem, version_key

GOOD = [
    ("m@v1.0.0-rc.1", "register", "v1.0.0-rc.1"),
    ("m@v2.0.0-alpha+build.5", "register", "v2.0.0-alpha+build.5"),
    ("m@v1.0.0+20260101.sha.5114f85", "register", "v1.0.0+20260101.sha.5114f85"),
    ("m@v1.0.0-0.3.7", "register", "v1.0.0-0.3.7"),
    ("m@v1.0.0-x-y-z.--", "register", "v1.0.0-x-y-z.--"),
    ("nlp/sentiment@v0.1.0-beta.11!", "deregister", "v0.1.0-beta.11"),
    ("m@v1.0.0-RC.1", "register", "v1.0.0-RC.1"),
    ("m@v10.20.30", "register", "v10.20.30"),
]


@pytest.mark.parametrize("name, kind, version", GOOD)
def test_semver_tags_parse_and_format_back(name, kind, version):
    parsed = parse_tag(name)
    assert parsed == TagName(kind, name.split("@")[0], version)
    assert format_tag(parsed) == name
    assert tag_problem(name) is None


# Names shaped like version tags whose version is not semver: no event, but a reported problem.
BAD = ["m@v1.2", "m@v01.0.0", "m@v1.0.0-01", "m@v1.0.0-", "m@v1.0.0+", "m@v1.0.0-rc..1", "m@v1.0.0.0",
       "m@v1.0.0!!", "m@v1.0.0#3", "m@v1.0.0-é", "m@v1١.0.0", "nlp/sentiment@v1.0.0_rc1!"]


@pytest.mark.parametrize("name", BAD)
def test_non_semver_version_tags_are_reported_not_read(name):
    assert parse_tag(name) is None
    problem = tag_problem(name)
    assert problem is not None and problem.startswith(f"tag {name!r} is not a registry version: ")
    assert "is not semver" in problem


@pytest.mark.parametrize("name", ["v1.2.0", "release-2026", "m@1.2.0", "m@vnext", "m@latest", "Churn@v1.2",
                                  "m#prod#5", "m@deprecated", "m@v1.0.0\n", "lib@2.0.0-rc.1"])
def test_other_tags_are_no_problem(name):
    assert tag_problem(name) is None


def test_check_version():
    assert check_version("1.0.0-rc.1") == "v1.0.0-rc.1"
    assert check_version("v2.0.0-alpha+build.5") == "v2.0.0-alpha+build.5"
    for bad in ("v1.2", "v1.0.0-01", "V1.0.0", "v1.0.0 ", "vv1.0.0", "", "v1.0.0-x.lock", None, 1):
        with pytest.raises(BadInputError, match="invalid version"):
            check_version(bad)
    with pytest.raises(BadInputError):
        format_tag(TagName("register", "m", "v1.0.0-01"))


def test_versions_order_as_semver_orders_them():
    # The precedence example of semver.org, item 11, shuffled; build metadata ties break by text.
    expected = ["v0.9.9", "v1.0.0-alpha", "v1.0.0-alpha.1", "v1.0.0-alpha.beta", "v1.0.0-beta",
                "v1.0.0-beta.2", "v1.0.0-beta.11", "v1.0.0-rc.1", "v1.0.0", "v1.0.0+a", "v1.0.0+b",
                "v1.0.1-rc.1", "v1.0.1", "v1.10.0", "v2.0.0-0"]
    shuffled = expected[::2] + expected[1::2][::-1]
    assert sorted(shuffled, key=version_key) == expected
    with pytest.raises(BadInputError):
        version_key("v1.2")


@pytest.mark.parametrize("version, part, expected", [
    (None, "patch", "v0.0.1"), (None, "minor", "v0.1.0"), (None, "major", "v1.0.0"),
    ("v1.2.3", "patch", "v1.2.4"), ("v1.2.3", "minor", "v1.3.0"), ("v1.2.3", "major", "v2.0.0"),
    # From a pre-release, the next release of that part that is not below it (semver's rules).
    ("v1.0.0-rc.1", "patch", "v1.0.0"), ("v1.0.0-rc.1", "minor", "v1.0.0"), ("v1.0.0-rc.1", "major", "v1.0.0"),
    ("v1.2.0-rc.1", "patch", "v1.2.0"), ("v1.2.0-rc.1", "minor", "v1.2.0"), ("v1.2.0-rc.1", "major", "v2.0.0"),
    ("v1.2.3-beta", "patch", "v1.2.3"), ("v1.2.3-beta", "minor", "v1.3.0"),
    ("v1.2.3+build.7", "patch", "v1.2.4"), ("v2.0.0-alpha+build.5", "minor", "v2.0.0"),
])
def test_bump(version, part, expected):
    assert bump(version, part) == expected


def test_bump_refuses_unknown_part():
    with pytest.raises(BadInputError, match="unknown bump"):
        bump("v1.0.0", "build")


def test_reading_tags_does_not_import_semver_until_a_version_is_read():
    code = ("import sys, gitml.core.tags, gitml.registry, gitml.cli\n"
            "assert 'semver' not in sys.modules, 'imported early'\n"
            "from gitml.core.tags import parse_tag\n"
            "assert parse_tag('m#prod#1') is not None and 'semver' not in sys.modules\n"
            "assert parse_tag('m@v1.0.0-rc.1').version == 'v1.0.0-rc.1' and 'semver' in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def two_runs(repo):
    (repo / "model.pkl").write_bytes(b"one")
    first = api.commit_run(name="first", artifacts=[repo / "model.pkl"], repo=repo)
    (repo / "model.pkl").write_bytes(b"two")
    second = api.commit_run(name="second", artifacts=[repo / "model.pkl"], repo=repo)
    return repo, first.id, second.id


def test_pre_releases_are_registered_shown_and_resolved(two_runs, tmp_path):
    repo, first, second = two_runs
    assert registry.register_model("churn", first, version="1.0.0-rc.1", repo=repo).tag == "churn@v1.0.0-rc.1"
    (state,) = registry.show(repo=repo)
    assert state.latest == "v1.0.0-rc.1"
    # A patch bump from a pre-release is its release, by semver's rules.
    assert registry.register_model("churn", second, repo=repo).version == "v1.0.0"
    (state,) = registry.show(repo=repo)
    assert state.latest == "v1.0.0"  # a release is above its own pre-releases
    assert [v for v, _ in state.to_versions()] == ["v1.0.0-rc.1", "v1.0.0"]
    registry.assign("churn", "v1.0.0-rc.1", "staging", repo=repo)
    assert registry.which("churn@staging", repo=repo).version == "v1.0.0-rc.1"
    found = registry.which("churn@v1.0.0-rc.1", repo=repo)
    assert (found.run, found.uri) == (first, f"runs:/{first}/model.pkl")
    assert registry.resolve_model_uri("models:/churn/v1.0.0-rc.1", repo=repo) == f"runs:/{first}/model.pkl"
    cli = gitml(repo, "registry", "which", "churn@v1.0.0-rc.1")
    assert cli.code == 0 and cli.out == f"v1.0.0-rc.1\t{first}\truns:/{first}/model.pkl\n", cli.err
    cli = gitml(repo, "artifacts", "get", "models:/churn/v1.0.0-rc.1", "-o", str(tmp_path / "rc.pkl"))
    assert cli.code == 0, cli.err
    assert (tmp_path / "rc.pkl").read_bytes() == b"one"
    listing = gitml(repo, "registry", "show", "churn")
    assert listing.code == 0 and listing.err == ""
    assert [line.split()[0] for line in listing.out.splitlines()[2:]] == ["v1.0.0-rc.1", "v1.0.0"]
    registry.deregister("churn", "v1.0.0-rc.1", repo=repo)
    assert git(repo, "tag", "-l", "churn@v1.0.0-rc.1!").strip() == "churn@v1.0.0-rc.1!"
    assert registry.show(repo=repo)[0].versions["v1.0.0-rc.1"].deregistered


def test_latest_follows_semver_order_like_gto(two_runs):
    repo, first, second = two_runs
    head = git(repo, "rev-parse", "HEAD").strip()
    for version in ("v1.0.0", "v1.1.0-rc.1", "v1.0.1-alpha+build.5"):
        git(repo, "tag", "-a", f"fraud@{version}", "-m", f"Registering artifact fraud version {version}", head)
    (state,) = registry.show(repo=repo)
    # GTO's latest is the semver maximum, pre-releases included: a newer core's pre-release wins.
    assert state.latest == "v1.1.0-rc.1"
    assert [v for v, _ in state.to_versions()] == ["v1.0.0", "v1.0.1-alpha+build.5", "v1.1.0-rc.1"]
    assert registry.register_model("fraud", second, repo=repo).version == "v1.1.0"
    assert registry.which("fraud", repo=repo).version == "v1.1.0"


def test_non_semver_version_tags_are_warned_about(two_runs):
    repo, first, _ = two_runs
    registry.register_model("churn", first, repo=repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    for name in ("churn@v1.2", "churn@v01.0.0", "fraud@v1.0.0-01", "release-1.0", "churn@1.0.0"):
        git(repo, "tag", "-a", name, "-m", "hand made", head)
    assert registry.problems(repo=repo) == [
        "tag 'churn@v01.0.0' is not a registry version: 'v01.0.0' is not semver "
        "(vMAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]); it is ignored",
        "tag 'churn@v1.2' is not a registry version: 'v1.2' is not semver "
        "(vMAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]); it is ignored",
        "tag 'fraud@v1.0.0-01' is not a registry version: 'v1.0.0-01' is not semver "
        "(vMAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]); it is ignored",
    ]
    assert len(registry.problems("fraud", repo=repo)) == 1
    (state,) = registry.show(repo=repo)
    assert list(state.versions) == ["v0.0.1"]
    shown = gitml(repo, "registry", "show", "--json")
    assert shown.code == 0
    assert [m["name"] for m in json.loads(shown.out)] == ["churn"]
    assert shown.err.splitlines() == [
        "gitml: warning: tag 'churn@v01.0.0' is not a registry version: 'v01.0.0' is not semver "
        "(vMAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]); it is ignored",
        "gitml: warning: tag 'churn@v1.2' is not a registry version: 'v1.2' is not semver "
        "(vMAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]); it is ignored",
        "gitml: warning: tag 'fraud@v1.0.0-01' is not a registry version: 'v1.0.0-01' is not semver "
        "(vMAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]); it is ignored",
    ]
    one = gitml(repo, "registry", "show", "fraud")  # a model known only by a bad tag
    assert one.code == 2 and one.out == ""
    assert one.err.splitlines()[0].startswith("gitml: warning: tag 'fraud@v1.0.0-01'")
    assert "no model 'fraud'" in one.err.splitlines()[1]


def test_bad_versions_are_refused_and_write_no_tag(two_runs):
    repo, first, _ = two_runs
    registry.register_model("churn", first, version="v1.0.0-rc.1", repo=repo)
    before = git(repo, "tag", "-l")
    for args in (("register", "churn", "--run", first, "--version", "v1.0.0-01"),
                 ("register", "churn", "--run", first, "--version", "v1.0.0-rc.lock"),
                 ("register", "churn", "--run", first, "--version", "v1.0.0-rc.1"),
                 ("assign", "churn", "--version", "v1.0.0-rc.2", "--stage", "prod"),
                 ("which", "churn@v1.0"),
                 ("which", "churn@v1.0.0")):
        result = gitml(repo, "registry", *args)
        assert result.code == 2, args
        assert len(result.err.strip().splitlines()) == 1 and "Traceback" not in result.err, args
    assert git(repo, "tag", "-l") == before


def test_a_cache_from_before_semver_does_not_hide_pre_releases(two_runs):
    repo, _first, _ = two_runs
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "tag", "-a", "churn@v1.0.0-rc.1", "-m", "Registering artifact churn version v1.0.0-rc.1", head)
    sha = git(repo, "rev-parse", "refs/tags/churn@v1.0.0-rc.1").strip()
    cache = repo / ".git" / "gitml" / "registry-cache.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    # What the hand-rolled parser remembered: this tag is no registry event.
    cache.write_text(json.dumps({"version": 1, "tags": {f"churn@v1.0.0-rc.1 {sha}": {}}}))
    assert registry.show(repo=repo)[0].latest == "v1.0.0-rc.1"
    # The one-file cache of cache versions 1 and 2 is dropped; the model's own file has the event.
    assert not cache.exists()
    per_model = json.loads((cache.parent / "registry-cache" / "churn.json").read_text())
    assert per_model["tags"][f"churn@v1.0.0-rc.1 {sha}"]["version"] == "v1.0.0-rc.1"

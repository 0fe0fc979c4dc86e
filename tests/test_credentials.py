"""Credentials never reach a committed file, a run record, or the screen.

- ``gitml.yaml`` (committed): a remote whose URL or options carry a credential is refused, exit 2,
  one stderr line that does not repeat the secret, nothing written;
- git config (``--local``, personal): accepted, but every display masks it as ``***``;
- run records (``run.yaml``): credentials are stripped from ``source.remote`` and masked in
  ``command``;
- error messages (git's, fsspec backends'): masked.

The URL grammar itself (:mod:`gitml.core.urls`) is tested by round trips over good and bad text.
"""

from __future__ import annotations

import json
import socket
import string
from pathlib import Path

import pytest
from conftest import git, gitml
from hypothesis import given, settings
from hypothesis import strategies as st

import gitml as api
from gitml import artifacts
from gitml.artifacts.backend import _detail
from gitml.core.errors import BadInputError
from gitml.core.remotes import Remote, committed_credentials, masked
from gitml.core.urls import (
    credentials,
    format_url,
    is_secret_name,
    mask_text,
    mask_url,
    parse_url,
    secret_values,
    strip_url,
)

# -- the URL grammar ---------------------------------------------------------------------------

# (url, masked for display, stripped for records)
URLS = [
    # user info: any scheme but the ssh-like ones loses it whole
    ("https://tok@github.com/a/b.git", "https://***@github.com/a/b.git", "https://github.com/a/b.git"),
    ("https://x-access-token:ghs_A1@github.com/o/r.git", "https://***@github.com/o/r.git",
     "https://github.com/o/r.git"),
    ("http://user:pw@host:8080/x", "http://***@host:8080/x", "http://host:8080/x"),
    ("s3://KEY:SECRET@bucket/p", "s3://***@bucket/p", "s3://bucket/p"),
    ("s3://AKIA:ab/cd+ef@bucket/model@v1", "s3://***@bucket/model@v1", "s3://bucket/model@v1"),
    ("https://u:pa#ss@host/x", "https://***@host/x", "https://host/x"),
    ("https://user:p%40ss%2Fw@host/", "https://***@host/", "https://host/"),
    ("https://u:p@[::1]:8443/r.git", "https://***@[::1]:8443/r.git", "https://[::1]:8443/r.git"),
    ("file://u:p@host/tmp/x", "file://***@host/tmp/x", "file://host/tmp/x"),
    ("ftp://anonymous@ftp.example/x", "ftp://***@ftp.example/x", "ftp://ftp.example/x"),
    # ssh-like: the user name is a login, only a password is a secret
    ("sftp://user:PW@host/data", "sftp://user:***@host/data", "sftp://user@host/data"),
    ("ssh://git:pw@host/x.git", "ssh://git:***@host/x.git", "ssh://git@host/x.git"),
    ("ssh://git@[2001:db8::1]:22/x.git", "ssh://git@[2001:db8::1]:22/x.git", "ssh://git@[2001:db8::1]:22/x.git"),
    ("sftp://user@host/data", "sftp://user@host/data", "sftp://user@host/data"),
    ("git@github.com:org/repo.git", "git@github.com:org/repo.git", "git@github.com:org/repo.git"),
    ("user:pw@host:path/r.git", "user:***@host:path/r.git", "user@host:path/r.git"),
    # secret query parameters, also percent-encoded, in any case, with ';' or '&'
    ("https://h/r.git?access_token=T&ref=main", "https://h/r.git?access_token=***&ref=main",
     "https://h/r.git?ref=main"),
    ("https://h/x?sv=2022-11-02&se=2030&sig=abc%2B%3D", "https://h/x?sv=2022-11-02&se=2030&sig=***",
     "https://h/x?sv=2022-11-02&se=2030"),
    ("https://b.s3.amazonaws.com/k?X-Amz-Credential=AK%2F1&X-Amz-Signature=ff&X-Amz-Security-Token=tt"
     "&X-Amz-Date=1",
     "https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***&X-Amz-Security-Token=***"
     "&X-Amz-Date=1",
     "https://b.s3.amazonaws.com/k?X-Amz-Date=1"),
    ("https://h/x?access%5Ftoken=z", "https://h/x?access%5Ftoken=***", "https://h/x"),
    ("https://h/x?PASSWORD=a;key=b;versionId=3", "https://h/x?PASSWORD=***;key=***;versionId=3",
     "https://h/x?versionId=3"),
    ("https://h/x?secret=s&Signature=g&private_token=p&api-key=k",
     "https://h/x?secret=***&Signature=***&private_token=***&api-key=***", "https://h/x"),
    ("https://h/x?next=/y?token=t", "https://h/x?next=/y?token=***", "https://h/x?next=/y"),
    # the fragment
    ("https://h/cb#access_token=z&state=1", "https://h/cb#access_token=***&state=1", "https://h/cb#state=1"),
    ("https://h/doc#section-2", "https://h/doc#section-2", "https://h/doc#section-2"),
    # nothing secret: left exactly as written
    ("file:///tmp/store", "file:///tmp/store", "file:///tmp/store"),
    ("/srv/store@v1/x", "/srv/store@v1/x", "/srv/store@v1/x"),
    ("rel/store", "rel/store", "rel/store"),
    ("C:\\Users\\me@corp\\store", "C:\\Users\\me@corp\\store", "C:\\Users\\me@corp\\store"),
    ("s3://bucket/models/churn@v1.2.0", "s3://bucket/models/churn@v1.2.0", "s3://bucket/models/churn@v1.2.0"),
    ("https://[::1]:8443/store?versionId=3", "https://[::1]:8443/store?versionId=3",
     "https://[::1]:8443/store?versionId=3"),
    ("http://[::1/broken", "http://[::1/broken", "http://[::1/broken"),
    ("memory://scratch", "memory://scratch", "memory://scratch"),
    ("", "", ""),
]


@pytest.mark.parametrize(("url", "shown", "recorded"), URLS)
def test_mask_and_strip(url, shown, recorded):
    assert format_url(parse_url(url)) == url
    assert mask_url(url) == shown
    assert strip_url(url) == recorded
    assert mask_url(shown) == shown and strip_url(recorded) == recorded  # idempotent
    assert bool(credentials(url)) == (shown != url)


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("https://u:p@[::1]:8443/r?q=1#f", ("https", "u:p", "[::1]:8443", "/r", "q=1", "f", False)),
        ("s3://K:S/R@bucket/p", ("s3", "K:S/R", "bucket", "/p", None, None, False)),
        ("git@github.com:org/r.git", ("", "git", "github.com", "org/r.git", None, None, True)),
        ("git@[::1]:r.git", ("", "git", "[::1]", "r.git", None, None, True)),
        ("https://h/x?", ("https", None, "h", "/x", "", None, False)),
        ("/a/b", ("", None, "", "/a/b", None, None, False)),
    ],
)
def test_parse_url_parts(url, parts):
    got = parse_url(url)
    assert (got.scheme, got.userinfo, got.host, got.path, got.query, got.fragment, got.scp) == parts


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=string.printable + "é@:/?#[]%&;=", max_size=60))
def test_any_text_round_trips_and_never_raises(text):
    assert format_url(parse_url(text)) == text
    assert mask_url(mask_url(text)) == mask_url(text)
    assert strip_url(strip_url(text)) == strip_url(text)
    assert credentials(mask_url(text)) == credentials(text) or not credentials(text)


# A password starting with digits then '/' would read as a port ("user:1234/@host" is the host
# "user" on port 1234, for git and urllib too): a letter first keeps the examples passwords.
_SECRET = st.builds(str.__add__, st.sampled_from(string.ascii_letters),
                    st.text(alphabet=string.ascii_letters + string.digits + "+/=", min_size=7, max_size=20))


@settings(max_examples=200, deadline=None)
@given(
    secret=_SECRET,
    scheme=st.sampled_from(["https", "http", "s3", "gs", "az", "sftp", "ssh", "file"]),
    where=st.sampled_from(["password", "query", "fragment"]),
    param=st.sampled_from(["access_token", "token", "sig", "X-Amz-Signature", "password", "key", "secret"]),
)
def test_no_secret_survives_mask_or_strip(secret, scheme, where, param):
    if where == "password":
        url = f"{scheme}://user:{secret}@host.example/p/q"
    else:
        sep = "?" if where == "query" else "#"
        url = f"{scheme}://host.example/p{sep}a=1&{param}={secret}&b=2"
    assert credentials(url)
    for shown in (mask_url(url), strip_url(url), mask_text(f"error: cannot open '{url}': refused")):
        assert secret not in shown
    assert secret in secret_values(url)


@pytest.mark.parametrize(
    "name",
    ["key", "KEY", "key_id", "secret", "password", "Passwd", "token", "access_token", "account_key",
     "client_secret", "connection_string", "sas_token", "credential", "credentials", "aws_secret_access_key",
     "aws_session_token", "private_key", "pkey", "sig", "X-Amz-Signature", "X-Amz-Credential",
     "X-Amz-Security-Token", "X-Goog-Signature", "api-key", "apiKey", "AWSAccessKeyId", "access%5Ftoken",
     "passphrase", "auth", "Authorization"],
)
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    ["endpoint_url", "profile", "anon", "region_name", "signature_version", "username", "account_name",
     "key_filename", "sv", "se", "sp", "ref", "versionId", "use_ssl", "project", "requester_pays", "monkey"],
)
def test_plain_names(name):
    assert not is_secret_name(name)


def test_mask_text_masks_urls_and_given_secrets():
    line = ("fatal: unable to access 'https://127.0.0.1:9/x.git?access_token=abc/': no; "
            "bucket KEY:SECRETPART@b and ?sig=xyz and hunter22")
    assert mask_text(line, ["hunter22", "SECRETPART", "ab"]) == (
        "fatal: unable to access 'https://127.0.0.1:9/x.git?access_token=***': no; "
        "bucket KEY:***@b and ?sig=*** and ***")


def test_backend_messages_are_masked_and_one_line():
    remote = Remote("vault", "s3://AKIAEXAMPLE:SeCrEt/ValUe@bucket/p?token=TOKVALUE",
                    {"password": "hunter22", "client_kwargs": {"aws_session_token": "SESSIONTOK"},
                     "endpoint_url": "https://minio:MinioPw1@127.0.0.1:9000"})
    exc = OSError('Invalid bucket name "AKIAEXAMPLE:SeCrEt":\n  hunter22 SESSIONTOK MinioPw1 ValUe TOKVALUE')
    assert _detail(remote, exc) == 'Invalid bucket name "***:***": *** *** *** *** ***'


# -- gitml.yaml: refused -----------------------------------------------------------------------

REFUSED_URLS = [
    "sftp://user:PW@host/data",
    "s3://KEY:SECRET@bucket",
    "s3://AKIAEXAMPLE:SeCrEt/ValUe@bucket/p",
    "https://ghp_TOKEN1234@github.com/o/store",
    "https://user:pw@[::1]:8443/store",
    "https://user:p%40ss@host/store",
    "file://u:p@host/tmp/store",
    "https://h/store?access_token=TOKEN1234",
    "https://h/store?sv=2022-11-02&sig=SIGVALUE",
    "https://h/store?X-Amz-Credential=AKIA&X-Amz-Signature=SIGVALUE",
    "https://h/store?access%5Ftoken=TOKEN1234",
    "https://h/store#access_token=TOKEN1234",
    "az://container/p?SharedAccessKey=KEYVALUE",
    "user:PW@host:store",
]

REFUSED_OPTIONS = ["key", "secret", "token", "password", "account_key", "client_secret", "connection_string",
                   "sas_token", "credential", "credentials", "aws_secret_access_key", "X-Api-Key"]


def _team_state(repo: Path) -> tuple[bytes | None, str]:
    config = repo / "gitml.yaml"
    return (config.read_bytes() if config.exists() else None,
            git(repo, "config", "--local", "--get-regexp", "^gitml", check=False))


@pytest.fixture
def team_repo(repo) -> Path:
    """A repository whose gitml.yaml already holds one team remote (so 'unchanged' means something)."""
    assert gitml(repo, "remote", "add", "storage", "s3://ml-artifacts/churn", "-o",
                 "endpoint_url=http://127.0.0.1:9000").code == 0
    return repo


def _refused(repo: Path, *args: str, secret: str) -> str:
    before = _team_state(repo)
    result = gitml(repo, "remote", "add", *args)
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gitml: error: refusing to write "), result.err
    assert "gitml.yaml" in lines[0] and "--local" in lines[0] and "AWS_ACCESS_KEY_ID" in lines[0]
    assert secret not in result.err and result.out == ""
    assert _team_state(repo) == before
    return lines[0]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_credentials_in_url_are_refused_for_gitml_yaml(team_repo, url):
    secret = max(secret_values(url), key=len)
    line = _refused(team_repo, "x", url, secret=secret)
    assert "in the URL" in line


@pytest.mark.parametrize("option", REFUSED_OPTIONS)
def test_credential_options_are_refused_for_gitml_yaml(team_repo, option):
    line = _refused(team_repo, "x", "s3://bucket/p", "-o", f"{option}=VALUE1234", secret="VALUE1234")
    assert f"credential-like option {option!r}" in line


def test_credentials_in_option_values_are_refused(team_repo):
    line = _refused(team_repo, "x", "s3://bucket/p", "-o", "endpoint_url=https://minio:MINIOPW@127.0.0.1:9000",
                    secret="MINIOPW")
    assert "of option 'endpoint_url'" in line


def test_nested_credential_options_are_refused_from_python(team_repo):
    before = _team_state(team_repo)
    with pytest.raises(BadInputError, match=r"credential-like option 'client_kwargs\.aws_secret_access_key'"):
        artifacts.add_remote("x", "s3://bucket/p", {"client_kwargs": {"aws_secret_access_key": "S"}},
                             repo=team_repo)
    assert _team_state(team_repo) == before
    assert committed_credentials("s3://b", {"config_kwargs": {"signature_version": "s3v4"}}) == []


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("sftp://user@host/data", []),
        ("file:///tmp/store", []),
        ("s3://bucket/models/churn@v1", ["-o", "profile=ml-team", "-o", "anon=false"]),
        ("https://[::1]:8443/store?versionId=3", []),
        ("s3://bucket/p", ["-o", "endpoint_url=http://127.0.0.1:9000", "-o", "signature_version=s3v4"]),
    ],
)
def test_plain_remotes_are_written_as_given(repo, url, options):
    result = gitml(repo, "remote", "add", "x", url, *options)
    assert (result.code, result.out) == (0, f"x\t{url}\n")
    # a file:// folder is on this machine: a warning, not a credential (issue 11)
    assert result.err.startswith("gitml: warning: remote 'x' is a folder") if url.startswith("file:") else not result.err
    (remote,) = artifacts.list_remotes(repo=repo)
    assert remote.url == url and remote.scope == "team"


# -- git config (--local): accepted, masked everywhere it is shown -----------------------------


def test_local_credentials_are_kept_and_masked_in_every_display(repo):
    added = gitml(repo, "remote", "add", "vault", "sftp://user:PW1234@host/data", "--local")
    assert (added.code, added.out, added.err) == (0, "vault\tsftp://user:***@host/data\n", "")
    added = gitml(repo, "remote", "add", "sas", "https://acct.blob.example/c?sv=2022&sig=SIG1234", "--local",
                  "-o", "account_key=AK1234", "-o", "endpoint_url=https://minio:MINIOPW@127.0.0.1:9000",
                  "-o", "profile=dev")
    assert added.out == "sas\thttps://acct.blob.example/c?sv=2022&sig=***\n"
    assert not (repo / "gitml.yaml").exists()
    assert git(repo, "config", "--local", "gitml.remote.vault.url").strip() == "sftp://user:PW1234@host/data"

    table = gitml(repo, "remote", "list")
    listed = json.loads(gitml(repo, "remote", "list", "--json").out)
    csv = gitml(repo, "remote", "list", "--csv")
    for out in (table.out, json.dumps(listed), csv.out):
        for secret in ("PW1234", "SIG1234", "AK1234", "MINIOPW"):
            assert secret not in out
    assert listed == [
        {"default": False, "name": "sas", "scope": "local", "url": "https://acct.blob.example/c?sv=2022&sig=***",
         "options": {"account_key": "***", "endpoint_url": "https://***@127.0.0.1:9000", "profile": "dev"}},
        {"default": False, "name": "vault", "scope": "local", "url": "sftp://user:***@host/data", "options": {}},
    ]
    # The library keeps the real values (backends need them); its repr does not show them.
    remotes = {r.name: r for r in artifacts.list_remotes(repo=repo)}
    assert remotes["sas"].options["account_key"] == "AK1234"
    assert remotes["vault"].url == "sftp://user:PW1234@host/data"
    assert "PW1234" not in repr(remotes["vault"]) and "AK1234" not in repr(remotes["sas"])
    assert masked(remotes["vault"]).url == "sftp://user:***@host/data"
    # What the CLI prints comes masked from the library: masked copies, the real ones untouched.
    shown = {r.name: r for r in artifacts.list_remotes(repo=repo, masked=True)}
    assert shown["vault"].url == "sftp://user:***@host/data"
    assert shown["sas"].options == {"account_key": "***", "endpoint_url": "https://***@127.0.0.1:9000",
                                    "profile": "dev"}
    assert artifacts.list_remotes(repo=repo)[1].url == "sftp://user:PW1234@host/data"
    again = artifacts.add_remote("vault", "sftp://user:PW1234@host/data", local=True, repo=repo, masked=True)
    assert again.url == "sftp://user:***@host/data"


# -- run records -------------------------------------------------------------------------------


def _run_yaml(repo: Path, run_id: str) -> str:
    return git(repo, "show", f"refs/gitml/runs:runs/{run_id[:2]}/{run_id}/run.yaml")


def test_commit_run_strips_credentials_from_the_git_remote(repo):
    git(repo, "remote", "add", "origin",
        "https://oauth2:GLPAT1234@gitlab.example.com/team/repo.git?access_token=TOK1234&ref=main")
    result = gitml(repo, "commit-run", "-p", "lr=0.1", "--command",
                   "python train.py --data https://u:DATAPW@data.example/x.csv?sig=SIG1234")
    assert result.code == 0, result.err
    run_yaml = _run_yaml(repo, result.out.strip())
    assert '  remote: "https://gitlab.example.com/team/repo.git?ref=main"\n' in run_yaml
    assert 'command: "python train.py --data https://***@data.example/x.csv?sig=***"\n' in run_yaml
    history = git(repo, "log", "-p", "refs/gitml/runs")
    for secret in ("GLPAT1234", "TOK1234", "DATAPW", "SIG1234"):
        assert secret not in history


@pytest.mark.parametrize(
    ("remote", "recorded"),
    [
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("ssh://git:pw@host/x.git", "ssh://git@host/x.git"),
        ("https://x-access-token:ghs_A1@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://u:p@[::1]:8443/r.git?private_token=a&sig=b", "https://[::1]:8443/r.git"),
        ("https://h/r.git#access_token=z", "https://h/r.git"),
        ("/srv/git/r.git", "/srv/git/r.git"),
    ],
)
def test_recorded_remote(repo, remote, recorded):
    git(repo, "remote", "add", "origin", remote)
    run = api.commit_run(repo=repo)
    assert api.get_run(run.id, repo=repo).source["remote"] == recorded
    assert f'  remote: "{recorded}"\n' in _run_yaml(repo, run.id)


# -- error messages ----------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_git_errors_are_masked(repo):
    git(repo, "remote", "add", "origin", f"https://u:GITPW@127.0.0.1:{_closed_port()}/x.git?access_token=TOK1234")
    result = gitml(repo, "fetch", "origin")
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gitml: error: git ls-remote origin failed: ")
    assert "access_token=***" in lines[0]
    assert "TOK1234" not in result.err and "GITPW" not in result.err


def test_backend_errors_are_masked(repo, moto_endpoint, aws_env):
    added = gitml(repo, "remote", "add", "leaky", "s3://AKIAEXAMPLE:SeCrEt/ValUe@bucket/p", "--local",
                  "-o", f"endpoint_url={moto_endpoint}")
    assert added.code == 0
    (repo / "model.bin").write_bytes(b"weights")
    assert gitml(repo, "commit-run", "-a", "model.bin").code == 0
    result = gitml(repo, "artifacts", "push")
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("gitml: error: artifact remote 'leaky' (s3://***@bucket/p): checking objects failed: ")
    for secret in ("AKIAEXAMPLE", "SeCrEt", "ValUe"):
        assert secret not in result.err


def test_runs_show_masks_a_record_written_elsewhere(repo):
    """A run pulled from someone else's ref may hold a credential gitml would never record."""
    from gitml.core import runsref
    from gitml.core.formats import Run, iso_time, run_files
    from gitml.core.gitrepo import GitRepo

    run_id = "c" * 32
    stamp = iso_time(1_700_000_000)
    with GitRepo(repo) as opened:
        tree = runsref.write_run_tree(opened, run_files(Run(
            id=run_id, name="from-elsewhere", experiment="exp", status="FINISHED", start_time=stamp,
            end_time=stamp, source={"commit": "", "branch": None, "dirty": False,
                                    "remote": "https://bot:GHTOKEN1@github.com/o/r.git?access_token=TOK1"},
            command="train --data s3://AKIAEXAMPLE:SECRETKEY@bucket/d")))
        runsref.commit_runs(opened, {run_id: tree}, "a run from elsewhere")
    shown = gitml(repo, "runs", "show", run_id[:8])
    assert shown.code == 0, shown.err
    assert "remote     https://***@github.com/o/r.git?access_token=***\n" in shown.out
    assert "command    train --data s3://***@bucket/d\n" in shown.out
    for secret in ("GHTOKEN1", "TOK1", "AKIAEXAMPLE", "SECRETKEY"):
        assert secret not in shown.out


def test_hand_written_gitml_yaml_is_masked_when_listed(repo):
    """Readers accept a hand-written gitml.yaml as it is; showing it still masks the credentials."""
    (repo / "gitml.yaml").write_text(
        "remotes:\n"
        "  hand:\n"
        "    url: https://deploy:HANDPW12@files.example/store?token=HANDTOK1\n"
        "    options: {secret: HANDSEC1, profile: dev}\n"
    )
    assert gitml(repo, "remote", "add", "hand", "https://files.example/store", "--local",
                 "-o", "password=LOCALPW1").code == 0  # a personal override of the team remote
    listed = gitml(repo, "remote", "list", "--json")
    assert json.loads(listed.out) == [
        {"default": True, "name": "hand", "scope": "team", "url": "https://files.example/store",
         "options": {"password": "***", "profile": "dev", "secret": "***"}},
    ]
    (repo / ".git" / "config").write_text((repo / ".git" / "config").read_text().replace(
        "url = https://files.example/store", "url = s3://KEYID123:LOCALSEC@bucket/x"))
    table = gitml(repo, "remote", "list")
    assert "s3://***@bucket/x" in table.out
    for secret in ("HANDPW12", "HANDTOK1", "HANDSEC1", "LOCALPW1", "KEYID123", "LOCALSEC"):
        assert secret not in listed.out + table.out

"""Every way to ignore a false positive, end to end through `jitsec scan` on real files and real git
repositories: each one leaves out what it names and nothing else, and none hides a broker credential
from the scan it reads it in."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from jitsec.scanner.project_config import ProjectConfig

from jitsec.cli import main
from jitsec.kernel.credential_format import CredentialKind, mint
from jitsec.kernel.records import Confidence, FileOrigin, Finding, Severity
from jitsec.pipeline.ignores import Ignores, IgnoreStage
from tests.pipeline.conftest import SAMPLE_PACK

AWS = "AKIA2OGYBAH6STMMNXNN"
AWS_RULE = "sample-aws-access-key-id"
BROKER_RULE = "sample-broker-token"
RULES = ["--no-default-rules", "--rules", str(SAMPLE_PACK)]
TEAM_PACK = """
[pack]
name = "team"
description = "a project's own rule"

[[rule]]
id = "team-token"
description = "Team token"
regex = '''(?P<secret>team_token_[a-z]{10})'''
keywords = ["team_token"]
severity = "high"

[[rule.example]]
secret = "team_token_abcdefghij"

[[rule.counterexample]]
text = "team_token_ABC"
"""


def scan(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["scan", *RULES, "-f", "json", *map(str, args)], catch_exceptions=False)


def found(result: Result, root: Path | None = None) -> list[tuple[str, str, int]]:
    """(path, rule, line) of every finding, sorted; the path relative to ``root``, or without its
    commit for history findings (``root`` None)."""
    assert result.exit_code in (0, 1), result.stderr
    rows = []
    for finding in json.loads(result.stdout)["findings"]:
        path = finding["path"]
        if root is None:
            path = path.split(":", 1)[1]
        else:
            path = Path(path).resolve().relative_to(root.resolve()).as_posix()
        rows.append((path, finding["rule"], finding["line"]))
    return sorted(rows)


def summary(result: Result) -> dict[str, object]:
    return json.loads(result.stdout)["summary"]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com",
                           "-c", "commit.gpgsign=false", *args], capture_output=True, check=True, text=True)
    return done.stdout.strip()


def leak(path: Path, text: str = f"key = '{AWS}'\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A folder with a secret in what a .gitignore would leave out, and one in the code."""
    root = tmp_path / "repo"
    leak(root / "node_modules" / "pkg" / "index.js")
    leak(root / "logs" / "app.log")
    leak(root / "src" / "app.py")
    (root / ".gitignore").write_text("node_modules/\n*.log\n")
    return root


@pytest.fixture
def repo(tree: Path) -> Path:
    git(tree, "init", "-q")
    return tree


# -- .gitignore -------------------------------------------------------------------------------------

def test_in_a_work_tree_what_git_ignores_is_not_read_and_is_counted(repo: Path) -> None:
    result = scan(repo)
    assert result.exit_code == 1 and found(result, repo) == [("src/app.py", AWS_RULE, 1)]
    assert summary(result)["skipped_ignored"] == 2 and "2 git-ignored paths skipped" in result.stderr


def test_no_ignore_reads_everything(repo: Path) -> None:
    result = scan("--no-ignore", repo)
    everything = ["logs/app.log", "node_modules/pkg/index.js", "src/app.py"]
    assert [where for where, _, _ in found(result, repo)] == everything
    assert summary(result)["skipped_ignored"] == 0


def test_outside_a_work_tree_nothing_changes(tree: Path) -> None:
    result = scan(tree)
    assert len(found(result, tree)) == 3 and "git-ignored" not in result.stderr


def test_a_subfolder_of_a_work_tree_honours_the_gitignore_above_it(repo: Path) -> None:
    leak(repo / "logs" / "keep.txt")
    result = scan(repo / "logs")
    assert found(result, repo) == [("logs/keep.txt", AWS_RULE, 1)]


def test_an_ignored_path_named_on_the_command_line_is_read(repo: Path) -> None:
    assert found(scan(repo / "logs" / "app.log"), repo) == [("logs/app.log", AWS_RULE, 1)]
    assert len(found(scan(repo / "node_modules"), repo)) == 1
    assert len(found(scan(repo / "node_modules" / "pkg"), repo)) == 1  # below an ignored folder


# -- --exclude --------------------------------------------------------------------------------------

def test_exclude_globs_leave_out_names_anywhere_and_paths_from_the_scanned_folder(tree: Path) -> None:
    leak(tree / "src" / "vendor" / "lib.min.js")
    result = scan("--exclude", "*.min.js", "--exclude", "node_modules", "--exclude", "logs/**", tree)
    assert found(result, tree) == [("src/app.py", AWS_RULE, 1)] and summary(result)["skipped_excluded"] == 3
    result = scan("--exclude", "app.log/**/nothing", "--exclude", "src/app.py/x", tree)
    assert len(found(result, tree)) == 4  # globs that name nothing leave nothing out


def test_exclude_applies_to_files_named_on_the_command_line(tree: Path) -> None:
    result = scan("--exclude", "*.py", tree / "src" / "app.py", tree / "logs" / "app.log")
    assert found(result, tree) == [("logs/app.log", AWS_RULE, 1)]


def test_a_bad_exclude_glob_is_an_error(tree: Path) -> None:
    result = scan("--exclude", "a[b", tree)
    assert result.exit_code == 2 and "--exclude" in result.stderr


# -- .jitsec.toml ------------------------------------------------------------------------------------

def project(root: Path, text: str) -> Path:
    path = root / ".jitsec.toml"
    path.write_text(text)
    return path


def test_project_paths_are_taken_from_the_project_folder(tree: Path) -> None:
    project(tree, '[allowlist]\npaths = ["src/**"]\n')
    left = [where for where, _, _ in found(scan(tree / "src" / ".."), tree)]
    assert left == ["logs/app.log", "node_modules/pkg/index.js"]
    assert found(scan(tree / "logs"), tree) == [("logs/app.log", AWS_RULE, 1)]  # found from a subfolder too
    assert found(scan(tree / "src"), tree) == []


def test_project_paths_and_fingerprints_hold_through_a_symlinked_folder(tree: Path, tmp_path: Path) -> None:
    project(tree, '[allowlist]\npaths = ["src/**"]\n')
    (tree / ".gitleaksignore").write_text(f"logs/app.log:{AWS_RULE}:1\n")
    link = tmp_path / "link"
    link.symlink_to(tree)
    assert found(scan(link), link) == [("node_modules/pkg/index.js", AWS_RULE, 1)]


def test_project_secrets_lines_and_stopwords_allow_by_content(tmp_path: Path) -> None:
    leak(tmp_path / "a.py", f"key = '{AWS}'\nother = 'AKIA2OGYBAH6STMMNXNQ'  # test double\n")
    for allowlist, left in (('secrets = ["NXNN$"]', [2]), ('lines = ["test double"]', [1]),
                            ('stopwords = ["mnxnq"]', [1]), ('secrets = ["^nothing"]', [1, 2])):
        project(tmp_path, f"[allowlist]\n{allowlist}\n")
        assert [line for _, _, line in found(scan(tmp_path), tmp_path)] == left, allowlist


def test_project_rules_disable_and_packs(tmp_path: Path) -> None:
    leak(tmp_path / "src" / "a.py", f"key = '{AWS}'\ntoken = team_token_abcdefghij\n")
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "team.toml").write_text(TEAM_PACK)
    project(tmp_path, f'[rules]\ndisable = ["{AWS_RULE}"]\npacks = ["ci/team.toml"]\n')
    assert found(scan(tmp_path / "src"), tmp_path) == [("src/a.py", "team-token", 2)]


def test_project_disable_of_an_unknown_or_broker_rule_is_an_error(tmp_path: Path) -> None:
    leak(tmp_path / "a.py")
    for rule_id, words in (("no-such-rule", "no such rule"), (BROKER_RULE, "never ignored")):
        path = project(tmp_path, f'[rules]\ndisable = ["{rule_id}"]\n')
        result = scan(tmp_path)
        assert result.exit_code == 2 and f"{path}: rules.disable" in result.stderr and words in result.stderr


def test_project_min_severity_drops_what_ranks_below(tmp_path: Path) -> None:
    leak(tmp_path / "a.py", f"key = '{AWS}'\npassword = 'Xk29vLq8ZmP4'\n")
    project(tmp_path, 'min_severity = "high"\n')
    result = scan(tmp_path)
    assert found(result, tmp_path) == [("a.py", AWS_RULE, 1)] and summary(result)["allowlisted"] == 1
    project(tmp_path, 'min_severity = "low"\n')
    assert len(found(scan(tmp_path), tmp_path)) == 2


def test_a_bad_project_file_is_an_error_naming_file_and_key(tmp_path: Path) -> None:
    leak(tmp_path / "a.py")
    path = project(tmp_path, '[allowlist]\npath = ["x"]\n')
    result = scan(tmp_path)
    assert result.exit_code == 2 and f"{path}: allowlist.path: unknown key" in result.stderr
    assert scan("--no-project-config", tmp_path).exit_code == 1


def test_project_config_option_names_the_file(tmp_path: Path) -> None:
    leak(tmp_path / "src" / "a.py")
    elsewhere = project(tmp_path, '[allowlist]\nsecrets = ["AKIA"]\n').rename(tmp_path / "ci.toml")
    assert len(found(scan(tmp_path / "src"), tmp_path)) == 1
    assert found(scan("--project-config", elsewhere, tmp_path / "src"), tmp_path) == []
    both = scan("--project-config", elsewhere, "--no-project-config", tmp_path)
    assert both.exit_code == 2


def test_no_project_allowlist_hides_a_broker_credential(tmp_path: Path) -> None:
    token = mint(CredentialKind.ENGINE_TOKEN)
    leak(tmp_path / "agent.log", f"token={token}  # test double\n")
    project(tmp_path, '[allowlist]\nsecrets = ["^jit"]\nlines = ["test double"]\n'
                      f'stopwords = ["{token[4:9]}"]\n')
    assert found(scan(tmp_path), tmp_path) == [("agent.log", BROKER_RULE, 1)]


def test_the_severity_threshold_never_drops_a_broker_credential() -> None:
    config = ProjectConfig(path=Path(".jitsec.toml"), base=Path("."), min_severity=Severity.CRITICAL)
    stage = IgnoreStage(Ignores(base=Path("."), project=config))
    low = dict(rule_id="r", origin=FileOrigin("a"), line=1, column=1, offset=0, preview="p", fingerprint="f",
               severity=Severity.LOW, confidence=Confidence.STRUCTURAL, description="d")
    broker = Finding(**low, credential_sha256="0" * 64)
    live = Finding(**{**low, "confidence": Confidence.CONFIRMED})
    other = Finding(**low)
    assert stage.process(None, [broker, live, other]) == [broker, live]  # type: ignore[arg-type]


# -- inline markers ---------------------------------------------------------------------------------

def test_inline_markers_silence_their_line_but_not_a_broker_credential(tmp_path: Path) -> None:
    token = mint(CredentialKind.TASK_TOKEN)
    leak(tmp_path / "a.py", f"a = '{AWS}'  # gitleaks:allow\nb = '{AWS}'  # jitsec:allow\n"
                            f"c = '{AWS}'\nd = '{token}'  # jitsec:allow\n")
    left = [(rule, line) for _, rule, line in found(scan(tmp_path), tmp_path)]
    assert left == [(AWS_RULE, 3), (BROKER_RULE, 4)]


def test_inline_markers_excuse_nothing_on_stdin() -> None:
    result = CliRunner().invoke(main, ["scan", *RULES, "-"], input=f"a = '{AWS}'  # gitleaks:allow\n")
    assert result.exit_code == 1 and AWS_RULE in result.stdout


# -- .gitleaksignore ---------------------------------------------------------------------------------

def test_gitleaksignore_file_fingerprints_at_the_scanned_folder(tmp_path: Path) -> None:
    token = mint(CredentialKind.ENGINE_TOKEN)
    leak(tmp_path / "src" / "a.py", f"x\nkey = '{AWS}'\nt = '{token}'\n")
    leak(tmp_path / "b.py")
    (tmp_path / ".gitleaksignore").write_text(
        f"# reviewed\nsrc/a.py:{AWS_RULE}:2\nb.py:{AWS_RULE}:7\nsrc/a.py:{BROKER_RULE}:3\n"
        "not-a-fingerprint\n")
    result = scan(tmp_path)
    # b.py: the entry's line is not the finding's, so it is kept; a broker credential always is
    assert found(result, tmp_path) == [("b.py", AWS_RULE, 1), ("src/a.py", BROKER_RULE, 3)]
    assert summary(result)["allowlisted"] == 1
    assert ".gitleaksignore: line 5" in result.stderr and "warning" in result.stderr


def test_gitleaksignore_commit_fingerprints_in_history(repo: Path) -> None:
    git(repo, "add", "src/app.py", ".gitignore")
    git(repo, "commit", "-qm", "one")
    first = git(repo, "rev-parse", "HEAD")
    leak(repo / "src" / "later.py", f"\nkey = '{AWS}'\n")
    git(repo, "add", "src/later.py")
    git(repo, "commit", "-qm", "two")
    second = git(repo, "rev-parse", "HEAD")
    ignore = repo / ".gitleaksignore"
    ignore.write_text(f"{first}:src/app.py:{AWS_RULE}:1\n{first[:7]}:src/later.py:{AWS_RULE}:2\n")
    assert found(scan(f"git:{repo}")) == [("src/later.py", AWS_RULE, 2)]  # another commit's: kept
    ignore.write_text(ignore.read_text() + f"{second[:7]}:src/later.py:{AWS_RULE}:2\n")  # gitleaks 8.26+
    assert found(scan(f"git:{repo}")) == []


# -- gitleaks config ----------------------------------------------------------------------------------

def test_gitleaks_global_allowlist_paths_regexes_and_warnings(tmp_path: Path) -> None:
    leak(tmp_path / "testdata" / "a.py")
    leak(tmp_path / "src" / "b.py", f"k = '{AWS}'\nk2 = 'AKIA2OGYBAH6STMMNXNQ'\n")
    config = tmp_path / "gitleaks.toml"
    config.write_text("[allowlist]\npaths = ['''(^|/)testdata/''']\nregexes = ['''NXNQ$''']\n"
                      "condition = 'OR'\n[extend]\npath = 'base.toml'\n")
    result = scan("--gitleaks-config", config, tmp_path)
    assert found(result, tmp_path) == [("src/b.py", AWS_RULE, 1)]
    assert f"warning: {config}: extend.path: not supported" in result.stderr


def test_gitleaks_allowlisted_commits_and_history_paths_keep_broker_credentials(repo: Path) -> None:
    token = mint(CredentialKind.ENGINE_TOKEN)
    leak(repo / "src" / "app.py", f"key = '{AWS}'\ntoken = '{token}'\n")
    leak(repo / "fixtures" / "f.py")
    git(repo, "add", "src/app.py", "fixtures/f.py")
    git(repo, "commit", "-qm", "one")
    commit = git(repo, "rev-parse", "HEAD")
    config = repo.parent / "gitleaks.toml"
    config.write_text(f"[allowlist]\ncommits = ['{commit[:10]}']\n")
    result = scan("--gitleaks-config", config, f"git:{repo}")
    assert [rule for _, rule, _ in found(result)] == [BROKER_RULE]
    result = scan("--exclude", "src/**", "--exclude", "fixtures", f"git:{repo}")
    assert [rule for _, rule, _ in found(result)] == [BROKER_RULE]
    assert len(found(scan(f"git:{repo}"))) == 3

from __future__ import annotations

import json
from urllib.parse import unquote

from jitsec.scanner.engine import Scanner
from jitsec.scanner.rule_examples import check_rule_examples, contexts_for
from jitsec.scanner.ruleset import RuleExample, compile_rule, make_ruleset


def test_contexts_wrap_key_and_secret() -> None:
    contexts = dict(contexts_for(RuleExample(secret="s3cr3t/+=", key="api_key")))
    assert contexts["raw"] == "api_key=s3cr3t/+="
    assert json.loads(contexts["json"])["api_key"] == "s3cr3t/+="
    assert contexts["yaml"] == "api_key: s3cr3t/+="
    assert contexts["env"] == "export API_KEY=s3cr3t/+="
    assert unquote(contexts["url"].split("api_key=")[1]) == "s3cr3t/+=" and "%2F" in contexts["url"]
    wrapped = contexts_for(RuleExample(secret="tok", key="api_key"))
    headers = [text for name, text in wrapped if name == "header"]
    assert headers == ["X-Api-Key: tok", "Authorization: Bearer tok"]


def test_text_examples_are_wrapped_whole_and_contexts_can_be_restricted() -> None:
    example = RuleExample(secret="B", text="A\nB", contexts=("raw", "json"))
    assert contexts_for(example) == [("raw", "A\nB"), ("json", '{"level":"info","token":"A\\nB"}')]


def test_sample_pack_examples_pass_on_both_engines(scanner: Scanner) -> None:
    for rule in scanner.ruleset.rules:
        assert check_rule_examples(scanner, rule) == []


def test_a_rule_that_only_works_in_one_context_fails(scanner: Scanner, tmp_path) -> None:
    rule = compile_rule({
        "id": "quoted-only", "description": "d", "severity": "low", "keywords": ["qo_"],
        "regex": r'"(?P<secret>qo_[a-z0-9]{12})"',
        "example": [{"secret": "qo_abcdef123456"}],
        "counterexample": [{"secret": "qo_abcdef123456"}],
    }, "demo")
    own = Scanner(make_ruleset([rule]), scanner.fingerprinter, engine=scanner.engine, cache_dir=tmp_path)
    failures = check_rule_examples(own, rule)
    example_contexts = {f.context for f in failures if f.kind == "example"}
    assert "kv" in example_contexts and "json" not in example_contexts
    assert [f.context for f in failures if f.kind == "counterexample"] == ["json"]
    assert all("qo_abcdef123456" not in str(f) for f in failures)

"""Every alert says what to do: the rule's own remediation, else its family's, else one built from its
revoke page; broker credentials say what the broker did."""

from __future__ import annotations

from dataclasses import replace

from jitsec.connectors.sinks.alert import AlertContext
from jitsec.scanner.ruleset import load_ruleset

from jitsec.kernel.records import Confidence, Incident, ResponseAction, Severity
from jitsec.response.remediation import rule_remediations


def incident(rule_id: str, action: ResponseAction = ResponseAction.ALERT_ONLY) -> Incident:
    return Incident("inc-1", 1, "hmac-sha256:aa", rule_id, "", Severity.HIGH, Confidence.STRUCTURAL,
                    "AKIA…(20 chars)", 1, 1.0, 1.0, ("/log:1",), action, lease_id="lse_9")


def test_every_default_rule_has_a_remediation_and_the_specific_ones_win() -> None:
    ruleset = load_ruleset()
    texts = rule_remediations(ruleset)
    assert set(texts) == {rule.id for rule in ruleset.rules} and all(texts.values())
    assert texts["aws-access-key-id"].startswith("Deactivate the key at once")
    assert "CloudTrail" in texts["aws-secret-access-key"]
    generic = next(rule for rule in ruleset.rules if rule.pack == "generic")
    assert "real secret" in texts[generic.id]
    linked = next(rule for rule in ruleset.rules if rule.revoke and not rule.remediation)
    assert linked.revoke in texts[linked.id]
    own = replace(linked, remediation="Call the on-call of team X.")
    assert rule_remediations(replace(ruleset, rules=(own,)))[own.id] == "Call the on-call of team X."


def test_broker_credentials_say_what_the_broker_did() -> None:
    context = AlertContext(scanner="s", host="h", remediations={"broker-engine-token": "rule text"})
    assert "already revoked" in context.remediation(incident("broker-engine-token", ResponseAction.REVOKED))
    irrevocable = context.remediation(incident("broker-engine-token", ResponseAction.IRREVOCABLE))
    assert "could NOT revoke" in irrevocable and "lse_9" in irrevocable
    assert context.remediation(incident("broker-engine-token")) == "rule text"
    assert "Revoke or rotate" in context.remediation(incident("unknown-rule"))

"""What an alert tells the analyst to do, per rule: the pack's ``remediation`` text when a rule has one,
else a default for the rule's family (its pack), else a generic one built from its ``revoke`` page.

Broker credentials are described by what the broker did (``connectors.sinks.alert``), not from here.
"""

from __future__ import annotations

from jitsec.scanner.rules_model import Rule, RuleSet

_ROTATE = "Revoke or rotate it where it was issued"
_CLEANUP = "then remove it from the locations listed and from their history (git history, log retention)."
_FAMILY = {
    "generic": "Check whether the value is a real secret (it matched a generic pattern). If it is, rotate "
               "it where it was issued and move it to a secret store; " + _CLEANUP,
    "credentials-in-code": "A password or connection string is written in code or configuration: change "
                           "the password on the system it opens, load it from a secret store instead, "
                           "and " + _CLEANUP.removeprefix("then "),
    "key-material": "A private key leaked: replace the key pair, remove the public half wherever it is "
                    "trusted (authorized_keys, certificate authorities, deploy keys), and " +
                    _CLEANUP.removeprefix("then "),
    "keys": "A private key leaked: replace the key pair, remove the public half wherever it is trusted, "
            "and " + _CLEANUP.removeprefix("then "),
}


def remediation_for(rule: Rule) -> str:
    if rule.remediation:
        return rule.remediation
    if rule.pack in _FAMILY:
        return _FAMILY[rule.pack]
    if rule.revoke:
        return f"{_ROTATE} (the provider's console: {rule.revoke}), {_CLEANUP}"
    return f"{_ROTATE} (the provider's console or API), {_CLEANUP}"


def rule_remediations(ruleset: RuleSet) -> dict[str, str]:
    """Rule id → remediation text, for every rule of the set (built once at start)."""
    return {rule.id: remediation_for(rule) for rule in ruleset.rules}

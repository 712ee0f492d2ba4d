"""The console over real HTTP, as a browser without JavaScript would use it: sign-in, the session
cookie, CSRF, the security headers, filters, actions, and hostile text shown inert."""

from __future__ import annotations

import json
import logging
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from jitsec.broker.api.app import create_app
from jitsec.broker.audit import record_to_dict
from jitsec.broker.config import load_config
from jitsec.broker.errors import ConfigError
from jitsec.broker.loopback import LoopbackServer
from jitsec.broker.runtime import build_broker

from jitsec.cli import main
from jitsec.kernel.credential_format import CredentialKind, mint
from jitsec.kernel.records import Severity
from jitsec.kernel.redaction import preview
from jitsec.testing import wait_until
from tests.broker.console.conftest import ConsoleBroker, csrf_of

HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


def signed_in(console: ConsoleBroker, role: str = "analyst") -> httpx.Client:
    client = console.browser_like()
    answer = console.sign_in(client, console.keys[role])
    assert answer.status_code == 303 and answer.headers["location"] == "/console/incidents"
    return client


def test_sign_in_gives_an_httponly_strict_cookie_and_the_key_appears_in_no_url(console) -> None:
    broker = console()
    incident = broker.plant(preview="jit_Zq9…(50 chars)")
    client = broker.browser_like()
    answer = broker.sign_in(client, broker.keys["analyst"])
    assert answer.status_code == 303
    assert broker.keys["analyst"] not in answer.headers["location"]
    cookies = [SimpleCookie(value) for value in answer.headers.get_list("set-cookie")]
    session = next(c["jitsec_console"] for c in cookies if "jitsec_console" in c)
    assert session["httponly"] and session["samesite"] == "strict" and session["path"] == "/console"
    assert not session["secure"]  # plain HTTP here; Secure is set when served over HTTPS
    assert broker.keys["analyst"] not in session.value
    listed = client.get("/console/incidents")
    assert listed.status_code == 200
    assert "jit_Zq9…(50 chars)" in listed.text and f"/console/incidents/{incident}" in listed.text


def test_every_console_response_forbids_framing_inline_script_and_caching(console) -> None:
    broker = console()
    incident = broker.plant()
    client = signed_in(broker)
    for path in ("/console/sign-in", "/console/incidents", f"/console/incidents/{incident}",
                 "/console/incidents/rows", "/console/static/console.js", "/console/incidents/nope"):
        answer = client.get(path)
        assert answer.status_code in (200, 303, 404), path
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store"
    assert "<script>" not in client.get("/console/incidents").text.replace(
        '<script src="/console/static/console.js" defer></script>', "")


def test_pages_need_a_session(console) -> None:
    broker = console()
    incident = broker.plant()
    client = broker.browser_like()
    for path in ("/console/incidents", f"/console/incidents/{incident}", "/console"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in", path
    assert client.get("/console/incidents/rows").status_code == 401
    refused = client.post(f"/console/incidents/{incident}/act", data={"action": "ack"})
    assert refused.status_code == 303
    assert broker.desk.get(incident).incident.status.value == "open"


def test_a_post_without_the_sessions_csrf_token_changes_nothing(console) -> None:
    broker = console()
    incident = broker.plant()
    client = signed_in(broker)
    other = signed_in(broker)
    token = csrf_of(client.get(f"/console/incidents/{incident}").text)
    foreign = csrf_of(other.get(f"/console/incidents/{incident}").text)
    assert token != foreign
    for fields, headers in (
        ({"action": "ack"}, {}),  # no token
        ({"action": "ack", "csrf": ""}, {}),
        ({"action": "ack", "csrf": foreign}, {}),  # another session's token
        ({"action": "ack", "csrf": token}, {"Origin": "http://evil.example"}),  # right token, other site
    ):
        answer = client.post(f"/console/incidents/{incident}/act", data=fields, headers=headers)
        assert answer.status_code == 403, (fields, headers)
    answer = client.post(f"/console/incidents/{incident}/act", json={"action": "ack", "csrf": token})
    assert answer.status_code == 415
    assert broker.desk.get(incident).incident.status.value == "open"
    done = client.post(f"/console/incidents/{incident}/act", data={"action": "ack", "csrf": token})
    assert done.status_code == 303
    assert broker.desk.get(incident).incident.status.value == "acknowledged"


def test_the_sign_in_form_needs_its_own_token(console) -> None:
    broker = console()
    client = broker.browser_like()
    answer = client.post("/console/sign-in", data={"key": broker.keys["analyst"]})
    assert answer.status_code == 403 and "jitsec_console=" not in answer.headers.get("set-cookie", "")
    assert client.get("/console/incidents").status_code == 303


def test_a_wrong_key_is_refused_audited_without_the_key_and_throttled(console, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    broker = console()
    client = broker.browser_like()
    wrong = broker.keys["analyst"][:-1] + ("A" if broker.keys["analyst"][-1] != "A" else "B")
    for _ in range(5):
        answer = broker.sign_in(client, wrong)
        assert answer.status_code == 401
        assert "cannot sign in" in answer.text and wrong not in answer.text
    throttled = broker.sign_in(client, broker.keys["analyst"])  # even the right key, from this address
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    assert client.get("/console/incidents").status_code == 303
    audit = [record_to_dict(r) for r in broker.running.broker.store.audit_records(limit=10_000)]
    denials = [r for r in audit if r["kind"] == "deny" and "console_sign_in" in r["detail"]]
    assert len(denials) == 5 and all(r["resource"] == "127.0.0.1" for r in denials)
    assert wrong not in json.dumps(audit) and broker.keys["analyst"] not in json.dumps(audit)
    assert "console sign-in refused from 127.0.0.1: unknown key" in caplog.text
    assert wrong not in caplog.text and broker.keys["analyst"] not in caplog.text


def test_only_analysts_and_admins_may_sign_in(console) -> None:
    broker = console()
    for role in ("scanner", "orchestrator", "resource"):
        assert broker.sign_in(broker.browser_like(), broker.keys[role]).status_code == 401, role
    signed_in(broker, "admin")
    audit = [record_to_dict(r) for r in broker.running.broker.store.audit_records(limit=10_000)]
    assert any("has role scanner, not a console role" in r["detail"] for r in audit)


def test_sign_out_ends_the_session_for_every_copy_of_the_cookie(console) -> None:
    broker = console()
    client = signed_in(broker)
    stolen = httpx.Client(base_url=broker.url, cookies=dict(client.cookies), follow_redirects=False)
    assert stolen.get("/console/incidents").status_code == 200
    token = csrf_of(client.get("/console/incidents").text)
    out = client.post("/console/sign-out", data={"csrf": token})
    assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
    assert stolen.get("/console/incidents").status_code == 303


def test_filters_narrow_the_list_and_a_bad_one_is_refused(console) -> None:
    broker = console()
    broker.plant(preview="AKIA…(20 chars)", rule="aws-access-key", severity=Severity.HIGH, agent=None,
                 source="kafka")
    broker.plant(preview="jit_Low1…(50 chars)", severity=Severity.LOW, agent="ops-bot")
    client = signed_in(broker)
    low = client.get("/console/incidents", params={"severity": "low"}).text
    assert "jit_Low1" in low and "AKIA" not in low
    by_rule = client.get("/console/incidents", params={"rule": "aws-access-key"}).text
    assert "AKIA" in by_rule and "jit_Low1" not in by_rule
    by_agent = client.get("/console/incidents/rows", params={"agent": "ops-bot"}).text
    assert "jit_Low1" in by_agent and "AKIA" not in by_agent
    by_source = client.get("/console/incidents", params={"source": "kafka"}).text
    assert "AKIA" in by_source and "jit_Low1" not in by_source
    bad = client.get("/console/incidents", params={"severity": "<b>urgent</b>"})
    assert bad.status_code == 400 and "<b>urgent</b>" not in bad.text


def test_assign_note_and_resolve_show_on_the_timeline(console) -> None:
    broker = console()
    incident = broker.plant()
    client = signed_in(broker)
    token = csrf_of(client.get(f"/console/incidents/{incident}").text)
    for verb, fields in (("assign", {"assignee": "dana"}), ("note", {"text": "rotated the upstream key"}),
                         ("act", {"action": "resolve", "reason": "revoked, provider confirmed"})):
        assert client.post(f"/console/incidents/{incident}/{verb}",
                           data={"csrf": token, **fields}).status_code == 303, verb
    page = client.get(f"/console/incidents/{incident}").text
    assert "rotated the upstream key" in page and "dana" in page and "revoked, provider confirmed" in page
    assert broker.desk.get(incident).incident.status.value == "resolved"
    conflict = client.post(f"/console/incidents/{incident}/act", data={"csrf": token, "action": "ack"})
    assert conflict.status_code == 409


def test_hostile_text_from_the_fleet_is_escaped(console) -> None:
    broker = console()
    incident = broker.plant(location=f"logs/{HOSTILE}.log:3", preview=HOSTILE)
    client = signed_in(broker)
    for page in (client.get("/console/incidents").text, client.get(f"/console/incidents/{incident}").text):
        assert HOSTILE not in page and "<img" not in page
        assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in page


def test_behind_a_tls_proxy_the_session_cookie_is_secure(console) -> None:
    broker = console()
    client = broker.browser_like()
    https = {"X-Forwarded-Proto": "https"}  # uvicorn trusts it from loopback, as from a local TLS proxy
    form = client.get("/console/sign-in", headers=https)
    token = SimpleCookie(form.headers["set-cookie"])["jitsec_console_sign_in"]
    assert token["secure"]  # so httpx keeps it for https only: send it by hand, as the browser would
    origin = broker.url.replace("http://", "https://")
    answer = client.post("/console/sign-in", headers={**https, "Origin": origin,
                                                      "Cookie": f"jitsec_console_sign_in={token.value}"},
                         data={"csrf": csrf_of(form.text), "key": broker.keys["analyst"]})
    assert answer.status_code == 303
    session = next(c["jitsec_console"] for c in map(SimpleCookie, answer.headers.get_list("set-cookie"))
                   if "jitsec_console" in c)
    assert session["secure"] and session["httponly"] and session["samesite"] == "strict"


def test_revoking_the_analysts_key_ends_its_console_session(tmp_path: Path) -> None:
    config = tmp_path / "broker.toml"
    runner = CliRunner()
    assert runner.invoke(main, ["broker", "init", "--config", str(config), "--json"]).exit_code == 0
    added = runner.invoke(main, ["broker", "principals", "add", "dana", "--role", "analyst", "--json",
                                 "--config", str(config)])
    assert added.exit_code == 0, added.output
    key = json.loads(added.output)["key"]
    broker = build_broker(load_config(config))
    server = LoopbackServer(create_app(broker, config_path=config)).start()
    try:
        console = ConsoleBroker(url=server.url, running=None, keys={"analyst": key})
        client = signed_in(console)
        assert client.get("/console/incidents").status_code == 200
        revoked = runner.invoke(main, ["broker", "principals", "revoke", "dana", "--config", str(config)])
        assert revoked.exit_code == 0, revoked.output
        assert wait_until(lambda: client.get("/console/incidents").status_code == 303, 10)
        assert broker.service.incidents.list().items == ()
    finally:
        server.stop()
        broker.close()


def test_no_broker_credential_is_shown_even_where_the_fleet_or_an_analyst_wrote_one(console) -> None:
    broker = console()
    leaked, pasted = mint(CredentialKind.ENGINE_TOKEN), mint(CredentialKind.TASK_TOKEN)
    incident = broker.plant(location=f"app.log:7 token={leaked}", preview=leaked)
    client = signed_in(broker)
    token = csrf_of(client.get(f"/console/incidents/{incident}").text)
    for verb, fields in (("note", {"text": f"it was {pasted}"}),
                         ("act", {"action": "ack", "reason": pasted})):
        assert client.post(f"/console/incidents/{incident}/{verb}", data={"csrf": token, **fields}
                           ).status_code == 303
    pages = [client.get("/console/incidents").text, client.get(f"/console/incidents/{incident}").text,
             client.get("/console/incidents/rows").text]
    for page in pages:
        assert leaked not in page and pasted not in page
    assert preview(leaked) in pages[1] and preview(pasted) in pages[1]


@pytest.mark.postgres
def test_the_console_works_the_same_over_the_postgresql_store(console, scratch_database, as_url) -> None:
    broker = console(broker={"store": as_url(scratch_database)})
    incident = broker.plant(preview="jit_Pg42…(50 chars)")
    client = signed_in(broker)
    assert "jit_Pg42…(50 chars)" in client.get("/console/incidents", params={"status": "open"}).text
    token = csrf_of(client.get(f"/console/incidents/{incident}").text)
    answer = client.post(f"/console/incidents/{incident}/act", data={"csrf": token, "action": "ack"})
    assert answer.status_code == 303
    page = client.get(f"/console/incidents/{incident}").text
    assert "<b>status</b> by analyst-1" in page and 'id="status">acknowledged<' in page
    assert incident not in client.get("/console/incidents", params={"status": "open"}).text


def test_the_console_follows_its_config_section(console, env) -> None:
    assert console(console={"enabled": False}).browser_like().get("/console/sign-in").status_code == 404
    strict = console(console={"sign_in_failures": 2, "sign_in_window_seconds": 60})
    client = strict.browser_like()
    assert [strict.sign_in(client, strict.keys["scanner"]).status_code for _ in range(3)] == [401, 401, 429]
    with pytest.raises(ConfigError, match=r"console\.idle_minutes must be positive"):
        env.config(console={"idle_minutes": 0})
    with pytest.raises(ConfigError, match="unknown key"):
        env.config(console={"session_days": 3})

"""The console in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): sign in,
see a planted incident, acknowledge it, watch the status change; a wrong key refused; hostile text
inert; a CSRF-less POST from the page itself refused. Screenshots go to artifacts/console/ (CI keeps
that folder as an artefact). Without Chromium the tests fail under CI and are skipped elsewhere."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from jitsec.kernel.records import Severity
from jitsec.testing import wait_until
from tests.broker.console.conftest import ConsoleBroker

CHROMIUM = Path(os.environ.get("JITSEC_TEST_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts" / "console"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    """A fresh Chromium profile and one page. A dialog (an injected ``alert``) fails the test, and so
    does anything the Content-Security-Policy blocked (the console's own pages must need nothing it
    forbids)."""
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} not found: install the Debian package chromium (scripts/test does, as root)")
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only these tests need it
    except ImportError:
        _missing("the Python package playwright is not installed (pip install -e '.[test]')")
    dialogs: list[str] = []
    blocked: list[str] = []
    with sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 800})
        try:
            tab = context.new_page()
            tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            tab.on("console", lambda message: blocked.append(message.text)
                   if "Content Security Policy" in message.text else None)
            yield tab
        finally:
            context.close()
    assert dialogs == [], f"a script ran in the console: {dialogs}"
    assert blocked == [], f"the console's pages broke their own policy: {blocked}"


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, broker: ConsoleBroker, key: str) -> None:
    page.goto(f"{broker.url}/console")
    page.fill("#key", key)
    page.click("#sign-in")
    page.wait_for_load_state()


def test_an_analyst_signs_in_sees_the_incident_acknowledges_it_and_sees_the_status_change(
        console, page) -> None:
    broker = console()
    incident = broker.plant(preview="jit_Qx7…(50 chars)", location="/var/log/agent/run.log:88")
    sign_in(page, broker, broker.keys["analyst"])
    assert page.url == f"{broker.url}/console/incidents"
    assert broker.keys["analyst"] not in page.url
    row = page.locator(f'tr[data-incident="{incident}"]')
    assert "jit_Qx7…(50 chars)" in row.inner_text() and "open" in row.inner_text()
    shot(page, "01-incidents")

    row.locator("a").click()
    page.wait_for_url(re.compile(rf".*/console/incidents/{incident}$"))
    assert page.locator("#status").inner_text() == "open"
    assert "/var/log/agent/run.log:88" in page.locator("#sightings").inner_text()
    page.fill("#reason", "looking into it")
    page.click("#do-ack")
    page.wait_for_url(re.compile(r".*\?done=status$"))
    assert page.locator("#status").inner_text() == "acknowledged"
    timeline = page.locator("#timeline").inner_text()
    assert "status by analyst-1" in timeline and "looking into it" in timeline
    shot(page, "02-acknowledged")
    assert broker.desk.get(incident).incident.status.value == "acknowledged"


def test_the_list_refreshes_itself_when_a_new_incident_arrives(console, page) -> None:
    broker = console()
    broker.plant(preview="jit_Old1…(50 chars)")
    sign_in(page, broker, broker.keys["analyst"])
    fresh = broker.plant(preview="jit_New2…(50 chars)", severity=Severity.HIGH)
    page.wait_for_selector(f'tr[data-incident="{fresh}"]', timeout=15_000)
    assert "refreshed" in page.locator("#refreshed").inner_text()


def test_a_wrong_key_is_refused_in_the_browser(console, page) -> None:
    broker = console()
    sign_in(page, broker, broker.keys["scanner"])
    assert page.url == f"{broker.url}/console/sign-in"
    assert "cannot sign in" in page.locator(".message").inner_text()
    shot(page, "03-refused")
    page.goto(f"{broker.url}/console/incidents")
    assert page.url == f"{broker.url}/console/sign-in"


def test_a_post_without_the_csrf_token_is_refused_even_from_the_signed_in_page(console, page) -> None:
    broker = console()
    incident = broker.plant()
    sign_in(page, broker, broker.keys["analyst"])
    page.goto(f"{broker.url}/console/incidents/{incident}")
    page.evaluate('document.querySelector("#act input[name=csrf]").value = "forged"')
    page.click("#do-ack")
    page.wait_for_load_state()
    assert "no valid CSRF token" in page.content()
    assert broker.desk.get(incident).incident.status.value == "open"


def test_a_hostile_location_and_preview_are_shown_inert(console, page) -> None:
    broker = console()
    hostile = '<script>window.pwned = 1; alert("pwned")</script><img src=x onerror="alert(2)">'
    incident = broker.plant(location=f"app.log:1 {hostile}", preview=f"jit_{hostile}")
    sign_in(page, broker, broker.keys["analyst"])
    cell = page.locator(f'tr[data-incident="{incident}"] td.preview')
    assert hostile in cell.inner_text()
    # the live refresh swaps the rows in from the server: still text, still inert
    assert wait_until(lambda: page.locator("#refreshed").inner_text().startswith("refreshed "), timeout=15)
    assert hostile in cell.inner_text() and cell.locator("img, script").count() == 0
    page.goto(f"{broker.url}/console/incidents/{incident}")
    assert hostile in page.locator("#sightings td.where").inner_text()
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("window.pwned === undefined")
    shot(page, "04-hostile-inert")

"""The page in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``, which
``make test`` installs when missing): after the worker has decided a simulated backlog, the
totals and per-rule figures it shows equal those counted from ``triage.decisions``; the
explorer finds an event and a case and shows the explanation. Screenshots go to
``test-artifacts/`` (git-ignored)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dashboard_world import decided_backlog, wait_for_log

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TOKEN = "viewer-token-for-the-browser-test"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CPR_SHAPED = re.compile(r"(?<!\d)\d{6}-?\d{4}(?!\d)")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for binary in (CHROMIUM, CHROMEDRIVER):
        assert shutil.which(binary), f"{binary} missing: make test installs chromium and " \
                                     "chromium-driver (scripts/ensure-debs)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}",
                 "--window-size=1400,2600"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


READ_RULE_TABLE = """
const rows = {};
for (const tr of document.querySelectorAll('#table-rule tbody tr')) {
  const cells = {};
  for (const td of tr.querySelectorAll('td[data-outcome]')) cells[td.dataset.outcome] =
    td.textContent;
  rows[tr.dataset.rule] = cells;
}
return rows;"""  # read in one go: the page replaces the table on every update


def figure(driver, name: str) -> int:
    from selenium.webdriver.common.by import By

    text = driver.find_element(By.CSS_SELECTOR, f'[data-figure="{name}"]').text
    return int(text.replace(",", ""))


def test_the_page_shows_the_decided_backlog_and_explains_an_event_and_a_case(browser,
                                                                           tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    ARTIFACTS.mkdir(exist_ok=True)
    with decided_backlog(tmp_path, viewer_token=TOKEN, decision_log_group="dash") as run:
        backlog = run.backlog
        totals = backlog.totals
        wait_for_log(run.base, len(backlog.decisions),
                     headers={"Authorization": f"Bearer {TOKEN}"})
        from selenium.common.exceptions import StaleElementReferenceException

        # the login redirects: an element found on the old page may go stale while we poll
        wait = WebDriverWait(browser, 60, poll_frequency=0.2,
                             ignored_exceptions=(StaleElementReferenceException,))

        browser.get(f"{run.base}/")  # no session yet: the login form
        wait.until(ec.presence_of_element_located((By.ID, "token")))
        assert TOKEN not in browser.current_url
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "login").click()
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-loaded")
                   == str(len(backlog.decisions)))
        assert TOKEN not in browser.current_url

        assert figure(browser, "total") == len(backlog.decisions)
        for outcome in ("suppressed", "raised", "invalid"):
            assert figure(browser, outcome) == totals[outcome], outcome
        shown_rules = {rule: {k: int(v.replace(",", "")) for k, v in cells.items()}
                       for rule, cells in browser.execute_script(READ_RULE_TABLE).items()}
        assert set(shown_rules) == set(backlog.by_rule)
        for rule, counts in backlog.by_rule.items():
            for outcome in ("suppressed", "raised", "invalid"):
                assert shown_rules[rule][outcome] == counts[outcome], (rule, outcome)
        rate = browser.find_element(By.CSS_SELECTOR, '[data-figure="suppression_rate"]').text
        expected_rate = 100 * totals["suppressed"] / (totals["suppressed"] + totals["raised"])
        assert rate == f"{expected_rate:.1f} %"
        charts = browser.find_elements(By.CSS_SELECTOR, ".chart svg rect")
        assert len(charts) > 20  # the SVG charts were drawn
        assert not CPR_SHAPED.search(browser.find_element(By.TAG_NAME, "body").text)
        browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))

        # the explorer: a raised event with a task, then its case
        event = next(d for d in backlog.decisions.values()
                     if d["outcome"] == "raised" and any(v["task_id"] for v in d["cases"]))
        verdict = next(v for v in event["cases"] if v["task_id"])
        box = browser.find_element(By.ID, "explore-id")
        box.send_keys(event["event_id"])
        browser.find_element(By.ID, "explore-go").click()
        wait.until(lambda d: d.find_element(By.ID, "explore-result").get_attribute(
            "data-loaded") == f"event:{event['event_id']}")
        browser.execute_script("document.getElementById('explore').scrollIntoView()")
        result = browser.find_element(By.ID, "explore-result").text
        for expected in (event["rule"], event["reason"], verdict["case_id"], verdict["task_id"],
                         event["ruleset"], verdict["title"]):
            assert expected in result, expected
        if event["correlation_id"]:
            assert event["correlation_id"] in result
        for fact in verdict["facts"]:
            assert fact in result, fact
        browser.save_screenshot(str(ARTIFACTS / "explorer-event.png"))

        Select(browser.find_element(By.ID, "explore-kind")).select_by_value("case")
        box.clear()
        box.send_keys(verdict["case_id"])
        browser.find_element(By.ID, "explore-go").click()
        wait.until(lambda d: d.find_element(By.ID, "explore-result").get_attribute(
            "data-loaded") == f"case:{verdict['case_id']}")
        about = backlog.about_case(verdict["case_id"])
        shown = browser.find_elements(By.CSS_SELECTOR, "#explore-result .decision")
        assert {e.get_attribute("data-event-id") for e in shown} == {
            d["event_id"] for d in about}
        summary = browser.find_element(By.CSS_SELECTOR, "#explore-result .summary").text
        assert summary.startswith(f"case {verdict['case_id']}: {len(about)} decisions")
        browser.save_screenshot(str(ARTIFACTS / "explorer-case.png"))

"""The operator console in a real browser: Chromium (Debian's `chromium`) driven by Playwright
for Python, against `nxt serve` on the demo stack (demo data, two days of telemetry, the
snapshot jobs run). Screenshots of each section go to tests/artifacts/console/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from nxt_cli.harness import ROOT, ScratchDatabases
from nxt_cli.seed import LENDER_ID, OPERATOR_ID
from tests.support.serving import ServeProcess, demo_planes, serve

pytestmark = pytest.mark.db

ARTIFACTS = ROOT / "tests" / "artifacts" / "console"
SECTIONS = ("functions", "jobs", "freshness", "consumption", "schema")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def stack(scratch: ScratchDatabases, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[ServeProcess, str, str]]:
    url, ts_url = demo_planes(scratch, "console")
    tmp = tmp_path_factory.mktemp("console")
    with serve(url, ts_url, tmp / "serve.log",
               NXT_JOB_RUNS_LOG=str(tmp / "job-runs.jsonl")) as served:
        yield served, url, ts_url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    if executable is None:
        import os

        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's package")
        pytest.skip("chromium is not installed (apt-get install chromium): the console's"
                    " browser tests need it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable,
                                     args=["--no-sandbox", "--disable-gpu"])
        try:
            yield launched
        finally:
            launched.close()


def _open(browser: Any, base: str, token: str) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/?token={token}")
    return context, page, errors


def test_the_console_shows_the_stack_to_the_operator_and_runs_a_job(
        stack: tuple[ServeProcess, str, str], browser: Any) -> None:
    served, _, ts_url = stack
    api = served.api
    api.get("/functions/v1/customers", params={"size": 1},
            headers={"Authorization": f"Bearer {api.token(OPERATOR_ID)}"})
    context, page, errors = _open(browser, api.base_url, api.token(OPERATOR_ID))
    try:
        assert page.url == f"{api.base_url}/"  # the token left the address bar for a cookie
        for section in SECTIONS:
            assert page.locator(f"section#{section}").is_visible(), section
        customers = page.locator("tr[data-function='customers']")
        assert "HTTP" in customers.inner_text() and "200" in customers.inner_text()
        assert "schedule 5 * * * * UTC" in page.locator(
            "tr[data-function='snapshot-meters']").inner_text()
        assert page.locator("tr[data-table='meter_snapshot_1_h']").get_attribute(
            "class") == "ok"
        assert page.locator("#consumption .grid svg polyline").count() > 0
        assert "agree" in page.locator("#schema pre").inner_text()

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for section in SECTIONS:
            page.locator(f"section#{section}").screenshot(path=str(ARTIFACTS / f"{section}.png"))
        page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)

        # "run now" runs the job through its real target, and the page shows the run.
        row = page.locator("tr[data-job='freshness-check']")
        assert "no run yet" in row.inner_text()
        row.locator("button").click()
        page.wait_for_url(f"{api.base_url}/#jobs")
        ran = page.locator("tr[data-job='freshness-check'] td.runs").inner_text()
        assert "(console)" in ran and ("ok" in ran or "stale" in ran), ran

        # A table made stale turns red.
        with psycopg.connect(ts_url, autocommit=True) as conn:
            conn.execute("update ts.job_watermarks set updated_at = now() - interval '2 hours'"
                         " where job = 'sync-orders'")
        page.reload()
        stale = page.locator("tr[data-table='order_snapshots']")
        assert stale.get_attribute("class") == "stale"
        assert stale.locator("td.stale").evaluate(
            "e => getComputedStyle(e).color") == "rgb(179, 38, 30)"
        stale.screenshot(path=str(ARTIFACTS / "stale.png"))
        assert errors == []
    finally:
        context.close()


def test_the_console_reads_on_a_phone(stack: tuple[ServeProcess, str, str],
                                      browser: Any) -> None:
    served, _, _ = stack
    api = served.api
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                  device_scale_factor=2)
    try:
        page = context.new_page()
        page.goto(f"{api.base_url}/?token={api.token(OPERATOR_ID)}")
        assert page.locator("section#jobs").is_visible()
        # Nothing wider than the screen: wide tables scroll inside their section.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "phone.png"))
    finally:
        context.close()


def test_a_non_operator_gets_no_data(stack: tuple[ServeProcess, str, str],
                                      browser: Any) -> None:
    served, _, _ = stack
    api = served.api
    for token in (api.token(LENDER_ID), api.token(role="anon"), "not-a-token"):
        context, page, _ = _open(browser, api.base_url, token)
        try:
            text = page.content()
            assert "section id=\"functions\"" not in text and "Functions" not in text
            assert "sign in" in text
        finally:
            context.close()
    # Without a cookie: the sign-in page, 401; run now refuses too, and runs nothing.
    bare = api.http.get("/")
    assert bare.status_code == 401 and "Functions" not in bare.text
    refused = api.http.post("/console/jobs/freshness-check/run")
    assert refused.status_code == 403
    lender = api.http.get("/", params={"token": api.token(LENDER_ID)})
    assert lender.status_code == 403 and "operator only" in lender.text

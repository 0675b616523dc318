"""/dashboard in a real headless Chromium (Debian's, driven by Playwright; nothing downloaded): a real router,
real registrations and traffic, and the page showing them and updating live; desktop and phone screenshots
are written to build/screenshots/."""

from __future__ import annotations

import os
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright
from support import PASS, USER, dead_port, get, unique_host

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("PORTICO_SCREENSHOT_DIR", REPO / "build" / "screenshots"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 390, "height": 844}



@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed (scripts/test installs it with apt-get)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def scene(router_factory, backend):
    """A router with a busy route, a quiet one and one whose endpoint refuses connections."""
    router = router_factory()
    busy, quiet, broken = unique_host("busy"), unique_host("quiet"), unique_host("broken")
    router.register(busy, backend.port, app="app-busy")
    router.register(quiet, backend.port, app="app-quiet")
    router.register(broken, dead_port(), app="app-broken")
    for _ in range(15):
        assert get(router.port, busy, "/echo").status == 200
    assert get(router.port, quiet, "/echo").status == 200
    return router, busy, quiet, broken, backend.port


def _row_total(page, table: str, route: str) -> int:
    cells = page.locator(f"#{table} tbody tr[data-route='{route}'] td")
    return int(cells.nth(5).inner_text()) if cells.count() else -1


def _traffic(port: int, host: str, n: int) -> threading.Thread:
    def run():
        for _ in range(n):
            get(port, host, "/echo")
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_dashboard_needs_the_routes_credentials(scene):
    router = scene[0]
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{router.routes_port}/dashboard", timeout=5)
    assert err.value.code == 401
    status, headers, body = router._get_status(router.routes_port, "/dashboard")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b"EventSource" not in body
    status, _, js = router._get_status(router.routes_port, "/dashboard/dashboard.js")
    assert status == 200 and b"EventSource" in js and b"innerHTML" not in js  # route names only as text
    assert router._get_status(router.status_port, "/dashboard")[0] == 404  # not on the public status port


def test_page_shows_routes_traffic_and_failures_and_updates(scene, browser):
    router, busy, quiet, broken, backend_port = scene
    context = browser.new_context(http_credentials={"username": USER, "password": PASS},
                                  viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    try:
        page.goto(f"http://127.0.0.1:{router.routes_port}/dashboard")
        page.wait_for_function("document.getElementById('live').textContent === 'live'", timeout=15000)
        page.wait_for_selector(f"#busiest tbody tr[data-route='{busy}']", timeout=15000)
        assert page.locator("#nats").inner_text() == "NATS connected"
        assert int(page.locator("#routes").inner_text()) >= 3
        assert page.locator("#since-registration").inner_text().endswith("ago")
        # the route table lists each endpoint with its TTL left and in-flight count
        busy_row = page.locator(f"#route-table tbody tr[data-route='{busy}']")
        assert f"127.0.0.1:{backend_port}" in busy_row.inner_text()
        assert busy_row.locator("td").nth(3).inner_text().endswith(" s")
        assert busy_row.locator("td").nth(6).inner_text() == "ok"

        # live: more traffic shows up without reloading the page
        before = _row_total(page, "busiest", busy)
        assert before >= 15
        _traffic(router.port, busy, 25).join(30)
        page.wait_for_function(
            "([route, n]) => { const r = document.querySelector(`#busiest tbody tr[data-route='${route}']`);"
            " return r && parseInt(r.cells[5].textContent) >= n; }", arg=[busy, before + 25], timeout=15000)
        rps = float(page.locator("#rps").inner_text())
        assert rps > 0

        # a failing endpoint: 502s, the failure listed, the endpoint benched, its route's 5xx rate shown
        for _ in range(3):
            assert get(router.port, broken, "/").status == 502
        page.wait_for_function(f"document.getElementById('failures').textContent.includes('{broken}')",
                               timeout=15000)
        assert "endpoint_failure" in page.locator("#failures").inner_text()
        broken_row = page.locator(f"#route-table tbody tr[data-route='{broken}']")
        broken_row.wait_for(timeout=15000)
        page.wait_for_function(
            f"document.querySelector(\"#route-table tbody tr[data-route='{broken}']\").cells[6].textContent"
            " === 'benched'", timeout=15000)
        assert int(broken_row.locator("td").nth(5).inner_text()) >= 1

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "dashboard-desktop.png"), full_page=True)

        # filtering: only the matching route is left in both tables
        page.fill("#filter", quiet)
        page.wait_for_function(
            f"document.querySelectorAll('#busiest tbody tr').length === 1 && "
            f"document.querySelector('#busiest tbody tr').dataset.route === '{quiet}'", timeout=15000)
        routes_listed = {r.get_attribute("data-route") for r in page.locator("#route-table tbody tr").all()}
        assert routes_listed == {quiet}
    finally:
        context.close()


def test_readable_on_a_phone(scene, browser):
    router, busy = scene[:2]
    context = browser.new_context(http_credentials={"username": USER, "password": PASS}, viewport=PHONE,
                                  device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(f"http://127.0.0.1:{router.routes_port}/dashboard")
        page.wait_for_selector(f"#busiest tbody tr[data-route='{busy}']", timeout=15000)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "dashboard-phone.png"), full_page=True)
        # the page itself never scrolls sideways; wide tables scroll inside their own box
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert page.evaluate("window.innerWidth") == PHONE["width"]
        tile = page.locator("#rps").bounding_box()
        assert tile is not None and tile["width"] < PHONE["width"] / 2 + 10  # two tiles a row
        assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 12
    finally:
        context.close()

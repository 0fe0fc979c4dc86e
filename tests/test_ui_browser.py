"""``gitml ui`` in a real browser: headless Chromium driven by Selenium (issue 17).

The repository and the server are tests/test_ui.py's (``gitml ui --port 0`` as a user starts it).
Chromium and ChromeDriver are Debian's (``/usr/bin/chromium``, ``/usr/bin/chromedriver``; `.ci/run`
installs them with apt-get when missing); locally the test is skipped without them, in CI
(``CI`` set) it fails instead. Screenshots go to the test's tmp folder; with
``GITML_UI_SCREENSHOTS=docs/img`` they are also copied there (docs/ui.md shows them).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import test_ui
from test_ui import EVIL

CHROMIUM = os.environ.get("GITML_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("GITML_CHROMEDRIVER", "/usr/bin/chromedriver")
KEEP = os.environ.get("GITML_UI_SCREENSHOTS")  # read now: the tests' environment drops GITML_* settings

if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    if os.environ.get("CI"):
        raise RuntimeError(f"the browser tests need {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium "
                           "chromium-driver; .ci/run does)")
    pytest.skip(f"no {CHROMIUM} or {CHROMEDRIVER}", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver")
site = test_ui.site  # the same repository and `gitml ui` server as tests/test_ui.py (one of its own here)

from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser(site):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1360,900", f"--user-data-dir={site['shots'].parent / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ.setdefault("SE_AVOID_STATS", "true")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def shot(site: dict, browser, name: str) -> Path:
    """A screenshot under the test's tmp folder (and in GITML_UI_SCREENSHOTS when set)."""
    site["shots"].mkdir(exist_ok=True)
    path = site["shots"] / f"ui-{name}.png"
    browser.save_screenshot(str(path))
    assert path.stat().st_size > 5000
    if KEEP:
        Path(KEEP).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(KEEP) / path.name)
    return path


def wait_drawn(browser, selector: str, count: str | None = None, timeout: float = 30):
    """The chart ``selector`` once gitml.js drew it (``data-drawn``, and its canvas)."""
    def drawn(driver):
        for figure in driver.find_elements(By.CSS_SELECTOR, selector):
            done = figure.get_attribute("data-drawn")
            if done and (count is None or done == count) and figure.find_elements(By.TAG_NAME, "canvas"):
                return figure
        return False
    return WebDriverWait(browser, timeout).until(drawn)


def no_script_ran(browser) -> None:
    """No alert() from untrusted text, and no error in the console (a CSP refusal would be one)."""
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], errors


def test_runs_page_filter_and_run_page_chart(site, browser):
    browser.get(site["url"] + "/runs")
    assert browser.find_element(By.ID, "runs").text.count("FINISHED") == 3
    shot(site, browser, "runs")
    box = browser.find_element(By.ID, "filter")
    box.send_keys("params.lr = '0.05'")
    box.submit()
    WebDriverWait(browser, 20).until(lambda d: "1–1 of 1 run" in d.find_element(By.ID, "compare-form").text)
    assert "feature-run" in browser.find_element(By.ID, "runs").text
    browser.find_element(By.ID, "filter").clear()
    browser.find_element(By.ID, "filter").send_keys("metrics.acc >")
    browser.find_element(By.ID, "filter").submit()
    error = WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "filter-error"))
    assert "position" in error.text and "^" in error.text
    no_script_ran(browser)
    browser.get(site["url"] + "/runs")
    browser.find_element(By.LINK_TEXT, "base").click()
    chart = wait_drawn(browser, 'figure.chart[data-key="loss"]', "10000")
    assert chart.find_element(By.CSS_SELECTOR, ".u-legend").text.startswith("step")
    assert EVIL in browser.find_element(By.ID, "params").text  # the param's <script> shows as text
    assert "<img src=x onerror=alert(1)>" in browser.find_element(By.ID, "tags").text
    shot(site, browser, "run")
    browser.find_element(By.ID, "log-scale").click()
    browser.execute_script("const s = document.getElementById('x-axis'); s.value = 'time';"
                           "s.dispatchEvent(new Event('change'));")
    WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.CSS_SELECTOR, 'figure.chart[data-key="loss"] .u-legend').text.startswith("time"))
    no_script_ran(browser)


def test_a_metric_with_nan_and_infinities_is_drawn_with_a_note(site, browser):
    browser.get(site["url"] + f"/runs/{site['dirty']}")
    chart = wait_drawn(browser, 'figure.chart[data-key="wild"]', "8")
    assert "3 points are NaN or infinite: not drawn" in chart.text
    assert len(chart.find_elements(By.CSS_SELECTOR, ".u-legend .u-series")) == 2
    no_script_ran(browser)


def test_compare_two_selected_runs(site, browser):
    browser.get(site["url"] + "/runs")
    for run in (site["base"], site["feature"]):
        browser.find_element(By.CSS_SELECTOR, f'input[name="runs"][value="{run}"]').click()
    browser.find_element(By.ID, "compare-button").click()
    WebDriverWait(browser, 20).until(lambda d: "/compare" in d.current_url)
    assert "Compare 2 runs" in browser.find_element(By.TAG_NAME, "h1").text
    changed = browser.find_elements(By.CSS_SELECTOR, "#compare tr.changed")
    assert any("lr" in row.text for row in changed)
    wait_drawn(browser, "#overlay-chart", "2")
    scatter = wait_drawn(browser, "#scatter-chart", "2")
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(browser).move_to_element(scatter.find_element(By.CSS_SELECTOR, ".u-over")).perform()
    legend = scatter.find_element(By.CSS_SELECTOR, ".u-legend").text  # the hovered point names its run
    assert "(base)" in legend or "(feature-run)" in legend, legend
    shot(site, browser, "compare")
    no_script_ran(browser)


def test_registry_and_branches(site, browser):
    browser.get(site["url"] + "/registry")
    browser.find_element(By.LINK_TEXT, "churn").click()
    timeline = WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "timeline"))
    assert "register" in timeline.text and "prod" in timeline.text
    shot(site, browser, "registry")
    browser.get(site["url"] + "/branches?a=main&b=feature&experiment=churn")
    table = browser.find_element(By.ID, "diff")
    assert "lr" in table.text and "acc" in table.text
    shot(site, browser, "branches")
    no_script_ran(browser)


def test_a_live_run_page_follows_the_run_and_reloads_when_it_ends(repo, browser):
    with test_ui.ui_server(repo) as url:
        with test_ui.live_run(repo) as (run_id, more, _):
            browser.get(url + f"/runs/{run_id}")
            assert "In progress in this clone" in browser.find_element(By.ID, "live").text
            wait_drawn(browser, 'figure.chart[data-key="loss"]', "3")
            more(4)  # loss: 7 points; acc: 1 point, a new metric row: the page reloads
            WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, 'td[data-metric="acc"]'))
            wait_drawn(browser, 'figure.chart[data-key="loss"]', "7")
            more(2)  # loss 9 points, acc 2 points: a new chart, a reload again
            wait_drawn(browser, 'figure.chart[data-key="acc"]', "2")
            browser.execute_script("window.gitmlMark = 2;")  # gone if the page reloads
            more(3)  # loss 12, acc 3: the same metrics and charts, drawn again in place
            wait_drawn(browser, 'figure.chart[data-key="loss"]', "12")
            assert browser.execute_script("return window.gitmlMark;") == 2
            assert browser.find_element(By.CSS_SELECTOR, 'td[data-points="loss"]').text == "12 points"
            assert browser.find_element(By.CSS_SELECTOR, 'td[data-metric="loss"]').text == "0.08333333"  # as %.7g
            no_script_ran(browser)
        # the run ended and was committed: the page reloads into the committed run's
        WebDriverWait(browser, 30).until(lambda d: not d.find_elements(By.ID, "live"))
        assert "FINISHED" in browser.find_element(By.TAG_NAME, "main").text


family = test_ui.family


def test_experiment_picks_search_at_once_and_ticked_runs_survive_a_new_search(family, browser):
    from selenium.webdriver.support.ui import Select

    browser.get(family["url"] + "/runs")
    browser.execute_script("sessionStorage.clear();")
    browser.get(family["url"] + "/runs")
    Select(browser.find_element(By.NAME, "experiment")).select_by_visible_text("tune")
    WebDriverWait(browser, 20).until(lambda d: "experiment=tune" in d.current_url)  # no Search click
    assert "1–4 of 4 runs" in browser.find_element(By.ID, "compare-form").text
    trial = family["ids"]["trial-0"]
    browser.find_element(By.CSS_SELECTOR, f'input[name="runs"][value="{trial}"]').click()
    assert browser.find_element(By.ID, "ticked").text == "1 ticked · clear"
    Select(browser.find_element(By.NAME, "experiment")).select_by_visible_text("other")
    WebDriverWait(browser, 20).until(lambda d: "experiment=other" in d.current_url)
    assert browser.find_element(By.ID, "ticked").text == "1 ticked (1 on other pages) · clear"
    browser.find_element(By.ID, "compare-button").click()  # one ticked: said here, no error page
    assert browser.find_element(By.ID, "ticked").text == "tick two or more runs to compare"
    assert "/runs" in browser.current_url
    browser.find_element(By.CSS_SELECTOR, f'input[name="runs"][value="{family["ids"]["solo"]}"]').click()
    browser.find_element(By.ID, "compare-button").click()
    WebDriverWait(browser, 20).until(lambda d: "/compare" in d.current_url)
    assert "Compare 2 runs" in browser.find_element(By.TAG_NAME, "h1").text
    header = browser.find_element(By.CSS_SELECTOR, "#compare thead").text
    assert "trial-0" in header and "solo" in header
    same = browser.find_elements(By.CSS_SELECTOR, "#compare tr.same")
    changed = browser.find_elements(By.CSS_SELECTOR, "#compare tr.changed")
    assert same and changed and all(row.is_displayed() for row in same)
    browser.find_element(By.ID, "differences-only").click()
    assert not any(row.is_displayed() for row in same) and all(row.is_displayed() for row in changed)
    wait_drawn(browser, "#overlay-chart", "2")
    # both runs have depth 3: hovering each point names its own run, not the first at that x
    browser.execute_script("for (const [id, v] of [['scatter-param', 'depth'], ['scatter-metric', 'loss']]) {"
                           "const s = document.getElementById(id); s.value = v; s.dispatchEvent(new Event('change')); }")
    named = browser.execute_script("""
        const u = document.getElementById('scatter-chart').gitmlPlot, found = [];
        for (let i = 0; i < u.data[0].length; i++) {
          u.setCursor({left: u.valToPos(u.data[0][i], 'x'), top: u.valToPos(u.data[1][i], 'y')});
          found.push(document.querySelector('#scatter-chart .u-legend').textContent);
        }
        return found;""")
    assert len(named) == 2 and any("(trial-0)" in t for t in named) and any("(solo)" in t for t in named), named
    browser.execute_script("const s = document.getElementById('x-axis'); s.value = 'relative';"
                           "s.dispatchEvent(new Event('change'));")
    WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "#overlay-chart .u-legend").text.startswith("seconds"))
    no_script_ran(browser)


odd = test_ui.odd


def test_long_keys_and_values_keep_pages_within_the_window(odd, browser):
    """5,000-character values, 250-character keys: cut or wrapped, and only a wide table scrolls, not the page."""
    width = browser.execute_script("return window.innerWidth")
    for path in ("/runs", "/runs?" + test_ui.q(tags="words", params="long," + "k" * 250 + ",thr"),
                 f"/runs/{odd['odd']}", f"/runs/{odd['odd']}/artifact?" + test_ui.q(path="wide.csv"),
                 "/compare?" + test_ui.q(runs=f"{odd['odd']},{odd['plain']}")):
        browser.get(odd["url"] + path)
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width, path
    no_script_ran(browser)


def test_another_experiment_gets_its_own_columns(family, browser):
    from selenium.webdriver.support.ui import Select

    browser.get(family["url"] + "/runs?" + test_ui.q(experiment="tune", cols=1, params="depth"))
    assert [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#runs th.param")] == ["depth"]
    Select(browser.find_element(By.NAME, "experiment")).select_by_visible_text("other")
    WebDriverWait(browser, 20).until(lambda d: "experiment=other" in d.current_url)
    assert "cols=1" not in browser.current_url
    assert {th.text for th in browser.find_elements(By.CSS_SELECTOR, "#runs th.param")} == {"depth", "lr"}

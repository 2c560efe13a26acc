"""The admin as a person uses it, in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, which .ci/run installs) driven by Selenium, at 1440 x 900. Screenshots of
every list go to $ADMIN_SCREENSHOTS (default: the test's temporary folder)."""

import os
import shutil
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test.utils import override_settings
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from core.models import Order, Product
from tests.conftest import BROWSER_MISSING, INSTALL_BROWSER

pytestmark = pytest.mark.django_db(transaction=True)

WIDTH, HEIGHT = 1440, 900
LISTS = {
    "order": ["ORDER NUMBER", "CUSTOMER", "STATUS", "TOTAL", "CREATED AT"],
    "invoice": ["INVOICE NUMBER", "CUSTOMER", "STATUS", "AMOUNT", "PERIOD START"],
    "subscription": ["CUSTOMER", "PLAN", "STATUS", "MONTHLY AMOUNT", "STARTED AT"],
    "customer": ["CUSTOMER NUMBER", "FIRST NAME", "LAST NAME", "EMAIL", "CREATED AT"],
    "product": ["SKU", "NAME", "PRICE", "STOCK QUANTITY"],
    "orderitem": ["ORDER", "SKU", "QUANTITY", "LINE TOTAL", "CREATED AT"],
    "event": ["EVENT TYPE", "CUSTOMER", "CREATED AT"],
    "tenant": ["NAME", "TIER", "CREATED AT"],
}


@pytest.fixture
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        message = f"{BROWSER_MISSING} (`{INSTALL_BROWSER}`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     f"--window-size={WIDTH},{HEIGHT}"):  # fmt: skip
        options.add_argument(argument)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    yield chrome
    chrome.quit()


@pytest.fixture(scope="session")
def plain_http(request):
    """The live server speaks plain HTTP: no redirect to HTTPS, cookies sent without it. Set
    before the server starts, as the security middleware reads them when it is built."""
    with override_settings(
        SECURE_SSL_REDIRECT=False, SESSION_COOKIE_SECURE=False, CSRF_COOKIE_SECURE=False
    ):
        yield request.getfixturevalue("live_server")


@pytest.fixture
def signed_in(browser, plain_http):
    live_server = plain_http
    get_user_model().objects.create_superuser("admin", "", "a-browser-password-1")
    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("a-browser-password-1")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    shows(browser, "Multi-tenant e-commerce data")
    return lambda path: browser.get(f"{live_server.url}/admin/{path}")


def text(browser) -> str:
    return browser.find_element(By.TAG_NAME, "body").text


def shows(browser, wanted: str) -> None:
    """Wait for the page a click leads to (a click does not wait for it)."""
    WebDriverWait(browser, 10).until(lambda page: wanted in page.page_source)


def test_every_list_shows_what_people_look_for_without_scrolling_sideways(
    browser, signed_in, shop, tmp_path
):
    folder = Path(os.environ.get("ADMIN_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    width = browser.execute_script("return document.documentElement.clientWidth")
    for model, wanted in LISTS.items():
        signed_in(f"core/{model}/")
        WebDriverWait(browser, 10).until(
            lambda page: page.find_elements(By.CSS_SELECTOR, "#result_list thead th")
        )
        headers = {
            " ".join(name.split()).upper(): right
            for name, right in browser.execute_script(
                "return [...document.querySelectorAll('#result_list thead th .text')]"
                ".map(h => [h.textContent, h.closest('th').getBoundingClientRect().right])"
            )
        }
        off_screen = [name for name in wanted if not 0 < headers.get(name, 0) <= width]
        assert not off_screen, (model, headers, text(browser)[:300])
        browser.save_screenshot(str(folder / f"admin-{model}.png"))


def test_a_person_searches_filters_opens_and_deletes(browser, signed_in, shop):
    invoice = shop["invoice"].invoice_number
    signed_in(f"core/invoice/?q={invoice[:6]}")
    assert invoice in text(browser)
    assert "from its start" in text(browser)

    order = shop["order"]
    signed_in(f"core/order/?status__exact={order.status}")
    assert order.order_number in text(browser)
    browser.find_element(By.LINK_TEXT, order.order_number).click()
    shows(browser, shop["orderitem"].sku)  # the order's page, its items inline

    signed_in(f"core/product/{shop['product'].pk}/delete/")
    assert "protected related objects" in text(browser)  # an ordered product stays

    signed_in(f"core/order/{order.pk}/delete/")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    shows(browser, "was deleted successfully")
    assert not Order.objects.filter(pk=order.pk).exists()
    assert Product.objects.filter(pk=shop["product"].pk).exists()


def test_the_pipeline_page_at_a_glance(browser, signed_in, tmp_path):
    """The source, its slots, a capture with its chart and a warehouse with its verdict, at
    1440 x 900 without scrolling sideways; the parts that load later come in by themselves."""
    import io

    from django.core.management import call_command

    from core.simulation.runner import simulate
    from tests.conftest import replicated_shop

    def quiet(*args: str) -> None:
        call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())

    folder = Path(os.environ.get("ADMIN_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    capture, lake = tmp_path / "cdc", tmp_path / "lake"
    with replicated_shop(seed=62):
        quiet("cdc_tail", "--slot", "browser", "--output", str(capture))
        simulate(seed=4, rate=0, count=200)
        quiet("cdc_tail", "--slot", "browser", "--output", str(capture))
        quiet("lakehouse_apply", str(capture), "--warehouse", str(lake))
        quiet("lakehouse_verify", "--warehouse", str(lake))
        signed_in("")
        browser.find_element(By.CSS_SELECTOR, "#pipeline-link a").click()
        shows(browser, "rows (load + changes)")  # the captures part, loaded after the page
        shows(browser, "versions and tombstones")  # and the lakehouse part
        page = text(browser)
        for wanted in ("Source: PostgreSQL", "Replication slots", "browser", str(capture),
                       "same", "against the source"):  # fmt: skip
            assert wanted in page, wanted
        assert browser.find_elements(By.CSS_SELECTOR, "svg.pipeline-chart rect.bar")
        wide, seen = browser.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert wide <= seen, (wide, seen)
        browser.save_screenshot(str(folder / "admin-pipeline.png"))
        browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")
        browser.save_screenshot(str(folder / "admin-pipeline-lower.png"))

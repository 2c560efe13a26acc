"""Every admin page renders with data present, with a bounded number of queries."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import Event, Order, OrderItem, Product
from tests.factories import EventFactory

pytestmark = pytest.mark.django_db

MODELS = ["tenant", "customer", "product", "order", "orderitem", "event", "subscription", "invoice"]


@pytest.fixture
def admin_client(client, db):
    user = get_user_model().objects.create_superuser("admin", "", "secret-password-1")
    client.force_login(user)
    return client


@pytest.mark.parametrize("model", MODELS)
def test_changelist_renders_rows_without_n_plus_one_queries(admin_client, shop, model):
    url = reverse(f"admin:core_{model}_changelist")
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url, secure=True)
    assert response.status_code == 200
    assert str(shop[model].pk) in response.content.decode()
    assert len(queries) <= 12


@pytest.mark.parametrize("model", MODELS)
def test_change_page_renders(admin_client, shop, model):
    response = admin_client.get(
        reverse(f"admin:core_{model}_change", args=[shop[model].pk]), secure=True
    )
    assert response.status_code == 200


@pytest.mark.parametrize("model", MODELS)
def test_add_page_renders(admin_client, db, model):
    response = admin_client.get(reverse(f"admin:core_{model}_add"), secure=True)
    assert response.status_code == 200


def test_order_page_shows_its_items_inline(admin_client, shop):
    response = admin_client.get(
        reverse("admin:core_order_change", args=[shop["order"].pk]), secure=True
    )
    assert shop["orderitem"].sku in response.content.decode()


def test_subscription_page_shows_its_invoices_inline(admin_client, shop):
    response = admin_client.get(
        reverse("admin:core_subscription_change", args=[shop["subscription"].pk]), secure=True
    )
    assert shop["invoice"].invoice_number in response.content.decode()


def test_a_big_list_shows_the_planner_estimate_and_a_small_one_its_exact_count(
    admin_client, shop, monkeypatch
):
    """Above `exact_up_to` rows a list is not counted (the page says "about"); at or below
    it, whatever the planner thinks, the count is exact."""
    from core.admin import LargeTablePaginator

    EventFactory.create_batch(40, customer=shop["customer"])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE core_event")  # as seed_all leaves it
    monkeypatch.setattr(LargeTablePaginator, "exact_up_to", 20)
    url = reverse("admin:core_event_changelist")
    page = admin_client.get(url, secure=True).content.decode()
    estimate = re.search(r"about ([\d,]+)</span> events", page)
    assert estimate, page
    assert 20 < int(estimate.group(1).replace(",", "")) <= 2 * Event.objects.count()
    narrowed = admin_client.get(url, {"event_type__exact": "purchase"}, secure=True)
    assert "1 event (" in narrowed.content.decode()  # the search bar's count, exact
    assert "about" not in narrowed.content.decode()
    monkeypatch.setattr(LargeTablePaginator, "exact_up_to", 100)
    page = admin_client.get(url, secure=True).content.decode()
    assert f"{Event.objects.count()} events" in page and "about" not in page


def test_searching_a_uuid_finds_the_rows_that_reference_it(admin_client, shop):
    url = reverse("admin:core_event_changelist")
    response = admin_client.get(url, {"q": str(shop["order"].pk)}, secure=True)
    assert response.status_code == 200
    assert str(shop["event"].pk) in response.content.decode()


def test_filters_by_tenant_and_status(admin_client, shop, other_tenant_order):
    url = reverse("admin:core_order_changelist")
    response = admin_client.get(
        url, {"tenant__id__exact": shop["tenant"].pk, "status__exact": "pending"}, secure=True
    )
    page = response.content.decode()
    assert shop["order"].order_number in page
    assert other_tenant_order.order_number not in page


@pytest.mark.parametrize(
    ("model", "number"), [("order", "order_number"), ("invoice", "invoice_number")]
)
def test_numbers_match_by_prefix_and_the_page_says_what_search_matches(
    admin_client, shop, other_tenant_order, model, number
):
    full = getattr(shop[model], number)
    url = reverse(f"admin:core_{model}_changelist")
    for prefix in (full[:4], full[:-1], full):
        page = admin_client.get(url, {"q": prefix}, secure=True).content.decode()
        assert full in page, prefix
    page = admin_client.get(url, {"q": "no-such-number"}, secure=True).content.decode()
    assert full not in page
    assert "from its start" in page  # the search box's help


def test_deleting_an_order_takes_its_items_and_purchase_events(admin_client, shop):
    order = shop["order"]
    url = reverse("admin:core_order_delete", args=[order.pk])
    confirm = admin_client.get(url, secure=True)
    assert confirm.status_code == 200
    response = admin_client.post(url, {"post": "yes"}, secure=True)
    assert response.status_code == 302
    assert not Order.objects.filter(pk=order.pk).exists()
    assert not OrderItem.objects.filter(pk=shop["orderitem"].pk).exists()
    assert not Event.objects.filter(pk=shop["event"].pk).exists()
    assert Product.objects.filter(pk=shop["product"].pk).exists()


def test_an_ordered_product_cannot_be_deleted_and_the_page_says_why(admin_client, shop):
    product = shop["product"]
    url = reverse("admin:core_product_delete", args=[product.pk])
    page = admin_client.get(url, secure=True)
    assert page.status_code == 200
    assert "would require deleting the following protected related objects" in page.content.decode()
    response = admin_client.post(url, {"post": "yes"}, secure=True)
    assert response.status_code == 200  # refused, not a server error
    assert Product.objects.filter(pk=product.pk).exists()
    assert OrderItem.objects.filter(pk=shop["orderitem"].pk).exists()

"""Every admin page renders with data present, with a bounded number of queries."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

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

"""What Django's schema language cannot say.

1. Composite foreign keys `(tenant_id, x_id) -> x(tenant_id, id)`: a row can only point at a row
   of its own tenant. Immediate (not deferred) so that bulk loads check them per statement instead
   of queueing millions of checks until commit.
2. A trigger that moves `updated_at` on every UPDATE which does not set it itself.
"""

from django.db import migrations

TENANT_REFERENCES = [
    # (table, column, referenced table)
    ("core_order", "customer_id", "core_customer"),
    ("core_orderitem", "order_id", "core_order"),
    ("core_orderitem", "product_id", "core_product"),
    ("core_event", "customer_id", "core_customer"),
    ("core_event", "product_id", "core_product"),
    ("core_event", "order_id", "core_order"),
    ("core_subscription", "customer_id", "core_customer"),
    ("core_invoice", "subscription_id", "core_subscription"),
    ("core_invoice", "customer_id", "core_customer"),
]

TABLES = [
    "core_tenant",
    "core_customer",
    "core_product",
    "core_order",
    "core_orderitem",
    "core_event",
    "core_subscription",
    "core_invoice",
]


def constraint_name(table: str, column: str) -> str:
    return f"{table.removeprefix('core_')}_{column.removesuffix('_id')}_same_tenant_fk"


TOUCH_FUNCTION = """
CREATE OR REPLACE FUNCTION core_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := greatest(now(), NEW.created_at);
    END IF;
    RETURN NEW;
END
$$;
"""

forward = [TOUCH_FUNCTION]
backward = []
for table, column, target in TENANT_REFERENCES:
    name = constraint_name(table, column)
    forward.append(
        f"ALTER TABLE {table} ADD CONSTRAINT {name} FOREIGN KEY (tenant_id, {column}) "
        f"REFERENCES {target} (tenant_id, id)"
    )
    backward.append(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
for table in TABLES:
    forward.append(
        f"CREATE TRIGGER {table}_touch_updated_at BEFORE UPDATE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION core_touch_updated_at()"
    )
    backward.append(f"DROP TRIGGER {table}_touch_updated_at ON {table}")
backward.append("DROP FUNCTION core_touch_updated_at()")


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]

    operations = [migrations.RunSQL(sql=forward, reverse_sql=backward)]

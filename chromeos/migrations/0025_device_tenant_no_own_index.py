"""The devices table without the tenant foreign key's own index (issue 18): every other index of the table starts
with the tenant and serves a look-up by tenant alone, so this one only cost a btree insert per device written.

Only the index goes: Django's AlterField would also drop and re-add the foreign key, which validates every row of
the table under a lock (seconds at a million devices) for a constraint that does not change.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEX = "chromeos_chromeosdevice_tenant_id_d8b07c82"  # Django's name for it, the same in every database


class Migration(migrations.Migration):
    dependencies = [
        ("chromeos", "0024_device_search_fold_ascii"),
        ("mdm", "0005_tenant_time_zone"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="chromeosdevice",
                    name="tenant",
                    field=models.ForeignKey(
                        db_index=False,
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="mdm.tenant",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{INDEX}"',
                    reverse_sql=f'CREATE INDEX IF NOT EXISTS "{INDEX}" ON "chromeos_chromeosdevice" ("tenant_id")',
                ),
            ],
        ),
    ]

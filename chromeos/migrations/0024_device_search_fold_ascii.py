"""The device search text without PostgreSQL's ``translate`` for ASCII text (``mdm.display.search_fold``), and a
16 MB pending list for its trigram index: less CPU for every device a sync writes (issue 18). The values are the
same as before for every text."""

import django.contrib.postgres.indexes
import django.db.models.functions.text
import django.db.models.lookups
from django.db import migrations, models

import mdm.display

# The searched columns, lower-cased (as in migration 0015): one expression, used three times below.
LOWERED = django.db.models.functions.text.Lower(
    django.db.models.functions.text.Concat(
        "serial_number",
        models.Value("\n"),
        "annotated_asset_id",
        models.Value("\n"),
        "annotated_user",
        models.Value("\n"),
        "mac_address",
        models.Value("\n"),
        "ethernet_mac_address",
        models.Value("\n"),
        "model",
        models.Value("\n"),
        "recent_user",
        output_field=models.TextField(),
    )
)


class Migration(migrations.Migration):
    dependencies = [
        ("chromeos", "0023_sync_stage_unlogged"),
        ("mdm", "0005_tenant_time_zone"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="chromeosdevice",
            name="cros_dev_search_trgm",
        ),
        # Django cannot alter a generated column: it is dropped and added again (PostgreSQL rewrites the table,
        # under an ACCESS EXCLUSIVE lock: ~1 minute per million devices on a small machine).
        migrations.RemoveField(
            model_name="chromeosdevice",
            name="search_text",
        ),
        migrations.AddField(
            model_name="chromeosdevice",
            name="search_text",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.Case(
                    models.When(
                        django.db.models.lookups.Exact(
                            models.Func(LOWERED, function="OCTET_LENGTH"),
                            django.db.models.functions.text.Length(LOWERED),
                        ),
                        then=LOWERED,
                    ),
                    default=mdm.display.FoldAccents(
                        mdm.display.StripInvisible(LOWERED, output_field=models.TextField()),
                        output_field=models.TextField(),
                    ),
                    output_field=models.TextField(),
                ),
                output_field=models.TextField(),
            ),
        ),
        # Kept in the row (migration 0010), as the column it replaces.
        migrations.RunSQL(
            "ALTER TABLE chromeos_chromeosdevice ALTER COLUMN search_text SET STORAGE PLAIN",
            migrations.RunSQL.noop,
        ),
        migrations.AddIndex(
            model_name="chromeosdevice",
            index=django.contrib.postgres.indexes.GinIndex(
                models.F("tenant"),
                django.contrib.postgres.indexes.OpClass("search_text", name="gin_trgm_ops"),
                condition=models.Q(("removed_at__isnull", True)),
                gin_pending_list_limit=16384,
                name="cros_dev_search_trgm",
            ),
        ),
    ]

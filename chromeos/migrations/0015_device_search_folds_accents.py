"""The device search folds accents (« zoe » finds « Zoé », mdm/display.py FoldAccents).

A generated column cannot be altered in place: its index, then the column, are dropped and built again, and
the column is stored PLAIN again, as 0010 made it.
"""

import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.db import migrations, models

import mdm.display


class Migration(migrations.Migration):
    dependencies = [
        ("chromeos", "0014_removals_held"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="chromeosdevice",
            name="cros_dev_search_trgm",
        ),
        migrations.RemoveField(
            model_name="chromeosdevice",
            name="search_text",
        ),
        migrations.AddField(
            model_name="chromeosdevice",
            name="search_text",
            field=models.GeneratedField(
                db_persist=True,
                expression=mdm.display.FoldAccents(
                    mdm.display.StripInvisible(
                        django.db.models.functions.text.Lower(
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
                        ),
                        output_field=models.TextField(),
                    ),
                    output_field=models.TextField(),
                ),
                output_field=models.TextField(),
            ),
        ),
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
                name="cros_dev_search_trgm",
            ),
        ),
    ]

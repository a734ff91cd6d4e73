"""Keep device rows narrow: Google's payload (2 kB and more of JSON) goes to TOAST, not the row.

Once a row crosses PostgreSQL's 2 kB toasting threshold, its values are compressed and, while the row is still
above ``toast_tuple_target``, moved out of line, largest first. With the default target (about 2 kB) a 2.5 kB
payload stays in the row, compressed: every list page, filter and count that reads rows reads the payload's
bytes too. At 1 kB the payload leaves the row, which keeps only the columns the list reads (4 times fewer
pages at 100,000 devices, see benchmarks/devices.py). ``search_text`` is stored PLAIN so that the toaster never
compresses it either: the search filter reads it on every candidate row. Applies to rows written from now on
(each sync rewrites the devices that changed).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("chromeos", "0009_device_jobs_order")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE chromeos_chromeosdevice SET (toast_tuple_target = 1024)",
            "ALTER TABLE chromeos_chromeosdevice RESET (toast_tuple_target)",
        ),
        migrations.RunSQL(
            "ALTER TABLE chromeos_chromeosdevice ALTER COLUMN search_text SET STORAGE PLAIN",
            "ALTER TABLE chromeos_chromeosdevice ALTER COLUMN search_text SET STORAGE EXTENDED",
        ),
    ]

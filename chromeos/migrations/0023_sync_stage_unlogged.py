"""The sync's staging tables, shared by every run (rows keyed by ``run_id``): UNLOGGED, created once.

Until now each run created two TEMP tables (plus an index and an ANALYZE) and dropped them: their rows were not
WAL-logged, but their catalog entries were (pg_class, pg_attribute, pg_depend, pg_type, pg_index, pg_statistic),
~50 KB of WAL per sync whatever the tenant's size — the whole WAL of a small tenant's no-change sync (issue 18).
UNLOGGED tables write no WAL for their rows either; PostgreSQL empties them after a crash, which only loses the
staged rows of runs that died with it. Raw SQL, not models: nothing but the sync reads them, and a removal of an
integration needs not know them (rows of runs that are gone are deleted by ``staging.discard_stale_stages``).
The payload is lz4-compressed where the server has lz4 (as the devices table's, migration 0008).
"""

from django.db import migrations

CREATE = """
CREATE UNLOGGED TABLE chromeos_syncstage (
    run_id bigint NOT NULL,
    seq integer NOT NULL,
    device_id text NOT NULL,
    etag text NOT NULL,
    fresh boolean NOT NULL DEFAULT false
);
CREATE INDEX chromeos_syncstage_run_device ON chromeos_syncstage (run_id, device_id);
CREATE UNLOGGED TABLE chromeos_syncbatch (
    run_id bigint NOT NULL,
    seq integer NOT NULL,
    device_id text NOT NULL,
    etag text NOT NULL,
    fresh boolean NOT NULL DEFAULT false,
    serial_number text,
    status text,
    model text,
    os_version text,
    platform_version text,
    org_unit_path text,
    org_unit_id text,
    annotated_user text,
    annotated_location text,
    annotated_asset_id text,
    notes text,
    mac_address text,
    ethernet_mac_address text,
    boot_mode text,
    recent_user text,
    last_sync timestamptz,
    last_enrollment_time timestamptz,
    auto_update_expiration date,
    payload jsonb
);
CREATE INDEX chromeos_syncbatch_run_device ON chromeos_syncbatch (run_id, device_id);
DO $$
BEGIN
    ALTER TABLE chromeos_syncbatch ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 not available: staged payloads stay pglz-compressed';
END $$;
"""
DROP = "DROP TABLE IF EXISTS chromeos_syncbatch; DROP TABLE IF EXISTS chromeos_syncstage;"


class Migration(migrations.Migration):
    dependencies = [("chromeos", "0022_policyassignment_request_marker")]

    operations = [migrations.RunSQL(CREATE, DROP)]

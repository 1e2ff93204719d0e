/*
 * Row images of the change log: the tenant's logged text form and the
 * decoder of images into rows (src/capture_json.c, src/rollback_image.c).
 */
CREATE FUNCTION @extschema@.tenant_text(anyelement)
RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'bkperf_tenant_text';

COMMENT ON FUNCTION @extschema@.tenant_text(anyelement) IS
'The text capture logs as tenant_id for a tenant column value: its text output under fixed settings (ISO dates, UTC, shortest-exact floats), independent of the session''s settings.';

CREATE FUNCTION @extschema@.image_record(image jsonb, proto anyelement)
RETURNS anyelement
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'bkperf_image_record';

COMMENT ON FUNCTION @extschema@.image_record(jsonb, anyelement) IS
'A logged row image (old_data or new_data) decoded into the row type of proto (NULL::table_name) by its current column names, as a rollback restores it; keys missing from the image give NULL.';

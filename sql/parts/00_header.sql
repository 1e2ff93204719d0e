/*
 * bkperf install script, concatenated by the Makefile from the files in sql/parts
 * (one object family per file).  Edit the parts, never the built script.
 */
\echo Use "CREATE EXTENSION bkperf" to load this file. \quit

-- Nothing here is for PUBLIC unless granted on purpose below.
REVOKE ALL ON SCHEMA @extschema@ FROM PUBLIC;
GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;

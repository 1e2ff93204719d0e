-- bkperf 1.0 -> 1.1.  Every catalog change made after 1.0 shipped goes here,
-- mirrored in sql/parts/ (which build the fresh 1.1 install script).
\echo Use "ALTER EXTENSION bkperf UPDATE TO '1.1'" to load this file. \quit

# bkperf: PGXS build.  The version comes from bkperf.control only.
EXTENSION = bkperf
EXTVERSION = $(shell sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" $(EXTENSION).control)

MODULE_big = bkperf
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

# The current version's install script is concatenated from sql/parts/, one
# object family per file.  Shipped versions are frozen: sql/bkperf--1.0.sql is
# the 1.0 script exactly as released, and each later change is an upgrade
# script sql/bkperf--X--Y.sql (a test proves old + update == fresh install).
SQL_PARTS = $(sort $(wildcard sql/parts/*.sql))
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))

PG_CPPFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Isrc

# Regression, isolation and TAP tests: one file per feature, picked up by name.
REGRESS = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test
ISOLATION = $(patsubst test/specs/%.spec,%,$(sort $(wildcard test/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test
PROVE_TESTS = test/t/*.pl
EXTRA_CLEAN = results output_iso tmp_check test/results

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

sql/$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PARTS)
	cat $^ > $@

# TAP tests start their own clusters, so they cannot run as root; test/check
# runs this target as an unprivileged user.
.PHONY: tapcheck
tapcheck:
	$(prove_installcheck)

# segtier: PGXS build.  `make test` and `make demo` also work before
# PostgreSQL is installed: they run test/harness.sh, which installs what is
# missing and re-enters this Makefile.
EXTENSION = segtier
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" segtier.control)

MODULE_big = segtier
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql
# earlier releases' install scripts and the upgrade scripts between them
DATA = $(filter-out $(DATA_built),$(wildcard sql/$(EXTENSION)--*.sql))

TESTS = $(sort $(wildcard test/sql/*.sql))
REGRESS = $(patsubst test/sql/%.sql,%,$(TESTS))
REGRESS_OPTS = --inputdir=test --load-extension=$(EXTENSION)

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare $(SEGTIER_CFLAGS)
SHLIB_LINK = -lm

EXTRA_CLEAN = results regression.diffs regression.out

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
# every source file includes the one header (PGXS tracks no dependencies);
# the JIT's bitcode is compiled from them too
$(OBJS) $(OBJS:.o=.bc): src/segtier.h
endif

# The install script is written once, in sql/segtier.sql.
sql/$(EXTENSION)--$(EXTVERSION).sql: sql/$(EXTENSION).sql segtier.control
	cp $< $@

.PHONY: test demo
test:
	bash test/harness.sh test
demo:
	bash test/harness.sh demo

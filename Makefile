# flagcast — top-level build.
#
#   make            build bin/flagcast-publisher, bin/flagcast-gateway, bin/flagcast
#   make test       the whole suite: unit, integration, sanitizer run, short
#                   fuzz, compose under podman (FLAGCAST_NO_COMPOSE=1 skips that)
#   make compose-test  compose.yaml for real under podman (tests/compose/run.sh)
#   make fresh-check   the README's two commands in a fresh Debian 12 container
#   make run        private redis-server + publisher + gateway on localhost
#   make asan       ASan+UBSan build, whole suite (part of make test)
#   make fuzz       build the libFuzzer targets (clang) and run each briefly
#   make bench      load benchmark, results into docs/PERFORMANCE.md
#   make install PREFIX=/usr/local
#
# O=DIR puts every build output under DIR (objects in DIR/build, programs in
# DIR/bin), so that several builds (plain, sanitizer) never share objects.

O       ?= .
BUILD   := $(O)/build
BIN     := $(O)/bin
PREFIX  ?= /usr/local
VERSION := 0.1.0

CC      ?= cc
PKGS    := hiredis libevent libevent_pthreads libwebsockets msgpack jansson libjwt zlib
CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
OPT     ?= -O2 -g
ifeq ($(SAN),1)
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
endif
CPPFLAGS += -I. -I$(BUILD)/gen -DFLAGCAST_VERSION='"$(VERSION)"'
# pkg-config is asked lazily, once, the first time a recipe needs the answer:
# on a fresh machine scripts/deps.sh (the deps target, first prerequisite of
# every build) installs the packages after this file is read, so a lookup made
# while parsing (:=) would find nothing. lazy-once caches the first expansion.
lazy = $(eval $(1) := $$(shell $(2)))$($(1))
PKG_CFLAGS  = $(call lazy,PKG_CFLAGS,pkg-config --cflags $(PKGS))
PKG_LIBS    = $(call lazy,PKG_LIBS,pkg-config --libs $(PKGS))
CHECK_LIBS  = $(call lazy,CHECK_LIBS,pkg-config --libs check)
CFLAGS  += $(CSTD) $(WARN) $(OPT) -pthread $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -lm
SAN_LDFLAGS := -fsanitize=address,undefined
LDFLAGS += $(if $(filter 1,$(SAN)),$(SAN_LDFLAGS))

# ---- sources ---------------------------------------------------------------
LIB_SRC  := $(wildcard proto/*.c) $(wildcard common/*.c)
PUB_SRC  := $(filter-out publisher/cli.c,$(wildcard publisher/*.c))
CLI_SRC  := publisher/cli.c
GW_SRC   := $(wildcard gateway/*.c gateway/*/*.c)
UNIT_SRC := $(wildcard tests/unit/*/test_*.c)
IT_SRC   := $(wildcard tests/integration/test_*.c)
IT_LIB   := $(filter-out $(IT_SRC),$(wildcard tests/integration/*.c))
BENCH_SRC:= $(wildcard bench/*.c)

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

LIB      := $(BUILD)/libflagcast.a
PROGS    := $(BIN)/flagcast-publisher $(if $(wildcard $(CLI_SRC)),$(BIN)/flagcast) \
            $(if $(GW_SRC),$(BIN)/flagcast-gateway)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRC))
IT_BIN   := $(patsubst tests/integration/%.c,$(BUILD)/tests/integration/%,$(IT_SRC))
BENCH_BIN:= $(patsubst bench/%.c,$(BIN)/bench-%,$(BENCH_SRC))

# Keep intermediate objects (harness.o) so tests do not relink every run.
.SECONDARY:

.PHONY: all deps compose-deps test check unit integration asan fuzz fuzz-build chaos run bench install clean \
        compose-test fresh-check
.DEFAULT_GOAL := all

all: deps $(PROGS)

deps:
	@sh scripts/deps.sh

# podman, docker-compose, debootstrap: only for compose-test and fresh-check
compose-deps: deps
	@[ "$${FLAGCAST_NO_COMPOSE:-}" = 1 ] || FLAGCAST_COMPOSE_DEPS=1 sh scripts/deps.sh

# ---- generated: Lua scripts embedded as C strings --------------------------
$(BUILD)/gen/%_lua.h: publisher/%.lua scripts/embed.sh
	@mkdir -p $(dir $@)
	sh scripts/embed.sh $< $(subst -,_,$*)_lua > $@

$(call obj,$(PUB_SRC)): $(patsubst publisher/%.lua,$(BUILD)/gen/%_lua.h,$(wildcard publisher/*.lua))

# ---- objects ----------------------------------------------------------------
$(BUILD)/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(call obj,$(LIB_SRC))
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BIN)/flagcast-publisher: $(call obj,$(PUB_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BIN)/flagcast: $(call obj,$(CLI_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BIN)/flagcast-gateway: $(call obj,$(GW_SRC)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# A unit test may #include the .c it tests (to reach statics); it links the
# library and, for gateway tests, the gateway's pure modules: gateway/*.c but
# main.c and the glue that holds process state (ident.c, shutdown.c); the
# lws/ and redis/ folders are each side's event-loop glue.
GW_GLUE := gateway/main.c gateway/ident.c gateway/shutdown.c
GW_PURE := $(filter-out $(GW_GLUE),$(wildcard gateway/*.c))
$(BUILD)/tests/unit/%: tests/unit/%.c $(LIB) $(call obj,$(GW_PURE))
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $< $(if $(findstring /gateway/,$@),$(call obj,$(GW_PURE))) $(LIB) -o $@ $(LDLIBS) $(CHECK_LIBS)

# test_lua EVALs the real publish.lua with store.c's argument vector
# (it #includes publisher/store.c): rebuild it when either changes.
$(BUILD)/tests/unit/proto/test_lua: publisher/store.c publisher/store.h $(BUILD)/gen/publish_lua.h

$(BUILD)/tests/integration/%: tests/integration/%.c $(call obj,$(IT_LIB)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(CHECK_LIBS)

$(BIN)/bench-%: bench/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# ---- tests ------------------------------------------------------------------
# CK_FORK=yes: every test runs in its own child; a crash fails that test only.
unit: all $(UNIT_BIN)
	@sh scripts/run-tests.sh unit $(UNIT_BIN)

integration: all $(IT_BIN) $(BENCH_BIN)
	@FLAGCAST_BIN=$(abspath $(BIN)) sh scripts/run-tests.sh integration $(IT_BIN) $(wildcard tests/integration/*.sh)

check: unit integration

asan:
	@$(MAKE) --no-print-directory O=build/asan SAN=1 check

fuzz-build: deps
	@$(MAKE) --no-print-directory -f tests/fuzz/fuzz.mk

fuzz: fuzz-build
	@sh scripts/run-fuzz.sh $(or $(FUZZ_SECONDS),60)

# The model-based delivery checker (tests/chaos): SECONDS long, seed SEED
# (random and printed when unset), FAULTS=a,b,c to choose the faults.
chaos: all
	@FLAGCAST_BIN=$(abspath $(BIN)) SECONDS=$(or $(SECONDS),60) $(if $(SEED),SEED=$(SEED)) \
		$(if $(FAULTS),FAULTS=$(FAULTS)) node tests/chaos/chaos.js

test: check
	@$(MAKE) --no-print-directory asan
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(or $(FUZZ_SECONDS),15)
	@$(MAKE) --no-print-directory compose-test
	@echo "make test: all suites passed"

# compose.yaml under podman: images built from this checkout, scale, drain,
# redis restart (tests/compose/run.sh). FLAGCAST_NO_COMPOSE=1 skips it.
compose-test: compose-deps
	@sh tests/compose/run.sh

# make test and a make run smoke in a fresh Debian 12 container holding a
# clean clone of HEAD (scripts/fresh-check.sh).
fresh-check: compose-deps
	@sh scripts/fresh-check.sh

run: all
	@BIN=$(abspath $(BIN)) sh scripts/run.sh

bench: all $(BENCH_BIN)
	@FLAGCAST_BIN=$(abspath $(BIN)) sh bench/run.sh $(ARGS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# flagcast — libFuzzer targets.
#
#   make -f tests/fuzz/fuzz.mk [O=DIR]     (the top Makefile's fuzz-build)
#
# Builds every tests/fuzz/fuzz_*.c into $(O)/build/fuzz/<name> with clang and
# -fsanitize=fuzzer,address,undefined. The code under test — proto/*.c,
# common/*.c and the gateway's pure modules (gateway/*.c but main.c,
# ident.c and shutdown.c; lws/ and redis/ are event-loop glue) — is compiled with the same flags into one archive, so a target
# links only the objects it uses. A new fuzz_*.c is picked up by itself.
# scripts/run-fuzz.sh runs what this builds.

O          ?= .
FUZZ_OUT   := $(O)/build/fuzz
FUZZ_CC    ?= clang
PKGS       := hiredis libevent libevent_pthreads libwebsockets msgpack jansson libjwt zlib

SAN        := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -pthread \
               -Wall -Wextra -Wno-unused-parameter $(SAN) \
               -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_LIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm

GW_ALL     := $(wildcard gateway/*.c)
GW_PURE    := $(filter-out gateway/main.c gateway/ident.c gateway/shutdown.c,$(GW_ALL))
DEPS_SRC   := $(wildcard proto/*.c) $(wildcard common/*.c) $(GW_PURE)
DEPS_OBJ   := $(patsubst %.c,$(FUZZ_OUT)/obj/%.o,$(DEPS_SRC))
DEPS_LIB   := $(FUZZ_OUT)/libfuzzdeps.a

TARGET_SRC := $(wildcard tests/fuzz/fuzz_*.c)
TARGETS    := $(patsubst tests/fuzz/%.c,$(FUZZ_OUT)/%,$(TARGET_SRC))

.PHONY: all
all: $(TARGETS)

# The code under test: coverage instrumentation without libFuzzer's main.
$(FUZZ_OUT)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(DEPS_LIB): $(DEPS_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

$(FUZZ_OUT)/fuzz_%: tests/fuzz/fuzz_%.c $(DEPS_LIB)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP -MF $@.d $< $(DEPS_LIB) \
		-o $@ $(FUZZ_LIBS)

-include $(DEPS_OBJ:.o=.d) $(TARGETS:=.d)

# tapgate - plain GNU make. `make help` lists the targets; `V=1` shows commands.
#
# Each module (fastpath/, store/, config/) builds into a static library; the
# programs (gateway/, tools/) and tests link what they use. Every dependency
# comes through pkg-config; tools/install-deps.sh installs missing Debian
# packages first (and says what it installs).

.DEFAULT_GOAL := all
.SUFFIXES:
# Keep object files of tests and benches between runs.
.SECONDARY:

V ?= 0
Q := $(if $(filter 1,$(V)),,@)
say = $(if $(filter 1,$(V)),,@printf '  %-7s %s\n' $(1) $(2);)

# make check builds a second tree under AddressSanitizer + UBSan.
SAN ?= 0
BUILD ?= $(if $(filter 1,$(SAN)),build-san,build)
FUZZ_SECONDS ?= 60

NODEPS_GOALS := clean help
ifeq ($(filter-out $(NODEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
else
DEPS_STATUS := $(shell sh tools/install-deps.sh >&2; echo $$?)
ifneq ($(DEPS_STATUS),0)
$(error tools/install-deps.sh failed: see above)
endif
endif

# Debian's libcsv-dev ships no .pc file: tools/pkgconfig/libcsv.pc describes it.
# (GNU make 4.3 does not pass exported variables to $(shell): set it per call.)
PKG_CONFIG := PKG_CONFIG_PATH=$(CURDIR)/tools/pkgconfig$(if $(PKG_CONFIG_PATH),:$(PKG_CONFIG_PATH)) pkg-config
PKGS := liburing lmdb libxxhash libsodium libcrypto libmicrohttpd inih libcsv libxml-2.0
TEST_PKGS := cmocka

CC ?= cc
CFLAGS_BASE := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
	-Wstrict-prototypes -Wmissing-prototypes -fno-strict-aliasing -D_GNU_SOURCE -MMD -MP \
	-I. $(shell $(PKG_CONFIG) --cflags $(PKGS))
ifeq ($(SAN),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -DTG_DEBUG_HOT
LDFLAGS_SAN := -fsanitize=address,undefined
endif
CFLAGS ?=
CFLAGS_ALL := $(CFLAGS_BASE) $(CFLAGS)
LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) libdpdk) -lpthread
# DPDK's own flags (-include rte_config.h, -march) only for the files that use it.
DPDK_CFLAGS := $(shell $(PKG_CONFIG) --cflags libdpdk)
DPDK_SRC := fastpath/dpdk.c bench/dpdk_source.c
TEST_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(TEST_PKGS))
TEST_LIBS := $(shell $(PKG_CONFIG) --libs $(TEST_PKGS))

FASTPATH_SRC := $(wildcard fastpath/*.c)
PROTO_SRC := $(wildcard proto/*.c)
STORE_SRC := $(wildcard store/*.c)
CONFIG_SRC := $(wildcard config/*.c)
PROC_SRC := $(wildcard proc/*.c)
GATEWAY_SRC := $(wildcard gateway/*.c)
FARE_SRC := $(wildcard fare/*.c)
SETTLE_SRC := $(wildcard settle/*.c)

lib_objs = $(patsubst %.c,$(BUILD)/%.o,$(1))

FASTPATH_LIB := $(BUILD)/libfastpath.a
PROTO_LIB := $(BUILD)/libproto.a
STORE_LIB := $(BUILD)/libstore.a
CONFIG_LIB := $(BUILD)/libtgconfig.a
PROC_LIB := $(BUILD)/libproc.a
FARE_LIB := $(BUILD)/libfare.a
SETTLE_LIB := $(BUILD)/libsettle.a
MODULE_LIBS := $(SETTLE_LIB) $(FARE_LIB) $(FASTPATH_LIB) $(PROTO_LIB) $(STORE_LIB) $(CONFIG_LIB) $(PROC_LIB)

BIN := $(BUILD)/bin
PROGRAMS := $(BIN)/tapgate $(BIN)/tapgen $(BIN)/tapdump $(BIN)/tapfare $(BIN)/tapsettle
BENCH_PROGRAMS := $(patsubst bench/%.c,$(BIN)/%,$(wildcard bench/*.c))
UNIT_TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))
FUZZERS := $(patsubst tests/fuzz_%.c,$(BUILD)/fuzz/fuzz_%,$(wildcard tests/fuzz_*.c))

.PHONY: all demo run test check bench fuzz soak clean help dev-keys

all: $(PROGRAMS) $(BENCH_PROGRAMS) $(UNIT_TESTS) dev-keys

# Git keeps no permission bits but the executable one, so a fresh clone's
# development keys are 0644, and the gateway refuses a key file that group
# or others can read. Set their mode (and say so when it changes).
DEV_KEYS := config/dev-validators.keys config/dev-qr-platform.key
dev-keys:
	$(Q)for k in $(DEV_KEYS); do \
		if [ "$$(stat -c %a $$k)" != 600 ]; then chmod 600 $$k && echo "  CHMOD   600 $$k (development key: git does not keep modes)"; fi; \
	done

help:
	@echo "tapgate targets:"
	@echo "  all     build the gateway (tapgate), tools (tapgen, tapdump), benches and tests"
	@echo "  demo    start the gateway on 127.0.0.1, run a validator fleet, print what was stored"
	@echo "  run     run the gateway in the foreground with config/tapgate.conf"
	@echo "  test    unit tests and integration tests against the real gateway (< 10 min)"
	@echo "  check   the same tests again under AddressSanitizer + UBSan (build-san/)"
	@echo "  bench   throughput and latency report, gateway vs the raw LMDB bound"
	@echo "  fuzz    libFuzzer on the frame parser and the feed loader, FUZZ_SECONDS each (default 60)"
	@echo "  clean   remove build/, build-san/ and var/"
	@echo "Variables: V=1 (show commands), SAN=1 (sanitizers), BUILD=dir, FUZZ_SECONDS=n"

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS_ALL) -c -o $@ $<

$(patsubst %.c,$(BUILD)/%.o,$(DPDK_SRC)): $(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS_ALL) $(DPDK_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(CFLAGS_ALL) $(TEST_CFLAGS) -c -o $@ $<

$(FASTPATH_LIB): $(call lib_objs,$(FASTPATH_SRC))
$(PROTO_LIB): $(call lib_objs,$(PROTO_SRC))
$(STORE_LIB): $(call lib_objs,$(STORE_SRC))
$(CONFIG_LIB): $(call lib_objs,$(CONFIG_SRC))
$(PROC_LIB): $(call lib_objs,$(PROC_SRC))
$(FARE_LIB): $(call lib_objs,$(FARE_SRC))
$(SETTLE_LIB): $(call lib_objs,$(SETTLE_SRC))
$(MODULE_LIBS):
	@mkdir -p $(dir $@)
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN)/tapgate: $(call lib_objs,$(GATEWAY_SRC)) $(MODULE_LIBS)
$(BIN)/tapgen: $(BUILD)/tools/tapgen.o $(MODULE_LIBS)
$(BIN)/tapdump: $(BUILD)/tools/tapdump.o $(MODULE_LIBS)
$(BIN)/tapfare: $(BUILD)/tools/tapfare.o $(MODULE_LIBS)
$(BIN)/tapsettle: $(BUILD)/tools/tapsettle.o $(MODULE_LIBS)
$(BENCH_PROGRAMS): $(BIN)/%: $(BUILD)/bench/%.o $(MODULE_LIBS)
$(PROGRAMS) $(BENCH_PROGRAMS):
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_SAN) -o $@ $(filter %.o,$^) $(MODULE_LIBS) $(LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(MODULE_LIBS)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_SAN) -o $@ $< $(MODULE_LIBS) $(LIBS) $(TEST_LIBS)

demo: $(PROGRAMS) dev-keys
	$(Q)BUILD=$(BUILD) sh tools/demo.sh

run: $(PROGRAMS) dev-keys
	$(Q)mkdir -p var
	$(BIN)/tapgate -c config/tapgate.conf

test: all
	$(Q)BUILD=$(BUILD) sh tests/run.sh

check:
	$(Q)$(MAKE) --no-print-directory SAN=1 test

bench: all
	$(Q)BUILD=$(BUILD) sh bench/run.sh

# The fuzzer is built with clang's libFuzzer, separately from the main tree.
FUZZ_CFLAGS := -std=gnu11 -O1 -g -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. \
	$(shell $(PKG_CONFIG) --cflags $(PKGS))
$(BUILD)/fuzz/fuzz_%: tests/fuzz_%.c $(filter-out $(DPDK_SRC),$(FASTPATH_SRC)) $(PROTO_SRC) $(STORE_SRC) $(PROC_SRC) $(FARE_SRC)
	@mkdir -p $(dir $@)
	$(call say,FUZZ,$@)
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $^ $(LIBS)

fuzz: $(FUZZERS)
	$(Q)BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz.sh

clean:
	rm -rf build build-san var

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# tapgate - plain GNU make. `make help` lists the targets; `V=1` shows commands.
#
# Each module (proto/, fastpath/, store/, ...) builds into a static library;
# the programs (gateway/, tools/), tests and benches link what they use: the
# module graph below says what that is. Every dependency
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

# Dependencies: the README's targets (demo, test, check, bench, fuzz) install
# the Debian packages that are missing, `make deb` also the packaging tools;
# every other goal (`make`, `make install`) only checks, and names what is
# missing: packagers and build machines do not let a build run apt-get.
NODEPS_GOALS := clean help print-modules check-modules
INSTALL_DEPS_GOALS := demo test check bench fuzz
PACKAGING_GOALS := deb
GOALS := $(or $(MAKECMDGOALS),all)
DEPS_MODE := $(if $(filter $(PACKAGING_GOALS),$(GOALS)),--packaging,$(if $(filter $(INSTALL_DEPS_GOALS),$(GOALS)),,--check))
ifneq ($(filter-out $(NODEPS_GOALS),$(GOALS)),)
DEPS_STATUS := $(shell sh tools/install-deps.sh $(DEPS_MODE) >&2; echo $$?)
ifneq ($(DEPS_STATUS),0)
$(error tools/install-deps.sh $(DEPS_MODE) failed: see above)
endif
endif

# Debian's libcsv-dev ships no .pc file: tools/pkgconfig/libcsv.pc describes it.
# (GNU make 4.3 does not pass exported variables to $(shell): set it per call.)
PKG_CONFIG := PKG_CONFIG_PATH=$(CURDIR)/tools/pkgconfig$(if $(PKG_CONFIG_PATH),:$(PKG_CONFIG_PATH)) pkg-config
PKGS := liburing lmdb libxxhash libsodium libcrypto libmicrohttpd inih libcsv libxml-2.0 libsystemd
TEST_PKGS := cmocka

CC ?= cc
CFLAGS_BASE := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
	-Wstrict-prototypes -Wmissing-prototypes -fno-strict-aliasing -D_GNU_SOURCE -MMD -MP \
	-I. $(shell $(PKG_CONFIG) --cflags $(PKGS))
ifeq ($(SAN),1)
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -DTG_DEBUG_HOT
LDFLAGS_SAN := -fsanitize=address,undefined
endif
# The caller's LDFLAGS too (dpkg-buildflags: relro, bindnow), on every link.
LDFLAGS_SAN += $(LDFLAGS)
CFLAGS ?=
CFLAGS_ALL := $(CFLAGS_BASE) $(CPPFLAGS) $(CFLAGS)
LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) libdpdk) -lpthread
# DPDK's own flags (-include rte_config.h, -march) only for the files that use it.
DPDK_CFLAGS := $(shell $(PKG_CONFIG) --cflags libdpdk)
DPDK_SRC := fastpath/dpdk.c bench/dpdk_source.c
TEST_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(TEST_PKGS))
TEST_LIBS := $(shell $(PKG_CONFIG) --libs $(TEST_PKGS))

# The module graph. Each module is a folder with one public header (its
# door: PUBLIC_<m>, by default <m>/<m>.h) and, if it has .c files, a static
# library. DEPS_<m> lists the modules whose headers its files include; a
# module depends only on modules before it in MODULES (downwards), and
# `make check-modules` (run by `make test`) fails on an include of a module
# not declared, of a module above, or of another module's internal header.
#   base                   assertions (header only)
#   proc config store      process plumbing, the settings table, the gateway's LMDB store
#   proto deny             the wire codec (frames, acks, MACs, key files); the deny list's read side
#   fastpath fare          the online path (ingress, dedup, ring, writer); the fare engine
#   settle                 settlement: rounds, batches, outbox files, answers, reconciliation
# Programs sit above every module: gateway/ (tapgate) and tools/ declare
# what their files include too; each program links only the libraries its
# declared modules need (with what those need, in this order).
MODULES := base proc config store proto deny fastpath fare settle
PROGRAM_DIRS := gateway tools
DEPS_base :=
DEPS_proc := base
DEPS_config := base
DEPS_store := base
DEPS_proto := store proc base
DEPS_deny := store base
DEPS_fastpath := proto store proc base
DEPS_fare := proto store base
DEPS_settle := fare deny proto store base
DEPS_gateway := fastpath deny config proto store proc base
DEPS_tools := settle fare proto store config proc base
PUBLIC_base := base/assert.h
# What each program, test and bench links (its modules; their dependencies follow).
LINK_tapgate := fastpath deny config
LINK_tapgen := proto proc
LINK_tapdump := proto store proc
LINK_tapfare := fare config proc
LINK_tapsettle := settle config proc
LINK_test_config := config
LINK_test_dedup := fastpath
LINK_test_fare := fare
LINK_test_proto := fastpath
LINK_test_store := store
LINK_test_deny := deny
LINK_dpdk_source := fastpath
LINK_ed25519_bound :=
LINK_fare_day := settle
LINK_feed_load := fare
LINK_lmdb_bound := proto
LINK_rebuild_bench := fastpath

# The libraries in link order: a library before those it needs.
LIB_ORDER := settle fare fastpath deny proto store config proc
lib_file = $(BUILD)/lib$(if $(filter config,$(1)),tgconfig,$(1)).a
deps_step = $(sort $(1) $(foreach m,$(1),$(DEPS_$(m))))
deps_closure = $(call deps_step,$(call deps_step,$(call deps_step,$(call deps_step,$(call deps_step,$(1))))))
libs_for = $(foreach m,$(LIB_ORDER),$(if $(filter $(m),$(call deps_closure,$(1))),$(call lib_file,$(m))))
MODULE_LIBS := $(foreach m,$(LIB_ORDER),$(call lib_file,$(m)))
$(foreach m,$(LIB_ORDER),$(eval SRC_$(m) := $(wildcard $(m)/*.c)))

lib_objs = $(patsubst %.c,$(BUILD)/%.o,$(1))

# The version, from one place: the first line of debian/changelog. Only
# proc/service.c sees it (proc_version(), --version, tapgate_build_info).
VERSION := $(shell awk 'NR == 1 { gsub(/[()]/, "", $$2); print $$2 }' debian/changelog)
$(BUILD)/proc/service.o: CFLAGS_ALL += -DTAPGATE_VERSION='"$(VERSION)"'
$(BUILD)/proc/service.o: debian/changelog

BIN := $(BUILD)/bin
PROGRAMS := $(BIN)/tapgate $(BIN)/tapgen $(BIN)/tapdump $(BIN)/tapfare $(BIN)/tapsettle
BENCH_PROGRAMS := $(patsubst bench/%.c,$(BIN)/%,$(wildcard bench/*.c))
UNIT_TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/test_*.c))
FUZZERS := $(patsubst tests/fuzz_%.c,$(BUILD)/fuzz/fuzz_%,$(wildcard tests/fuzz_*.c))

.PHONY: all demo run test check bench fuzz soak clean help dev-keys print-modules check-modules

all: $(PROGRAMS) $(BENCH_PROGRAMS) $(UNIT_TESTS) dev-keys

# Git keeps no permission bits but the executable one, so a fresh clone's
# development keys are 0644, and the gateway refuses a key file that group
# or others can read. Set their mode (and say so when it changes).
DEV_KEYS := config/dev-validators.keys config/dev-qr-platform.key config/dev-settle.key
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
	@echo "  install install under PREFIX (/usr/local) into DESTDIR: programs, man pages, config, units"
	@echo "  deb     build the Debian package (dpkg-buildpackage) into build/deb/ and lintian it"
	@echo "  check-modules  fail if a module includes a header of a module it does not declare (run by test)"
	@echo "  clean   remove build/, build-san/ and var/"
	@echo "Variables: V=1 (show commands), SAN=1 (sanitizers), BUILD=dir, FUZZ_SECONDS=n,"
	@echo "  PREFIX, DESTDIR, sysconfdir, localstatedir, bindir, mandir, systemdunitdir (install)"

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

$(foreach m,$(LIB_ORDER),$(eval $(call lib_file,$(m)): $(call lib_objs,$(SRC_$(m)))))
$(MODULE_LIBS):
	@mkdir -p $(dir $@)
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN)/tapgate: $(call lib_objs,$(wildcard gateway/*.c))
$(foreach p,tapgen tapdump tapfare tapsettle,$(eval $(BIN)/$(p): $(BUILD)/tools/$(p).o))
$(foreach b,$(BENCH_PROGRAMS),$(eval $(b): $(BUILD)/bench/$(notdir $(b)).o))
$(foreach p,$(PROGRAMS) $(BENCH_PROGRAMS),$(eval $(p): $(call libs_for,$(LINK_$(notdir $(p))))))
$(PROGRAMS) $(BENCH_PROGRAMS):
	@mkdir -p $(dir $@)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_SAN) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LIBS)

$(foreach t,$(UNIT_TESTS),$(eval $(t): $(t).o $(call libs_for,$(LINK_$(notdir $(t))))))
$(UNIT_TESTS):
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS_SAN) -o $@ $(filter %.o,$^) $(filter %.a,$^) $(LIBS) $(TEST_LIBS)

# The module graph as declared, one line per module: "name: deps" (tools/check-modules.sh reads it).
print-modules:
	@$(foreach m,$(MODULES) $(PROGRAM_DIRS),echo '$(m): $(DEPS_$(m))' '| $(or $(PUBLIC_$(m)),$(m)/$(m).h)';)

check-modules:
	$(Q)sh tools/check-modules.sh .

demo: $(PROGRAMS) dev-keys
	$(Q)BUILD=$(BUILD) sh tools/demo.sh

run: $(PROGRAMS) dev-keys
	$(Q)mkdir -p var
	$(BIN)/tapgate -c config/tapgate.conf

test: all check-modules
	$(Q)BUILD=$(BUILD) sh tests/run.sh

check:
	$(Q)$(MAKE) --no-print-directory SAN=1 test

bench: all
	$(Q)BUILD=$(BUILD) sh bench/run.sh

# The fuzzer is built with clang's libFuzzer, separately from the main tree.
FUZZ_CFLAGS := -std=gnu11 -O1 -g -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I. -DTAPGATE_VERSION='"$(VERSION)"' \
	$(shell $(PKG_CONFIG) --cflags $(PKGS))
$(BUILD)/fuzz/fuzz_%: tests/fuzz_%.c $(filter-out $(DPDK_SRC),$(SRC_fastpath)) $(SRC_proto) $(SRC_store) $(SRC_proc) $(SRC_fare)
	@mkdir -p $(dir $@)
	$(call say,FUZZ,$@)
	$(Q)clang $(FUZZ_CFLAGS) -o $@ $^ $(LIBS)

fuzz: $(FUZZERS)
	$(Q)BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz.sh

# ------------------------------------------------------------------ install
# make install [PREFIX=/usr/local] [DESTDIR=] [sysconfdir=...]: the programs,
# their man pages (help2man, from --help and --version), the configuration
# under $(sysconfdir)/tapgate (paths pointed at $(statedir) and the installed
# feed), the systemd units, the system user (sysusers.d) and the monitoring
# pack. The validator key file is not installed: each deployment makes its
# own (config/tapgate.conf says how); until then --check exits 78.
PREFIX ?= /usr/local
prefix ?= $(PREFIX)
bindir ?= $(prefix)/bin
datadir ?= $(prefix)/share
mandir ?= $(datadir)/man
ifeq ($(prefix),/usr)
sysconfdir ?= /etc
localstatedir ?= /var
systemdunitdir ?= /lib/systemd/system
else
sysconfdir ?= $(prefix)/etc
localstatedir ?= $(prefix)/var
systemdunitdir ?= $(prefix)/lib/systemd/system
endif
sysusersdir ?= $(prefix)/lib/sysusers.d
statedir ?= $(localstatedir)/lib/tapgate
INSTALL ?= install

MAN_PAGES := $(patsubst $(BIN)/%,$(BUILD)/man/%.1,$(PROGRAMS))
man_name_tapgate := transit fare and card-transaction gateway
man_name_tapgen := validator fleet simulator for tapgate
man_name_tapdump := inspect and verify a tapgate store
man_name_tapfare := rate the taps of finished business days
man_name_tapsettle := tapgate settlement worker: close days, write files, ingest answers, reconcile
$(BUILD)/man/%.1: $(BIN)/%
	@mkdir -p $(dir $@)
	$(call say,MAN,$@)
	$(Q)help2man --no-info --no-discard-stderr --name='$(man_name_$*)' --output=$@ $(abspath $<)

# The installed config: the shipped one, with its paths pointed at the installed layout.
INSTALL_CONF_SED := -e 's|^path = var/store|path = $(statedir)/store|' \
	-e 's|^rated_path = var/rated|rated_path = $(statedir)/rated|' \
	-e 's|^path = var/settle|path = $(statedir)/settle|' \
	-e 's|^outbox = var/outbox|outbox = $(statedir)/outbox|' \
	-e 's|^validator_key_file = config/dev-validators.keys|validator_key_file = $(sysconfdir)/tapgate/validators.keys|' \
	-e 's|^secret_file = config/dev-settle.key|secret_file = $(sysconfdir)/tapgate/settle.key|' \
	-e 's|^feed = config/fares-demo|feed = $(datadir)/tapgate/fares-demo|' \
	-e 's|^counterparties = config/counterparties.conf|counterparties = $(sysconfdir)/tapgate/counterparties.conf|'
MONITORING_FILES := monitoring/alerts.yml monitoring/dashboard.json monitoring/prometheus.yml
UNIT_SED := -e 's|@bindir@|$(bindir)|g' -e 's|@sysconfdir@|$(sysconfdir)|g' -e 's|@statedir@|$(statedir)|g'

.PHONY: programs man install
programs: $(PROGRAMS)
man: $(MAN_PAGES)

install: $(PROGRAMS) $(MAN_PAGES)
	$(call say,INSTALL,$(DESTDIR)$(prefix))
	$(Q)$(INSTALL) -d $(DESTDIR)$(bindir) $(DESTDIR)$(mandir)/man1 $(DESTDIR)$(sysconfdir)/tapgate \
		$(DESTDIR)$(systemdunitdir) $(DESTDIR)$(sysusersdir) $(DESTDIR)$(datadir)/tapgate/fares-demo \
		$(DESTDIR)$(datadir)/tapgate/monitoring
	$(Q)$(INSTALL) -m 0755 $(PROGRAMS) $(DESTDIR)$(bindir)/
	$(Q)$(INSTALL) -m 0644 $(MAN_PAGES) $(DESTDIR)$(mandir)/man1/
	$(Q)sed $(INSTALL_CONF_SED) config/tapgate.conf >$(DESTDIR)$(sysconfdir)/tapgate/tapgate.conf
	$(Q)chmod 0644 $(DESTDIR)$(sysconfdir)/tapgate/tapgate.conf
	$(Q)$(INSTALL) -m 0644 config/counterparties.conf $(DESTDIR)$(sysconfdir)/tapgate/
	$(Q)$(INSTALL) -m 0644 config/fares-demo/* $(DESTDIR)$(datadir)/tapgate/fares-demo/
	$(Q)$(INSTALL) -m 0644 $(MONITORING_FILES) $(DESTDIR)$(datadir)/tapgate/monitoring/
	$(Q)for u in tapgate tapsettle; do sed $(UNIT_SED) dist/$$u.service.in >$(DESTDIR)$(systemdunitdir)/$$u.service; \
		chmod 0644 $(DESTDIR)$(systemdunitdir)/$$u.service; done
	$(Q)$(INSTALL) -m 0644 dist/tapgate.sysusers $(DESTDIR)$(sysusersdir)/tapgate.conf

# make deb: the Debian package, built by dpkg-buildpackage from a copy of the
# working tree in $(BUILD)/deb/ (it writes its results beside the source
# tree; none of this make's variables), then its contents listed and lintian
# run on it (failing on errors).
DEB_SRC := $(BUILD)/deb/tapgate-$(VERSION)
.PHONY: deb
deb:
	$(Q)rm -rf $(BUILD)/deb && mkdir -p $(DEB_SRC)
	$(Q)git ls-files -z --cached --others --exclude-standard | \
		xargs -0 sh -c 'for f; do [ -e "$$f" ] || [ -L "$$f" ] && printf "%s\0" "$$f"; done' sh | \
		tar --null -T - -cf - | tar -xf - -C $(DEB_SRC)
	$(call say,DEB,$(BUILD)/deb/tapgate_$(VERSION)_*.deb)
	$(Q)cd $(DEB_SRC) && env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS -u BUILD dpkg-buildpackage -us -uc -b >../build.log 2>&1 || \
		{ tail -n 40 ../build.log; exit 1; }
	$(Q)dpkg-deb -c $(BUILD)/deb/tapgate_$(VERSION)_*.deb
	$(Q)lintian --fail-on error $(BUILD)/deb/tapgate_$(VERSION)_*.changes

clean:
	rm -rf build build-san var

# (not make deb's copy of the tree in $(BUILD)/deb, whose sysusers.d is no dependency file)
-include $(shell find $(BUILD) -path $(BUILD)/deb -prune -o -name '*.d' -type f -print 2>/dev/null)

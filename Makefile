# Postern: top-level build.  GNU make.
#
#   make                 build everything into $(BUILD)/ (runs in place, installs nothing)
#   make check           build, then run the unit and integration tests
#   make run             build, make ./run (port base 10000) if missing, start in the foreground
#   make bench           throughput figures against a live instance (and Postfix, if installed)
#   make install         install in FHS layout under $(DESTDIR)$(PREFIX)
#   make uninstall       remove what make install put there
#   make clean           remove $(BUILD)/
#   make hardening-check the built programs carry the hardening flags (run by check)
#   make fuzz            build the libFuzzer harnesses of tests/fuzz/ into $(BUILD)/fuzz/
#   make fuzz-smoke      run each harness for FUZZ_SMOKE_SECONDS (10); fails on a crash
#   make fuzz-long       run each harness for FUZZ_SECONDS (600); -j2 runs two at once
#
# Variables: CC, CFLAGS, LDFLAGS, BUILD (default build), SANITIZE=1 (ASan+UBSan),
# WERROR=1 (warnings are errors; make check sets it), HARDEN=0 (no hardening flags),
# FUZZ_CC (default clang), PREFIX (default /usr/local), DESTDIR, SYSCONFDIR, QUEUEDIR,
# SYSTEMDUNITDIR (default PREFIX/lib/systemd/system).

CC        ?= cc
BUILD     ?= build
PREFIX    ?= /usr/local
SYSCONFDIR ?= /etc/postern
QUEUEDIR  ?= /var/spool/postern
MAILDIR_BASE ?= /var/mail/postern
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
PYTHON    ?= /usr/bin/python3
PKG_CONFIG ?= pkg-config

PKGS      := libssl libcrypto libbsd-overlay libcdb libpcre2-8 libcrypt zlib
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
# tinycdb's .pc file is missing on some systems; fall back to -lcdb.
ifeq ($(findstring -lcdb,$(PKG_LIBS)),)
PKG_LIBS  += -lcdb
endif

CFLAGS    ?= -O2 -g
WARN      := -Wall -Wextra -Wshadow -Wformat=2 -Wno-format-nonliteral \
             -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
ifeq ($(SANITIZE),1)
SAN       := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# The daemons drop privileges and enter chroots, after which LeakSanitizer cannot
# inspect a process at its exit (its tracer may not attach): it would fail the exit
# (status 1) and master would throttle the service.  The unit tests look for leaks.
INTEG_ENV := ASAN_OPTIONS=detect_leaks=0
endif
# Warnings are errors only when asked (CI and make check do), so that a newer compiler
# with new warnings does not break a packager's build.  -Werror is kept out of the
# flags stamp below: every compiler's warnings are saved next to its object as a .warn
# file, and a WERROR=1 run fails on those too, so `make && make check` builds once.
WERROR    ?= 0
ifeq ($(WERROR),1)
WERROR_FLAG := -Werror
endif
# Hardening: stack protector, fortified libc calls, position-independent executables,
# relocations read-only after start-up (full RELRO, BIND_NOW).  _FORTIFY_SOURCE needs
# the optimiser and is pointless under the sanitizers: on only with -O1 and up and
# without SANITIZE.  `make hardening-check` inspects the programs.
HARDEN    ?= 1
ifeq ($(HARDEN),1)
HARDEN_CFLAGS  := -fstack-protector-strong -fPIE
HARDEN_LDFLAGS := -pie -Wl,-z,relro,-z,now
ifneq ($(SANITIZE),1)
ifneq ($(filter -O -O1 -O2 -O3 -Os -Og -Ofast -Oz,$(CFLAGS)),)
HARDEN_FORTIFY := yes
HARDEN_CFLAGS  += -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2
endif
endif
endif
# lib/util is the generic floor (strings, memory, streams, sockets, files, clock, log,
# TLS, IPC framing) and is compiled seeing only its own headers, so that it can never
# include a mail-specific module: such an include fails the build.  lib/mail (queue,
# addresses, maps, routing, Maildir, DNS, config, the daemon skeleton) and the
# programs see both.
UTIL_INC  := -Ilib/util
MAIL_INC  := -Ilib/util -Ilib/mail
DEFINES   := -DPOSTERN_SYSCONFDIR='"$(SYSCONFDIR)"' -DPOSTERN_QUEUEDIR='"$(QUEUEDIR)"' \
             -DPOSTERN_MAILDIR_BASE='"$(MAILDIR_BASE)"'
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(SAN) $(HARDEN_CFLAGS) $(PKG_CFLAGS) \
             $(DEFINES) $(CFLAGS)
ALL_LDFLAGS := $(SAN) $(HARDEN_LDFLAGS) $(LDFLAGS)
LIBS      := $(PKG_LIBS) -lresolv

# Daemons under libexec/postern/, each built from the .c files of its folder.
DAEMONS   := master smtpd qmgr smtp local resolve auth pop3d imapd anvil pickup tlsproxy

UTIL_SRC  := $(wildcard lib/util/*.c)
MAIL_SRC  := $(wildcard lib/mail/*.c)
UTIL_A    := $(BUILD)/lib/libpostern-util.a
MAIL_A    := $(BUILD)/lib/libpostern-mail.a
# Link order: the mail floor first, then the generic one it stands on.
LIB_A     := $(MAIL_A) $(UTIL_A)

DAEMON_BINS := $(DAEMONS:%=$(BUILD)/libexec/postern/%)
ADMIN_BIN   := $(BUILD)/sbin/postern
# sendmail(1); mailq and newaliases are links to it (it looks at the name it runs as).
SENDMAIL_BIN := $(BUILD)/bin/sendmail
SENDMAIL_LINKS := $(BUILD)/bin/mailq $(BUILD)/bin/newaliases
UNIT_SRC    := $(wildcard tests/unit/test_*.c)
UNIT_BINS   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

# Rebuild everything when the compiler or flags change (SANITIZE=1 and back).
FLAGS_STAMP := $(BUILD)/.flags
FLAGS_NOW   := $(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $(LIBS)
$(shell mkdir -p $(BUILD); [ "`cat $(FLAGS_STAMP) 2>/dev/null`" = '$(FLAGS_NOW)' ] || echo '$(FLAGS_NOW)' > $(FLAGS_STAMP))

.PHONY: all check unit integration run bench install uninstall clean deps-check hardening-check \
        werror-check fuzz fuzz-smoke fuzz-long
all: $(LIB_A) $(DAEMON_BINS) $(ADMIN_BIN) $(SENDMAIL_BIN) $(SENDMAIL_LINKS) $(UNIT_BINS)
ifeq ($(WERROR),1)
all: werror-check
endif

# V=1 shows the whole command lines.
ifneq ($(V),1)
Q := @
endif

# After a compiler command: its diagnostics go to the terminal and, when they hold a
# warning, stay in OBJ.warn until the object is built again (see WERROR).
KEEP_WARNINGS = 2>$(@:.o=.warn); rc=$$?; cat $(@:.o=.warn) >&2; \
	grep -qs 'warning:' $(@:.o=.warn) || rm -f $(@:.o=.warn); exit $$rc

$(BUILD)/obj/lib/util/%.o: lib/util/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(UTIL_INC) $(ALL_CFLAGS) $(WERROR_FLAG) -MMD -MP -c $< -o $@ $(KEEP_WARNINGS)

$(BUILD)/obj/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(MAIL_INC) $(ALL_CFLAGS) $(WERROR_FLAG) -MMD -MP -c $< -o $@ $(KEEP_WARNINGS)

$(UTIL_A): $(UTIL_SRC:%.c=$(BUILD)/obj/%.o)
$(MAIL_A): $(MAIL_SRC:%.c=$(BUILD)/obj/%.o)
$(UTIL_A) $(MAIL_A):
	@mkdir -p $(dir $@)
	@rm -f $@
	@$(if $(Q),echo "  AR      $@")
	$(Q)ar rcs $@ $^

# One rule per program folder: all of its .c files, linked with lib/.
define program_rule
$(2): $$(patsubst %.c,$(BUILD)/obj/%.o,$$(wildcard $(1)/*.c)) $$(LIB_A)
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  LD      $$@")
	$$(Q)$$(CC) $$(ALL_LDFLAGS) -o $$@ $$(filter %.o,$$^) $$(LIB_A) $$(LIBS)
endef
$(foreach d,$(DAEMONS),$(eval $(call program_rule,$(d),$(BUILD)/libexec/postern/$(d))))
$(eval $(call program_rule,postern,$(ADMIN_BIN)))
$(eval $(call program_rule,sendmail,$(SENDMAIL_BIN)))

$(SENDMAIL_LINKS): $(SENDMAIL_BIN)
	$(Q)ln -sf sendmail $@

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/obj/tests/unit/unit.o $(LIB_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(LIB_A) $(LIBS)

# Skip the harness itself when collecting test programs.
UNIT_BINS := $(filter-out $(BUILD)/tests/unit,$(UNIT_BINS))

deps-check:
	@sh tools/deps.sh check

# Fails when an object of this build was compiled with warnings (kept in .warn files,
# also from a build made before without WERROR=1).
werror-check: $(LIB_A) $(DAEMON_BINS) $(ADMIN_BIN) $(SENDMAIL_BIN) $(UNIT_BINS)
	@w=$$(find $(BUILD)/obj -name '*.warn' 2>/dev/null | sort); \
	if [ -n "$$w" ]; then cat $$w >&2; \
	    echo "WERROR=1: compiler warnings in:" $$w >&2; exit 1; fi

PROGRAMS := $(DAEMON_BINS) $(ADMIN_BIN) $(SENDMAIL_BIN)
hardening-check: $(PROGRAMS)
ifeq ($(HARDEN),1)
	@sh tests/hardening-check.sh $(if $(HARDEN_FORTIFY),--fortify) $(PROGRAMS)
else
	@echo "hardening-check: skipped (HARDEN=$(HARDEN))"
endif

unit: all
	@sh tests/unit/run.sh $(BUILD)/tests

integration: all
	@POSTERN_BUILD=$(abspath $(BUILD)) $(INTEG_ENV) $(PYTHON) -m pytest -q -rs -p no:cacheprovider \
		tests/integration

check: deps-check
	@$(MAKE) --no-print-directory all WERROR=1
	@$(MAKE) --no-print-directory hardening-check
	@sh tests/unit/run.sh $(BUILD)/tests
	@POSTERN_BUILD=$(abspath $(BUILD)) $(INTEG_ENV) $(PYTHON) -m pytest -q -rs -p no:cacheprovider \
		tests/integration

run: deps-check all
	@sh tools/run.sh $(abspath $(BUILD))

bench: all
	@POSTERN_BUILD=$(abspath $(BUILD)) $(PYTHON) tests/bench/bench.py

install: all
	sh tools/install.sh "$(DESTDIR)" "$(PREFIX)" "$(BUILD)" "$(SYSCONFDIR)" "$(QUEUEDIR)" \
	    "$(SYSTEMDUNITDIR)"

uninstall:
	sh tools/install.sh -u "$(DESTDIR)" "$(PREFIX)" "$(BUILD)" "$(SYSCONFDIR)" "$(QUEUEDIR)" \
	    "$(SYSTEMDUNITDIR)"

clean:
	rm -rf $(BUILD)

# ---- fuzzing (clang's libFuzzer) ----
# Every tests/fuzz/fuzz_NAME.c is one harness, linked with lib/ built again for fuzzing
# (coverage, ASan and UBSan) and with the program files named by FUZZ_LINK_fuzz_NAME.
# Runs keep their corpus in $(FUZZ_BUILD)/corpus/NAME/ (out of git), seeded from
# tests/fuzz/corpus/NAME/ when it exists; a crash leaves its input in
# $(FUZZ_BUILD)/crash/ and each run's output is in $(FUZZ_BUILD)/log/NAME.log.
FUZZ_CC     ?= clang
FUZZ_BUILD  := $(BUILD)/fuzz
FUZZ_CFLAGS ?= -O1 -g
FUZZ_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
               -fno-omit-frame-pointer
FUZZ_ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(WERROR_FLAG) $(PKG_CFLAGS) $(DEFINES) \
               $(FUZZ_CFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_SECONDS ?= 600
FUZZ_ARGS   ?=
FUZZ_NAMES  := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS   := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/%)
FUZZ_UTIL_A := $(FUZZ_BUILD)/lib/libpostern-util.a
FUZZ_MAIL_A := $(FUZZ_BUILD)/lib/libpostern-mail.a

FUZZ_LINK_fuzz_smtpd_data := smtpd/data_decode.c
FUZZ_LINK_fuzz_smtpd_cmd  := smtpd/cmd.c smtpd/params.c smtpd/auth_decode.c
FUZZ_LINK_fuzz_smtp_mime  := smtp/smtp_mime.c
FUZZ_LINK_fuzz_smtp_reply := smtp/smtp_reply.c smtp/smtp_ehlo.c
FUZZ_LINK_fuzz_pop3       := pop3d/cmd.c smtpd/auth_decode.c
FUZZ_LINK_fuzz_imap       := imapd/io.c imapd/parse.c imapd/seqset.c
FUZZ_LINK_fuzz_imap_mux   := imapd/mux_read.c imapd/io.c
fuzz_link_objs = $(patsubst %.c,$(FUZZ_BUILD)/obj/%.o,$(FUZZ_LINK_fuzz_$(1)))

ifneq ($(filter fuzz%,$(MAKECMDGOALS)),)
FUZZ_STAMP := $(FUZZ_BUILD)/.flags
FUZZ_NOW   := $(FUZZ_CC) $(FUZZ_ALL_CFLAGS) $(LIBS)
$(shell mkdir -p $(FUZZ_BUILD); [ "`cat $(FUZZ_STAMP) 2>/dev/null`" = '$(FUZZ_NOW)' ] || echo '$(FUZZ_NOW)' > $(FUZZ_STAMP))
endif

$(FUZZ_BUILD)/obj/lib/util/%.o: lib/util/%.c $(FUZZ_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(FUZZ_CC) $(UTIL_INC) $(FUZZ_ALL_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BUILD)/obj/%.o: %.c $(FUZZ_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(FUZZ_CC) $(MAIL_INC) $(FUZZ_ALL_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_UTIL_A): $(UTIL_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
$(FUZZ_MAIL_A): $(MAIL_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
$(FUZZ_UTIL_A) $(FUZZ_MAIL_A):
	@mkdir -p $(dir $@)
	@rm -f $@
	@$(if $(Q),echo "  AR      $@")
	$(Q)ar rcs $@ $^

.SECONDEXPANSION:
$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o \
		$$(call fuzz_link_objs,$$*) \
		$(FUZZ_MAIL_A) $(FUZZ_UTIL_A)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $(filter %.o,$^) \
	    $(FUZZ_MAIL_A) $(FUZZ_UTIL_A) $(LIBS)

fuzz: $(FUZZ_BINS)
# kept, so that a later make does not compile them again
.SECONDARY: $(FUZZ_NAMES:%=$(FUZZ_BUILD)/obj/tests/fuzz/%.o) \
            $(foreach n,$(FUZZ_NAMES:fuzz_%=%),$(call fuzz_link_objs,$(n)))

# One run: NAME for SECONDS; prints one line, or the end of the log after a failure.
define fuzz_run
	@mkdir -p $(FUZZ_BUILD)/corpus/$(1) $(FUZZ_BUILD)/crash $(FUZZ_BUILD)/log
	@cd $(FUZZ_BUILD) && ./$(1) -max_total_time=$(2) -timeout=20 -rss_limit_mb=2048 \
	    -artifact_prefix=crash/$(1)- $(FUZZ_ARGS) corpus/$(1) \
	    $(if $(wildcard tests/fuzz/corpus/$(1)),$(abspath tests/fuzz/corpus/$(1))) \
	    > log/$(1).log 2>&1; rc=$$?; \
	if [ $$rc -ne 0 ]; then tail -n 60 log/$(1).log; \
	    echo "fuzz: $(1) failed (exit $$rc): see $(FUZZ_BUILD)/log/$(1).log and crash/"; \
	    exit 1; fi; \
	echo "  FUZZ    $(1), $(2) s: $$(grep -E '^#[0-9]+' log/$(1).log | tail -n 1 | \
	    sed 's/^#\([0-9]*\)[[:space:]]*DONE[[:space:]]*/\1 runs, /; s/ lim:.*//')"
endef

fuzz-smoke: $(FUZZ_NAMES:%=fuzz-smoke-%)
fuzz-long: $(FUZZ_NAMES:%=fuzz-long-%)
fuzz-smoke-%: $(FUZZ_BUILD)/%
	$(call fuzz_run,$*,$(FUZZ_SMOKE_SECONDS))
fuzz-long-%: $(FUZZ_BUILD)/%
	$(call fuzz_run,$*,$(FUZZ_SECONDS))

-include $(shell find $(BUILD)/obj $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)

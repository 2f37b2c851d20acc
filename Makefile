# modtwin: one non-recursive Makefile.
#   make            build the binary (build/modtwin)
#   make run        start one EC200A-CN on a PTY (installs missing packages first)
#   make test       unit tests, e2e tests, power-loss sweeps, short fuzz runs; ends "N passed, N failed"
#   make check      the same as test
#   make bench      benchmarks, each against a peer measured in the same run
#   make asan       the e2e suite against an ASan/UBSan build
#   make fuzz       longer libFuzzer runs
#   make lint       no mutable globals, formatting
#   make install    PREFIX=/usr/local

BUILDDIR ?= build
PREFIX   ?= /usr/local
CC       ?= cc
PYTHON   ?= /usr/bin/python3

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
ifeq ($(CI),true)
WARN     += -Werror
endif
CFLAGS   ?= -O2 -g
CPPFLAGS += -I. -D_GNU_SOURCE
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) -MMD -MP
LDLIBS   := -lev -lcjson -lcurl -lcoap-3-notls -lmbedtls -lmbedx509 -lmbedcrypto -lzstd -ldivsufsort \
            -lbz2 -lz -lm

LIB_SRCS  := $(wildcard firmware/*.c hal/*.c storage/*.c sim/*.c protocols/*.c) \
             $(filter-out tools/main.c,$(wildcard tools/*.c))
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILDDIR)/%.o)
LIB       := $(BUILDDIR)/libmodtwin.a
BIN       := $(BUILDDIR)/modtwin
UNIT_SRCS := $(wildcard test/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:test/unit/%.c=$(BUILDDIR)/unit/%)
TLIB_SRCS := $(wildcard test/lib/*.c)
TLIB_OBJS := $(TLIB_SRCS:%.c=$(BUILDDIR)/%.o)
TLIB      := $(BUILDDIR)/libtestsupport.a
BENCH_SRCS:= $(wildcard bench/*.c)
BENCH_BINS:= $(BENCH_SRCS:bench/%.c=$(BUILDDIR)/bench/%)
FUZZ_SRCS := $(wildcard test/fuzz/fuzz_*.c)
DEPS_OK   := $(BUILDDIR)/.deps-ok

.PHONY: all run test check bench asan fuzz lint install clean deps sweep-full sweep-ec200a

all: $(BIN)

# The deps script is cheap when everything is present; it runs once per build dir.
$(DEPS_OK): scripts/deps.sh
	@mkdir -p $(@D)
	@scripts/deps.sh
	@touch $@
deps: $(DEPS_OK)

$(BUILDDIR)/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

# Test and benchmark support (image pair generator): linked into unit tests and benchmarks only.
$(TLIB): $(TLIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BIN): $(BUILDDIR)/tools/main.o $(LIB)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

$(BUILDDIR)/unit/%: test/unit/%.c $(LIB) $(TLIB) | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(TLIB) $(LIB) $(LDFLAGS) $(LDLIBS) -lcmocka

$(BUILDDIR)/bench/%: bench/%.c $(LIB) $(TLIB) | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -o $@ $< $(TLIB) $(LIB) $(LDFLAGS) $(LDLIBS)

# libFuzzer targets: clang with the fuzzer and the sanitizers, sources compiled apart.
FUZZ_DIR  := $(BUILDDIR)/fuzz
FUZZ_BINS := $(FUZZ_SRCS:test/fuzz/%.c=$(FUZZ_DIR)/%)
FUZZ_FLAGS:= -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
$(FUZZ_DIR)/%: test/fuzz/%.c $(LIB_SRCS) | $(DEPS_OK)
	@mkdir -p $(@D)
	clang $(CPPFLAGS) $(FUZZ_FLAGS) -o $@ $< $(LIB_SRCS) $(LDLIBS)

run: $(BIN)
	$(BIN) run $(ARGS)

test check: $(BIN) $(UNIT_BINS) $(FUZZ_BINS) $(BENCH_BINS)
	@BUILDDIR=$(BUILDDIR) PYTHON=$(PYTHON) FUZZ_SECONDS=$${FUZZ_SECONDS:-10} sh test/run.sh

fuzz: $(FUZZ_BINS)
	@BUILDDIR=$(BUILDDIR) FUZZ_SECONDS=$${FUZZ_SECONDS:-300} FUZZ_ONLY=1 sh test/run.sh

bench: $(BIN) $(BENCH_BINS)
	@BUILDDIR=$(BUILDDIR) PYTHON=$(PYTHON) sh bench/run.sh

asan:
	$(MAKE) BUILDDIR=$(BUILDDIR)-asan CC=clang \
	    CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	    LDFLAGS="-fsanitize=address,undefined" all $(UNIT_BINS:$(BUILDDIR)/%=$(BUILDDIR)-asan/%)
	@BUILDDIR=$(BUILDDIR)-asan PYTHON=$(PYTHON) NO_FUZZ=1 NO_LINT=1 \
	    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    sh test/run.sh

lint: $(LIB) $(BUILDDIR)/tools/main.o
	@sh scripts/lint.sh $(LIB) $(BUILDDIR)/tools/main.o

# Exhaustive power-loss sweeps at full size (minutes, not part of make test).
sweep-full: $(UNIT_BINS)
	@FOTA_SWEEP_FULL=1 BUILDDIR=$(BUILDDIR) NO_FUZZ=1 NO_E2E=1 sh test/run.sh

# One whole EC200A-CN update (its 3.5 MiB image, staging), cut at every flash operation.
sweep-ec200a: $(BUILDDIR)/unit/test_fota_apply
	@FOTA_SWEEP_FULL=1 FOTA_SWEEP_MODEL=EC200A-CN $(BUILDDIR)/unit/test_fota_apply

install: $(BIN)
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/modtwin

clean:
	rm -rf $(BUILDDIR) $(BUILDDIR)-asan

-include $(LIB_OBJS:.o=.d) $(TLIB_OBJS:.o=.d) $(BUILDDIR)/tools/main.d

# libipc: thin wrapper over meson/ninja for the two-command quick start.
#
#   make          build (build/)
#   make test     build, then run the whole test suite
#   make bench    build, then run tools/ipc-bench over every transport
#   make asan     test suite under AddressSanitizer + UBSan (build-asan/)
#   make tsan     thread-safety tests under ThreadSanitizer (build-tsan/)
#   make fuzz     libFuzzer targets, FUZZ_SECONDS each (build-fuzz/)
#   make clang    clang -Werror build, unit + conformance suites (build-clang/)
#   make musl     musl-gcc build of the library, tools and tests: smoke,
#                 unit and conformance suites against musl (build-musl/;
#                 cmocka built from Debian's source package with musl-gcc)
#   make valgrind conformance cases under valgrind memcheck, one run per
#                 driver (build/), any error fails
#   make fuzz-selftest   a deliberately broken target must fail make fuzz
#   make install  install library, header, libipc.pc, tools and man pages
#                 (PREFIX=/usr/local, honoured on every call; DESTDIR=)
#
# Each target first checks the Debian packages it needs.  As root it
# installs the missing ones with apt-get; otherwise it names them and stops.

PREFIX    ?= /usr/local
BUILD     ?= build
MESON_OPTS ?=
NPROC     := $(shell nproc 2>/dev/null || echo 2)

BUILD_PKGS := gcc meson ninja-build pkg-config scdoc
# Optional drivers (meson features): installed so that make test covers them.
OPT_PKGS   := libnats-dev libssl-dev libsystemd-dev
TEST_PKGS  := libcmocka-dev socat python3-cffi python3-pytest nats-server \
              dbus-daemon dbus-bin iproute2 nftables
BENCH_PKGS := libsystemd-dev dbus-daemon nats-server libzmq3-dev libnng-dev libiceoryx-binding-c-dev iceoryx
SAN_PKGS   := clang libclang-rt-14-dev
MUSL_PKGS  := musl-tools linux-libc-dev dpkg-dev xz-utils
VALGRIND_PKGS := valgrind

FUZZ_SECONDS ?= 30

.PHONY: all build test bench asan tsan fuzz fuzz-merge fuzz-selftest clang \
	musl valgrind install deps-build deps-test deps-bench deps-san clean

all: build

# $(call need,pkg1 pkg2 ...): install or name the missing packages.
define need
	@missing=""; \
	for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' \
	    || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "make: installing missing Debian packages:$$missing"; \
	    apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing \
	      >/dev/null || { echo "make: apt-get install$$missing failed"; exit 1; }; \
	  else \
	    echo "make: missing Debian packages:$$missing"; \
	    echo "make: install them with: sudo apt-get install$$missing"; \
	    exit 1; \
	  fi; \
	fi
endef

# $(call want,pkg1 ...): like need, but a non-root run only names them.
define want
	@missing=""; \
	for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' \
	    || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "make: installing optional Debian packages:$$missing"; \
	    apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing \
	      >/dev/null || echo "make: could not install$$missing; going on without"; \
	  else \
	    echo "make: optional Debian packages missing:$$missing (their rows will be skipped;"; \
	    echo "make: install them with: sudo apt-get install$$missing)"; \
	  fi; \
	fi
endef

deps-build:
	$(call need,$(BUILD_PKGS))

deps-test: deps-build
	$(call need,$(TEST_PKGS))
	$(call want,$(OPT_PKGS))

# The benchmark's peers are optional: as root they are installed; otherwise
# they are named and their rows say "skipped".
deps-bench: deps-build
	$(call want,$(BENCH_PKGS))

deps-san: deps-test
	$(call need,$(SAN_PKGS))

$(BUILD)/build.ninja:
	meson setup $(BUILD) -Dwerror=true -Ddefault_library=both \
	  -Dprefix=$(abspath $(PREFIX)) $(MESON_OPTS)

build: deps-build $(BUILD)/build.ninja
	ninja -C $(BUILD)

test: deps-test $(BUILD)/build.ninja
	meson configure $(BUILD) -Dtests=enabled >/dev/null
	ninja -C $(BUILD)
	@# The skip summary comes last; with CI=true an unexpected skip (not in
	@# tests/expected-skips.txt) fails the run.
	@rc=0; meson test -C $(BUILD) --print-errorlogs \
	  --num-processes $(NPROC) --no-suite tsan-conformance --no-suite valgrind || rc=$$?; \
	sh tests/skips.sh $(BUILD)/meson-logs/testlog.txt || rc=1; exit $$rc

bench: deps-bench $(BUILD)/build.ninja
	@# Peers installed since the last configure are only found by a new one.
	meson setup --reconfigure $(BUILD) >/dev/null
	ninja -C $(BUILD)
	$(BUILD)/tools/ipc-bench

build-asan/build.ninja:
	meson setup build-asan -Dwerror=true -Ddefault_library=both -Db_sanitize=address,undefined \
	  -Db_lundef=false -Dbuildtype=debug -Dtests=enabled $(MESON_OPTS)

asan: deps-test build-asan/build.ninja
	ninja -C build-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	IPC_TEST_TIME_FACTOR=3 \
	  meson test -C build-asan --print-errorlogs --num-processes $(NPROC) \
	  --timeout-multiplier 3 --no-suite valgrind

build-tsan/build.ninja:
	CC=clang meson setup build-tsan -Dwerror=true -Ddefault_library=both -Db_sanitize=thread \
	  -Db_lundef=false -Dbuildtype=debugoptimized -Dtests=enabled \
	  $(MESON_OPTS)

tsan: deps-san build-tsan/build.ninja
	ninja -C build-tsan
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	IPC_TEST_TIME_FACTOR=4 \
	  meson test -C build-tsan --print-errorlogs --suite tsan \
	  --num-processes $(NPROC) --timeout-multiplier 3

build-fuzz/build.ninja:
	CC=clang meson setup build-fuzz -Ddefault_library=both -Dfuzzers=enabled -Dtests=disabled \
	  -Db_sanitize=address,undefined -Db_lundef=false \
	  -Dbuildtype=debugoptimized $(MESON_OPTS)

# The library is compiled with coverage instrumentation for the fuzzers
# (fuzz/meson.build); tools/fuzz.sh runs each target FUZZ_SECONDS from its
# kept corpus, fails on any fuzzer failure or artifact, and prints edges
# (cov:) per target.  fuzz-merge minimises fuzz/corpus/ with what the runs
# found; fuzz-selftest shows that a failing target fails `make fuzz`.
fuzz: deps-san build-fuzz/build.ninja
	ninja -C build-fuzz
	tools/fuzz.sh build-fuzz $(FUZZ_SECONDS)

fuzz-merge: deps-san build-fuzz/build.ninja
	ninja -C build-fuzz
	tools/fuzz.sh --merge build-fuzz

fuzz-selftest: deps-san
	test -f build-fuzz-broken/build.ninja || CC=clang meson setup \
	  build-fuzz-broken -Dfuzzers=enabled -Dfuzz_broken=true \
	  -Dtests=disabled -Db_sanitize=address,undefined -Db_lundef=false \
	  -Dbuildtype=debugoptimized $(MESON_OPTS)
	ninja -C build-fuzz-broken fuzz/fuzz_broken_libfuzzer
	@if tools/fuzz.sh build-fuzz-broken 60 broken; then \
	  echo "fuzz-selftest: a crashing target did not fail tools/fuzz.sh"; \
	  exit 1; \
	else echo "fuzz-selftest: a crashing target fails the fuzz run: good"; fi

build-clang/build.ninja:
	CC=clang meson setup build-clang -Dwerror=true -Dtests=enabled \
	  $(MESON_OPTS)

clang: deps-san build-clang/build.ninja
	ninja -C build-clang
	meson test -C build-clang --print-errorlogs --num-processes $(NPROC) \
	  --suite unit --suite conformance --suite smoke

# musl: Debian's musl-gcc searches only musl's headers; the kernel's
# (linux/futex.h, asm/...) come after them.  Debian's libcmocka is built
# for glibc, so cmocka is built here from Debian's own source package
# (apt-get source cmocka, which needs a deb-src entry: as root one is
# added under /etc/apt/sources.list.d from the system's deb entries) into
# build-musl/cmocka/, compiled with musl-gcc into a static library that
# pkg-config finds through build-musl/cmocka/native.ini; pkg-config sees
# nothing else, so no glibc-built library (sd-bus, libnats, OpenSSL) is
# linked in and those drivers are disabled.  make musl runs the smoke
# test, the unit suite and the conformance suite against musl.
MUSL_CMOCKA := build-musl/cmocka
MUSL_CMOCKA_DEFS := -DHAVE_SIGNAL_H -DHAVE_INTTYPES_H -DHAVE_STRINGS_H \
	-DHAVE_MALLOC_H -DHAVE_SETJMP_H -DHAVE_GCC_THREAD_LOCAL_STORAGE \
	-DHAVE_CLOCK_GETTIME -DHAVE_CLOCK_REALTIME -DHAVE_SIGLONGJMP \
	-DHAVE_STRSIGNAL -DHAVE_STRUCT_TIMESPEC
MUSL_DEB_SRC := /etc/apt/sources.list.d/libipc-deb-src.sources

$(MUSL_CMOCKA)/lib/libcmocka.a:
	@if ! apt-get source --print-uris cmocka >/dev/null 2>&1; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "make musl: apt-get source cmocka needs a deb-src entry in /etc/apt/sources.list*;"; \
	    echo "make musl: add one (or run make musl as root, which adds $(MUSL_DEB_SRC))"; \
	    exit 1; \
	  fi; \
	  echo "make musl: adding $(MUSL_DEB_SRC) (deb-src of the system's Debian entries)"; \
	  { if [ -f /etc/apt/sources.list.d/debian.sources ]; then \
	      sed 's/^Types: deb$$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources; \
	    else echo "Types: deb-src"; \
	      echo "URIs: http://deb.debian.org/debian"; \
	      echo "Suites: $$(. /etc/os-release && echo $$VERSION_CODENAME)"; \
	      echo "Components: main"; \
	      echo "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"; \
	    fi; } > $(MUSL_DEB_SRC).tmp && mv $(MUSL_DEB_SRC).tmp $(MUSL_DEB_SRC); \
	  apt-get update -q >/dev/null || { echo "make musl: apt-get update failed"; exit 1; }; \
	fi
	rm -rf $(MUSL_CMOCKA)/src && mkdir -p $(MUSL_CMOCKA)/src $(MUSL_CMOCKA)/lib/pkgconfig
	cd $(MUSL_CMOCKA)/src && apt-get source -q cmocka >/dev/null 2>apt.err \
	  || { cat apt.err; echo "make musl: apt-get source cmocka failed"; exit 1; }
	@set -e; d=$$(ls -d $(MUSL_CMOCKA)/src/cmocka-*/ | head -n 1); \
	echo "make musl: compiling $$d""src/cmocka.c with musl-gcc"; \
	musl-gcc -O2 -std=gnu11 -fPIC -w -I$$d/include $(MUSL_CMOCKA_DEFS) \
	  -c $$d/src/cmocka.c -o $(MUSL_CMOCKA)/lib/cmocka.o; \
	mkdir -p $(MUSL_CMOCKA)/include; cp $$d/include/cmocka.h $(MUSL_CMOCKA)/include/; \
	v=$$(sed -n 's/^Version: *//p' $$d/../*.dsc | head -n 1); \
	printf '%s\n' "Name: cmocka" "Description: cmocka built with musl-gcc" \
	  "Version: $${v%%-*}" "Libs: -L$(abspath $(MUSL_CMOCKA))/lib -lcmocka" \
	  "Cflags: -I$(abspath $(MUSL_CMOCKA))/include" \
	  > $(MUSL_CMOCKA)/lib/pkgconfig/cmocka.pc; \
	printf '%s\n' "[properties]" \
	  "pkg_config_libdir = ['$(abspath $(MUSL_CMOCKA))/lib/pkgconfig']" \
	  > $(MUSL_CMOCKA)/native.ini
	ar rcs $@ $(MUSL_CMOCKA)/lib/cmocka.o

# Order-only: a rebuilt cmocka does not reconfigure a configured build-musl
# (make clean starts over).
build-musl/build.ninja: | $(MUSL_CMOCKA)/lib/libcmocka.a
	CC=musl-gcc \
	CFLAGS="-idirafter /usr/include -idirafter /usr/include/$$(gcc -dumpmachine)" \
	  meson setup build-musl --native-file $(MUSL_CMOCKA)/native.ini \
	  -Dwerror=true -Dexamples=disabled -Dtests=enabled \
	  -Dfuzzers=disabled -Ddbus=disabled -Dnats=disabled -Dtls=disabled \
	  -Dman=disabled $(MESON_OPTS)

musl: deps-build
	$(call need,$(MUSL_PKGS))
	$(MAKE) build-musl/build.ninja
	ninja -C build-musl
	IPC_TEST_TIME_FACTOR=2 meson test -C build-musl --print-errorlogs \
	  --num-processes $(NPROC) --suite smoke --suite unit --suite conformance

# valgrind: the whole conformance suite once per driver under memcheck
# (the 'valgrind' suite of tests/meson.build, deadlines scaled 10x); an
# error or a definite leak fails it.
VALGRIND := valgrind --quiet --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite

valgrind: deps-test $(BUILD)/build.ninja
	$(call need,$(VALGRIND_PKGS))
	meson configure $(BUILD) -Dtests=enabled >/dev/null
	ninja -C $(BUILD)
	IPC_TEST_TIME_FACTOR=10 meson test -C $(BUILD) --print-errorlogs \
	  --suite valgrind --num-processes $(NPROC) --wrapper '$(VALGRIND)'

# The prefix is set on every install, so PREFIX= is honoured whatever the
# build directory was configured with.  As root into the real filesystem,
# ldconfig refreshes the linker cache (installed programs also find the
# library through their relative rpath).
install: deps-build $(BUILD)/build.ninja
	meson configure $(BUILD) -Dprefix=$(abspath $(PREFIX)) >/dev/null
	ninja -C $(BUILD)
	meson install -C $(BUILD) $(if $(DESTDIR),--destdir $(DESTDIR))
	@if [ "$$(id -u)" = 0 ] && [ -z "$(DESTDIR)" ] && \
	    command -v ldconfig >/dev/null; then ldconfig; fi

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz build-fuzz-broken build-clang \
	  build-musl

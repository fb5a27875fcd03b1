# redduck — the two set-up commands: `make demo` and `make test`. Both bootstrap first (idempotent).
JOBS ?= 2
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all bootstrap build build-asan test test-unit demo fuzz clean

all: build

bootstrap:
	@bash scripts/bootstrap.sh

build: bootstrap
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: bootstrap
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DRD_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

# Every test, in the normal build and again under ASan+UBSan.
test: build build-asan
	@echo "== tests (release build) =="
	@cd $(BUILD) && AWS_EC2_METADATA_DISABLED=true ctest --output-on-failure -j $(JOBS)
	@echo "== tests (ASan+UBSan build) =="
	@cd $(ASAN_BUILD) && AWS_EC2_METADATA_DISABLED=true ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS)

test-unit: build
	@cd $(BUILD) && AWS_EC2_METADATA_DISABLED=true ctest --output-on-failure -j $(JOBS) -R '^unit\.'

# The demo needs only the redduck binary (not the tests).
demo: bootstrap
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target redduck
	@bash scripts/demo.sh

# libFuzzer targets (clang), each run for FUZZ_SECONDS.
fuzz: bootstrap
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DRD_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@bash scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

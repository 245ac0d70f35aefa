# SwiftHES: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
export PATH := $(PATH):/opt/swift/usr/bin

# The benchmark to run (`make bench NAME=codec.decode_lp96`); empty runs all.
NAME ?=
# Seconds `make run` keeps the pipeline up after its collection cycle (empty: stops at once; 0: until Ctrl-C).
DURATION ?=

.PHONY: deps build build-release test run bench compose-check fuzz fuzz-smoke clean

deps:
	@scripts/install-deps.sh

build: deps
	swift build

build-release: deps
	swift build -c release

## Run the whole pipeline locally: private PostgreSQL, kafka-dev, all services, simulated meters and IMS.
run: build
	@scripts/run-local.sh $(DURATION)

## Run the test suite (unit, integration with a private PostgreSQL and the Kafka mock cluster, whole processes).
test: deps
	swift build --build-tests
	swift test --skip-build --skip ChaosTests
	# The short chaos run on its own, so it does not compete with the other suites for the cores.
	swift test --skip-build --filter ChaosTests

## Benchmarks print `BENCH <name> <value> <unit>` lines.
bench: build-release
	swift run -c release --skip-build hes-bench $(NAME)

## libFuzzer targets (Fuzz/): FUZZ_SECONDS per target (default 600); `fuzz-smoke` runs each for 15 s (CI).
fuzz:
	Fuzz/run.sh

fuzz-smoke:
	FUZZ_SECONDS=15 Fuzz/run.sh

## Validate the compose file for deployments (no Docker engine needed).
compose-check:
	docker-compose -f compose/docker-compose.yml config --quiet

clean:
	rm -rf .build .hes-run

# certsweep: `make demo` to see it work, `make test` to check it.
GO      ?= go
BIN     := bin/certsweep
FUZZTIME ?= 30s

.PHONY: all build test bench gobench lint demo fuzz clean interop e2e image

all: build

build:
	CGO_ENABLED=1 $(GO) build -o $(BIN) ./cmd/certsweep

# The test suite: vet, then every package with the race detector. Tests only
# touch loopback addresses and temporary files.
test: lint
	CGO_ENABLED=1 $(GO) test -race -count=1 ./...

# The benchmark suite (BENCHMARKS.md): a 2,000-endpoint lab in its own
# process, certsweep against a crypto/tls baseline, dead space, a mostly
# silent /16 in a network namespace of its own (each discovery mode; needs
# root or unprivileged user namespaces, else skipped with a line saying so;
# `certsweep-bench silent` runs it alone), ingest and reports; prints one
# table. About 4 minutes on 2 cores. No timing assertions live in `make test`.
bench: build
	CGO_ENABLED=1 $(GO) build -o bin/certsweep-bench ./cmd/certsweep-bench
	./bin/certsweep-bench run -certsweep $(BIN)

# Go benchmarks for the hot paths: target iteration, certificate parsing,
# the batch writer, a loopback sweep.
gobench:
	CGO_ENABLED=1 $(GO) test -run '^$$' -bench . -benchmem -count 3 ./...

lint:
	@fmt=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi
	$(GO) vet ./...

# The container image (deploy/Dockerfile; needs Docker with BuildKit, which
# reads deploy/Dockerfile.dockerignore). deploy/'s tests check that it
# builds certsweep as the build target above does.
IMAGE ?= certsweep:latest
image:
	docker build -f deploy/Dockerfile -t $(IMAGE) .

# Builds certsweep, starts a loopback lab of TLS endpoints, sweeps it into
# certsweep-demo.db and prints the inventory.
demo: build
	./$(BIN) demo

# Real server software on 127.0.93.1 (postfix, dovecot, slapd, PostgreSQL,
# MariaDB, vsftpd, prosody, xrdp), one certificate per endpoint: every leaf
# certsweep stores must match the one openssl s_client (rdp_cert.py for RDP)
# fetches. Root on Debian; installs the packages the first time (about 20 s),
# then about 10 s. KEEP=1 leaves the lab running (testdata/interop/README.md).
interop: build
	CERTSWEEP=$(BIN) bash testdata/interop/run.sh

# Browser and Prometheus checks: the HTML report and serve's pages in
# headless Chromium (rows, filters, sorting, no console or CSP error, a
# <script> subject shown as text, screenshots), /metrics through
# promtool check metrics, and the README's scrape config and alert rules
# through promtool check config / check rules / test rules. Installs
# Debian's chromium and prometheus packages the first time (root), then
# about 30 s. SCREENSHOTS=docs refreshes the README's screenshots.
SCREENSHOTS ?= bin/e2e
e2e:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium prometheus; fi
	mkdir -p $(SCREENSHOTS)
	CERTSWEEP_SCREENSHOTS=$(abspath $(SCREENSHOTS)) CGO_ENABLED=1 $(GO) test -tags e2e -race -count=1 -run '^TestE2E$$' -v ./cmd/certsweep

# Each fuzz target for FUZZTIME (make fuzz FUZZTIME=10m for a real campaign).
# Minimising a new input is capped at 10s: the default 60s stalls a target
# (0 execs/s) on every long input it finds.
# New crashers land in testdata/fuzz/ and then run as regression tests in
# `make test`.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseInput$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./scanner
	$(GO) test -run '^$$' -fuzz '^FuzzParsePorts$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./scanner
	$(GO) test -run '^$$' -fuzz '^FuzzParseCert$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./scanner
	$(GO) test -run '^$$' -fuzz '^FuzzCertAgainstX509$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./scanner
	$(GO) test -run '^$$' -fuzz '^FuzzPreamble$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./scanner
	$(GO) test -run '^$$' -fuzz '^FuzzEncoders$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s ./report

clean:
	rm -rf bin certsweep-demo.db certsweep-demo.db-wal certsweep-demo.db-shm

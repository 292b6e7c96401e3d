# signalbox: `make run` and `make test` work on a machine with only Node and npm.
# Bun (pinned) is installed from the npm registry into .tools/ the first time.

BUN_VERSION := 1.4.4
TOOLS       := $(CURDIR)/.tools
BUN         ?= $(TOOLS)/node_modules/.bin/bun
export PATH := $(dir $(BUN)):$(PATH)
# Deno (pinned) comes from the npm registry too, into its own prefix so npm leaves Bun alone.
DENO_VERSION := 2.9.6
DENO        ?= $(TOOLS)/deno/node_modules/.bin/deno
# Test files that talk to a server through startServer() run once more against Deno, and
# once more against a two-node cluster sharing a redis-server.
INTEGRATION_TESTS = $(addprefix ./,$(shell grep -lw startServer test/*.test.ts))

.PHONY: help setup run dev test typecheck build soak demo-page screenshot clean run-deno build-deno release
.PHONY: client bench bench-quick bench-cluster

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(TOOLS)/node_modules/.bin/bun:
	npm install --prefix $(TOOLS) --no-save --no-audit --no-fund --loglevel=error bun@$(BUN_VERSION)
	@# npm may skip Bun's postinstall (which puts the real binary in place): run it then.
	@$@ --version >/dev/null 2>&1 || (cd $(TOOLS)/node_modules/bun && node install.js)
	@$@ --version

node_modules/.installed: package.json bun.lock | $(BUN)
	$(BUN) install --frozen-lockfile
	@touch $@

$(TOOLS)/deno/node_modules/.bin/deno:
	npm install --prefix $(TOOLS)/deno --no-save --no-audit --no-fund --loglevel=error deno@$(DENO_VERSION)
	@# As with Bun: if npm skipped the postinstall that puts the binary in place, run it.
	@$@ --version >/dev/null 2>&1 || (cd $(TOOLS)/deno/node_modules/deno && node install.cjs)
	@$@ --version | head -1

setup: node_modules/.installed ## Install Bun and the dependencies (done by the other targets)

run: setup ## Start the server on port 9090 (flags: make run ARGS="--port 8080")
	$(BUN) src/main.ts $(ARGS)

dev: setup ## Start with restart on change
	$(BUN) run dev

test: setup $(DENO) ## Run the whole test suite (integration tests on Bun, on Deno, and on a two-node cluster)
	@status=0; \
	$(BUN) test --timeout=30000 $(TEST_ARGS) || status=1; \
	echo "== integration tests against Deno: $(INTEGRATION_TESTS)"; \
	$(DENO) cache --frozen --quiet src/main.deno.ts && \
	SIGNALBOX_TARGET=deno DENO=$(DENO) $(BUN) test --timeout=30000 $(DENO_TEST_ARGS) $(INTEGRATION_TESTS) || status=1; \
	echo "== integration tests against a two-node cluster on Redis: $(INTEGRATION_TESTS)"; \
	SIGNALBOX_TARGET=cluster $(BUN) test --timeout=30000 $(CLUSTER_TEST_ARGS) $(INTEGRATION_TESTS) || status=1; \
	exit $$status

typecheck: setup ## Type-check the sources and tests
	$(BUN) check

build: setup ## Build the executable dist/signalbox
	$(BUN) run build
	@ls -l dist/signalbox

client: setup ## Bundle the typed client for browsers: dist/signalbox-client.js (an ES module)
	$(BUN) run build:client

soak: build ## Churn 100,000 call cycles through dist/signalbox, printing its RSS (SOAK_CYCLES=n)
	$(BUN) bench/soak.ts dist/signalbox $(or $(SOAK_CYCLES),100000)

demo-page: setup ## Embed src/demo/index.html and src/client/ after editing either (writes src/demo/page.ts)
	$(BUN) deploy/demo-page.ts

screenshot: setup ## Retake docs/screenshot.png (the page in a call) with the browser tests
	SIGNALBOX_SCREENSHOT=$(CURDIR)/docs/screenshot.png $(BUN) test test/e2e

run-deno: $(DENO) ## Start the server under Deno (deno task start; ARGS as for run)
	$(DENO) task start $(ARGS)

build-deno: $(DENO) ## Build dist/signalbox-deno with deno compile
	@# deno compile downloads its runtime (denort) from Deno's release server, not from npm;
	@# where that is out of reach, point DENORT_BIN at a denort of the same version.
	$(DENO) task compile || { echo "build-deno: deno compile needs denort $(DENO_VERSION) from Deno's release server, or DENORT_BIN=/path/to/denort" >&2; exit 1; }
	@ls -l dist/signalbox-deno

release: setup ## Cross-compile the release executables into dist/release/ with SHA256SUMS
	$(BUN) deploy/release.ts --outdir dist/release

bench/node_modules/.installed: bench/package.json bench/bun.lock | $(BUN)
	cd bench && $(BUN) install --frozen-lockfile
	@touch $@

bench: build bench/node_modules/.installed ## Benchmarks against PeerJS, the seed server and a bare Bun relay (~15 min): docs/benchmarks.md
	BENCH_COMMAND="make bench" $(BUN) bench/run.ts $(BENCH_ARGS)

bench-quick: build bench/node_modules/.installed ## One short run of every benchmark (~3 min); leaves docs/ alone
	$(BUN) bench/run.ts --quick --no-docs $(BENCH_ARGS)

bench-cluster: build bench/node_modules/.installed ## 200,000 connections over 12 signalbox processes sharing one redis-server (3 runs, under 15 min): docs/benchmarks.md
	BENCH_COMMAND="make bench-cluster" $(BUN) bench/run.ts --cluster $(BENCH_ARGS)

clean: ## Remove build output and installed tools
	rm -rf dist node_modules bench/node_modules $(TOOLS)

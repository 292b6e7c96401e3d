# signalbox: `make run` and `make test` work on a machine with only Node and npm.
# Bun (pinned) is installed from the npm registry into .tools/ the first time.

BUN_VERSION := 1.4.4
TOOLS       := $(CURDIR)/.tools
BUN         ?= $(TOOLS)/node_modules/.bin/bun
export PATH := $(dir $(BUN)):$(PATH)

.PHONY: help setup run dev test typecheck build soak clean bench bench-quick

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

setup: node_modules/.installed ## Install Bun and the dependencies (done by the other targets)

run: setup ## Start the server on port 9090 (flags: make run ARGS="--port 8080")
	$(BUN) src/main.ts $(ARGS)

dev: setup ## Start with restart on change
	$(BUN) run dev

test: setup ## Run the whole test suite
	$(BUN) test $(TEST_ARGS)

typecheck: setup ## Type-check the sources and tests
	$(BUN) check

build: setup ## Build the executable dist/signalbox
	$(BUN) run build
	@ls -l dist/signalbox

soak: build ## Churn 100,000 call cycles through dist/signalbox, printing its RSS (SOAK_CYCLES=n)
	$(BUN) bench/soak.ts dist/signalbox $(or $(SOAK_CYCLES),100000)

bench/node_modules/.installed: bench/package.json bench/bun.lock | $(BUN)
	cd bench && $(BUN) install --frozen-lockfile
	@touch $@

bench: build bench/node_modules/.installed ## Benchmarks against PeerJS, the seed server and a bare Bun relay (~15 min): docs/benchmarks.md
	BENCH_COMMAND="make bench" $(BUN) bench/run.ts $(BENCH_ARGS)

bench-quick: build bench/node_modules/.installed ## One short run of every benchmark (~3 min); leaves docs/ alone
	$(BUN) bench/run.ts --quick --no-docs $(BENCH_ARGS)

clean: ## Remove build output and installed tools
	rm -rf dist node_modules bench/node_modules $(TOOLS)

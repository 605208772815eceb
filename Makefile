# netwarden — see README.md
GO        ?= go
BIN       := bin/netwarden
PKGS      := ./...
TEST_TIMEOUT ?= 20m

.PHONY: all build run demo test test-short check fmt vet fuzz bench chaos clean chromium

all: check build

build:
	$(GO) build -o $(BIN) ./cmd/netwarden

## run: the pipeline on the embedded broker with the real public feeds
run: build
	$(BIN) serve --config netwarden.yaml

## demo: the same, offline, replaying ../shared/data/blocklists
demo: build
	@test -d ../shared/data/blocklists || { echo "demo needs ../shared/data/blocklists next to this checkout"; exit 1; }
	@$(BIN) account demo --config demo.yaml
	$(BIN) serve --config demo.yaml

## test: every test, with the race detector
test: chromium
	$(GO) test -race -timeout $(TEST_TIMEOUT) $(PKGS)

## chromium: Debian's chromium for the dashboard's end-to-end test (TestDashboardE2E), when absent
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
		|| echo "could not install chromium: the dashboard e2e test will try apt-get again, then skip"

test-short:
	$(GO) test -short -timeout $(TEST_TIMEOUT) $(PKGS)

check: fmt vet

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

## fuzz: every fuzz target (feed parsers, resource parsing, record decoding) for FUZZTIME
FUZZTIME ?= 20s
FUZZPKGS := ./ingest/feed/ ./internal/resource/ ./internal/change/
fuzz:
	@for p in $(FUZZPKGS); do \
		for t in $$($(GO) test -list '^Fuzz' $$p | grep ^Fuzz); do \
			echo "== $$p $$t"; $(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) $$p || exit 1; \
		done; \
	done

## bench: benchmarks (long); figures go to bench/README.md
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -timeout 60m ./bench/ ./stream/... ./ingest/... ./query/ ./internal/broker/

## chaos: repeated kill -9 / restart of the whole pipeline
chaos:
	NETWARDEN_CHAOS_ROUNDS=20 $(GO) test -run 'TestKill' -count=1 -timeout 60m ./cmd/netwarden/

clean:
	rm -rf bin data

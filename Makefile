# sibyl: the two commands of a fresh machine are `make demo` and `make test`; each sets itself up.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_MODULES := node_modules/.package-lock.json

.PHONY: help deps system-deps tools build lint format test test-unit test-integration crds demo demo-down bench model manifests clean

help:
	@echo "make demo    the whole system on one machine (control plane, backends, operator, routers, traffic)"
	@echo "make test    the whole test suite, unit and integration (real kube-apiserver, etcd, Redis)"
	@echo "make deps | build | lint | crds | clean"

$(NODE_MODULES): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

system-deps:
	@hack/system-deps.sh

tools: system-deps
	@hack/k8s-tools.sh >/dev/null

deps: system-deps $(NODE_MODULES) tools

build: $(NODE_MODULES)
	npm run build

lint: $(NODE_MODULES)
	npm run typecheck
	npm run lint

format: $(NODE_MODULES)
	npm run format

test: deps build
	npm test

test-unit: $(NODE_MODULES)
	npm test -- --selectProjects unit

test-integration: deps build
	npm test -- --selectProjects integration

crds: build
	node dist/cli/main.js crds --out crds --docs docs/api.md

model: build
	node dist/cli/main.js train --simulate --out models/latency

DEMO_STATE ?= $(or $(XDG_STATE_HOME),$(HOME)/.local/state)/sibyl-demo

demo: deps build
	node dist/cli/main.js demo --state-dir $(DEMO_STATE) $(if $(KEEP),--keep,)

# Stops what `make demo KEEP=1` left running.
demo-down:
	@if [ -f $(DEMO_STATE)/logs/pids ]; then xargs -r kill < $(DEMO_STATE)/logs/pids 2>/dev/null || true; fi
	@SIBYL_CLUSTER_DIR=$(DEMO_STATE)/cluster hack/local-cluster.sh down

clean:
	rm -rf dist coverage

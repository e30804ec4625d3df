# sibyl: the two commands of a fresh machine are `make demo` and `make test`; each sets itself up.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_MODULES := node_modules/.package-lock.json

.PHONY: help deps system-deps tools build lint format test test-unit test-integration crds demo bench model manifests clean

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
	node dist/cli/main.js crds --out crds

demo:
	@echo "make demo: not built yet; it arrives with issue 10 (the whole system on one machine)." >&2
	@exit 3

clean:
	rm -rf dist coverage

# The README's commands. Everything installs itself (scripts/install.sh) on a fresh Debian 12.
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: demo test install unit lint docs sanity package matrix molecule scenario lab-down bench

## demo: the main job: a lab fleet, the rollout, mTLS proven from a client host, a summary table
demo: install
	scripts/demo

## test: everything CI runs: lint, the docs, ansible-test sanity, unit and module tests, the package, the ansible-core matrix, all molecule scenarios
test: install
	scripts/test-all

## unit / lint / docs / sanity / package / matrix / molecule: one phase of `make test`
## (docs also builds the site: .build/docs/html/index.html)
unit lint docs sanity package matrix molecule: install
	scripts/test-all $@

## scenario S=<name>: one molecule scenario (extensions/molecule/<name>)
scenario: install
	molecule test -s $(S)

## lab-down: remove every container and network any lab (demo or molecule) started
lab-down:
	scripts/lab purge

## bench: the benchmarks in bench/ (results in docs/performance.md)
bench: install
	python bench/issuance.py

install:
	@bash scripts/install.sh

.PHONY: generate build test up down bench

generate:
	scripts/generate.sh

build:
	swift build

test:
	scripts/test.sh

bench:
	Benchmarks/run.sh

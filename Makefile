.PHONY: generate build test up down bench format

generate:
	scripts/generate.sh

build:
	swift build

test:
	scripts/test.sh

bench:
	Benchmarks/run.sh

format:
	scripts/format.sh

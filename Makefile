# The two commands that matter (see README.md):
#   make run   — the server on its embedded defaults (0.0.0.0:8080, SQLite under ./data)
#   make test  — every test; PostgreSQL variants run when SECUREVOX_TEST_DATABASE_URL is set
.PHONY: run test lint ci

run:
	cargo run --release -- serve

test:
	cargo test --workspace --locked

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

ci:
	bash .ci/run

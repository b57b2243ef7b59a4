# The two commands that matter (see README.md):
#   make run   — the web client built, then the server on its embedded defaults
#                (0.0.0.0:8080, SQLite under ./data, the web client at /)
#   make test  — every test; PostgreSQL variants run when SECUREVOX_TEST_DATABASE_URL is set
.PHONY: run test lint ci web-deps web

run: web
	cargo run --release -- serve

test: web
	npm run --prefix web lint
	npm test --prefix web
	cargo test --workspace --locked

lint: web-deps
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	npm run --prefix web lint

# The web client's packages (pinned in web/package-lock.json), installed once.
web-deps:
	@test -d web/node_modules || npm ci --prefix web --no-audit --no-fund

# The web client, type-checked and bundled into web/dist (which the server embeds).
web: web-deps
	npm run --prefix web build

ci:
	bash .ci/run

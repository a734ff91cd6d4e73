# The project's verbs. `make demo` and `make test` are the README's two commands.
.PHONY: setup demo test lint format typecheck messages migrate bench

setup:
	scripts/setup.sh

demo:
	scripts/demo.sh

test:
	scripts/test.sh

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format:
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

typecheck:
	.venv/bin/mypy .

messages:
	DJANGO_DEBUG=1 .venv/bin/python manage.py makemessages -l fr -l en --no-location --ignore=.venv --ignore=node_modules --ignore=google_emulator
	DJANGO_DEBUG=1 .venv/bin/python manage.py compilemessages --ignore=.venv --ignore=node_modules

migrate:
	DJANGO_DEBUG=1 .venv/bin/python manage.py migrate

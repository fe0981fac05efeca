# newswatch: one long-lived service. Config and data live in volumes.
#   docker build -t newswatch .
#   docker run -v $PWD/config.yaml:/config/config.yaml -v newswatch-data:/data -p 127.0.0.1:8787:8787 newswatch
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NEWSWATCH_CONFIG=/config/config.yaml

RUN groupadd --system --gid 10001 newswatch \
    && useradd --system --uid 10001 --gid newswatch --home-dir /data --shell /usr/sbin/nologin newswatch \
    && mkdir -p /app /config /data \
    && chown newswatch:newswatch /data

# Debian's Chromium, for sources with `render: browser` (started only by those).
# Not pinned: a browser that reads the web must take Debian's security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# The same install the README's quick start does, without the editable flag: the
# locked dependencies first (pinned, hash-checked; a layer that outlives code
# changes), then newswatch itself with nothing more resolved.
COPY requirements.txt ./
RUN pip install --no-cache-dir --require-hashes -r requirements.txt
COPY pyproject.toml README.md ./
COPY crawler ./crawler
COPY spiders ./spiders
COPY alerts ./alerts
RUN pip install --no-cache-dir --no-deps .

# A default configuration; mount your own over /config/config.yaml. Paths in it are
# relative to the file, so point `database` and `delivery.outbox` at /data.
COPY --chown=10001:10001 config.yaml /config/config.yaml

USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# The web UI must listen beyond loopback inside a container; set web.host: 0.0.0.0
# and web.token_env in the config (the token is required off loopback).
EXPOSE 8787

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('NEWSWATCH_WEB_PORT', '8787'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["newswatch"]
CMD ["run"]

# poe2openai: docker build -t poe2openai . && docker run -p 8080:8080 -v poe2openai-data:/data poe2openai
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    CONFIG_DIR=/data \
    SHUTDOWN_TIMEOUT=8

WORKDIR /app
COPY pyproject.toml setup.cfg README.md LICENSE ./
COPY src ./src
RUN pip install . \
    && rm -rf /app/src /root/.cache \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin poe2openai \
    && mkdir -p /data \
    && chown poe2openai:poe2openai /data

# models.yaml and the upload cache live here; mount a volume or a host folder writable by uid 10001.
VOLUME ["/data"]
EXPOSE 8080
USER poe2openai

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8080'), timeout=4)"]

# docker stop waits 10 s before SIGKILL; SHUTDOWN_TIMEOUT=8 lets open streams end cleanly first.
STOPSIGNAL SIGTERM
CMD ["poe2openai"]

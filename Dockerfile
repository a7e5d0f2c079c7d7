# pocketca in a container: data in the /data volume, HTTPS on 0.0.0.0:8443, as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin pocketca \
    && install -d -o pocketca -g pocketca -m 0700 /data

WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY migrations ./migrations
RUN pip install ".[postgres]"

USER pocketca
WORKDIR /data
ENV POCKETCA_DATA_DIR=/data \
    POCKETCA_HOST=0.0.0.0 \
    POCKETCA_PORT=8443 \
    POCKETCA_HTTP_PORT=8080
VOLUME ["/data"]
EXPOSE 8443 8080

# Trusts only the CA in the volume; the service certificate always names localhost.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import ssl, urllib.request; urllib.request.urlopen('https://localhost:8443/healthz', context=ssl.create_default_context(cafile='/data/ca.pem'), timeout=4)"]

ENTRYPOINT ["pocketca"]
CMD ["serve"]

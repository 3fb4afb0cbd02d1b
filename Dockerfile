# tokenomics in a container: `run --loop` by default; any other command by name
# (`docker run --rm -v tokenomics-data:/data tokenomics status`).
#
#   docker build -t tokenomics .                                              # sim mode: no extras needed
#   docker build --build-arg EXTRAS=alpaca,gemini,notify -t tokenomics:paper .  # Alpaca + Gemini, notifications
#
# EXTRAS are the runtime extras of the mode you run (see README "Optional extras"): none for sim,
# alpaca and gemini (or crypto for ccxt) for paper and live, notify for notifications. The install
# steps are the same commands as README's "Deploy > systemd" section (a test checks they match).
# The store and the logs live on the /data volume; the shipped models are in the image.
ARG PYTHON_VERSION=3.12

FROM python:${PYTHON_VERSION}-slim AS build
ARG EXTRAS=notify
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/tokenomics/app
COPY pyproject.toml README.md ./
COPY src ./src
RUN python3 -m venv /opt/tokenomics/venv \
 && /opt/tokenomics/venv/bin/pip install --no-cache-dir -e ".[${EXTRAS}]"

FROM python:${PYTHON_VERSION}-slim
LABEL org.opencontainers.image.title="tokenomics" \
      org.opencontainers.image.description="News- and model-driven trading toolkit: the trading loop and its commands"
# DL3064 is a false positive: "TOKENOMICS_" is this program's settings prefix and none of these is a
# secret; keys come from the environment at run time (`--env-file .env`, compose's env_file, a Secret).
# hadolint ignore=DL3064
ENV PATH=/opt/tokenomics/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TOKENOMICS_CONFIG=/opt/tokenomics/app/config/settings.yaml \
    TOKENOMICS_STORE__PATH=/data/tokenomics.db \
    TOKENOMICS_LOGS__DIR=/data/logs \
    TOKENOMICS_ML__MODELS_DIR=/data/models
RUN groupadd --system --gid 10001 tokenomics \
 && useradd --system --uid 10001 --gid tokenomics --home-dir /data --no-create-home --shell /usr/sbin/nologin tokenomics \
 && mkdir -p /data \
 && chown tokenomics:tokenomics /data
COPY --from=build /opt/tokenomics /opt/tokenomics
COPY trained_models /opt/tokenomics/app/trained_models
COPY config /opt/tokenomics/app/config
WORKDIR /data
USER 10001:10001
VOLUME ["/data"]
HEALTHCHECK --interval=60s --timeout=30s --start-period=120s --retries=3 CMD ["tokenomics", "health"]
ENTRYPOINT ["tokenomics"]
CMD ["run", "--loop"]

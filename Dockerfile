# syntax=docker/dockerfile:1
# One image pattern for every workload: docker build --build-arg WORKSPACE=services/orders -t flywheel/orders .
ARG NODE_IMAGE=node:20.19-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY packages ./packages
COPY services ./services
COPY gateway ./gateway
RUN npm ci --no-audit --no-fund && npx tsc -b
ARG WORKSPACE
RUN test -n "$WORKSPACE" && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*
ARG WORKSPACE
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/packages ./packages
COPY --from=build --chown=root:root /app/${WORKSPACE} ./${WORKSPACE}
WORKDIR /app/${WORKSPACE}
USER node
# tini forwards SIGTERM so the service's bounded graceful shutdown runs.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--enable-source-maps", "dist/main.js"]

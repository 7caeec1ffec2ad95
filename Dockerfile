# syntax=docker/dockerfile:1.12
# check=error=true
#
# One image pattern for every workload. The build context is the repository root; the workspace
# is a build argument and names the image:
#   docker build --build-arg WORKSPACE=services/orders -t <registry>/orders:<tag> .
#   docker build --build-arg WORKSPACE=gateway -t <registry>/gateway:<tag> .
# Node 22: @whatwg-node/promise-helpers 2 (under @apollo/server 5) declares Node >= 22.15.
ARG NODE_IMAGE=node:22.23.3-bookworm-slim

# Only the npm manifests, so the dependency layers are reused until a package.json changes.
FROM ${NODE_IMAGE} AS manifests
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/events/package.json packages/events/
COPY packages/service-kit/package.json packages/service-kit/
COPY packages/testing/package.json packages/testing/
COPY services/content/package.json services/content/
COPY services/catalog/package.json services/catalog/
COPY services/orders/package.json services/orders/
COPY services/live/package.json services/live/
COPY services/community/package.json services/community/
COPY services/membership/package.json services/membership/
COPY services/referral/package.json services/referral/
COPY gateway/package.json gateway/

# Compile the workspace and the packages it references (tsc -b follows project references).
# `npm ci`, as in .ci/run: exactly the lockfile (it records every platform's optional packages).
FROM manifests AS build
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.base.json ./
COPY packages ./packages
COPY services ./services
COPY gateway ./gateway
ARG WORKSPACE
RUN test -f "${WORKSPACE}/tsconfig.json" || { echo "set --build-arg WORKSPACE=services/<name> or gateway" >&2; exit 1; }
RUN npx tsc -b "${WORKSPACE}"
# What runs: package.json + dist of the workspace and of the packages it uses, the SDL the
# subgraphs read at runtime (../src/schema.graphql and module ../src/*/schema.graphql from dist)
# and the gateway's default supergraph.
RUN set -eu; \
    for ws in packages/events packages/service-kit "${WORKSPACE}"; do \
      mkdir -p "/out/${ws}" && cp "${ws}/package.json" "/out/${ws}/" && cp -R "${ws}/dist" "/out/${ws}/dist"; \
    done; \
    if [ -f "${WORKSPACE}/src/schema.graphql" ]; then \
      cd "${WORKSPACE}" && for f in src/schema.graphql src/*/schema.graphql; do \
        if [ -f "$f" ]; then mkdir -p "/out/${WORKSPACE}/$(dirname "$f")" && cp "$f" "/out/${WORKSPACE}/$f"; fi; \
      done && cd /app; \
    fi; \
    if [ -f "${WORKSPACE}/supergraph.graphql" ]; then cp "${WORKSPACE}/supergraph.graphql" "/out/${WORKSPACE}/"; fi; \
    find /out \( -name '*.d.ts' -o -name '*.d.ts.map' -o -name '*.tsbuildinfo' \) -delete

# Production dependencies of this workspace only (the gateway gets no mongoose, a subgraph no
# React), without what only tools read: source maps and type declarations (half the size).
FROM manifests AS deps
ARG WORKSPACE
RUN npm install --omit=dev --workspace="${WORKSPACE}" --ignore-scripts --no-audit --no-fund \
    && rm -f node_modules/@flywheel/testing \
    && find node_modules -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete

FROM ${NODE_IMAGE} AS runtime
# tini is PID 1: it forwards SIGTERM to Node (whose bounded graceful shutdown then runs) and
# reaps zombies. npm, npx, corepack and yarn are build tools and leave the running image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
    && rm -rf /var/lib/apt/lists/* \
    && rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
      /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*
ARG WORKSPACE
LABEL org.opencontainers.image.title="flywheel ${WORKSPACE}" \
      org.opencontainers.image.licenses="Apache-2.0"
# A container is reached through its network namespace: listen on every interface there (the
# processes default to loopback, for laptops). The chart sets HOST too.
ENV NODE_ENV=production \
    HOST=0.0.0.0
WORKDIR /app
# Owned by root and read-only to the app user: the process cannot change its own code.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /out/ ./
WORKDIR /app/${WORKSPACE}
# The node user of the base image, numerically, so Kubernetes can verify runAsNonRoot.
USER 1000:1000
ENTRYPOINT ["/usr/bin/tini", "--"]
# Telemetry is preloaded before the app (main.ts also imports it first); OTEL_SERVICE_NAME and the
# exporter come from the environment (the chart sets them).
CMD ["node", "--enable-source-maps", "--require", "@flywheel/service-kit/telemetry", "dist/main.js"]

# syntax=docker/dockerfile:1
# The oddjob service and CLI. Multi-stage: compile TypeScript in a build stage;
# ship only the runtime files, as a non-root user.
#
# BASE_IMAGE: any Debian-based image with Node >= 22 and npm in /usr/local/bin.
# Users get the official one; builders without registry access (tests, air-gapped
# CI) pass a locally made equivalent: --build-arg BASE_IMAGE=localhost/node:24.
ARG BASE_IMAGE=node:24-bookworm-slim

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No install scripts: better-sqlite3 ships prebuilt Node-API binaries for linux
# x64/arm64 (glibc and musl) and esbuild its binary as a dependency, so nothing needs
# compiling; an npm that ignores package.json's allowScripts would otherwise try
# node-gyp (and fail for want of python3, make and g++).
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY protocol protocol
COPY server server
COPY cli cli
COPY bin bin
COPY web web
RUN npm run build && npm prune --omit=dev && rm -f web/dist/assets/*.map

FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="oddjob" \
      org.opencontainers.image.description="Run one-off commands inside the runtime of an existing Kubernetes Deployment, with the owner's consent and an audit trail." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# 0.0.0.0: in a container, loopback is unreachable from outside (docker run -p,
# a Service). The store lives on a volume owned by the user the server runs as.
ENV NODE_ENV=production \
    ODDJOB_COMPILED=1 \
    ODDJOB_HOST=0.0.0.0 \
    ODDJOB_DB=/var/lib/oddjob/audit.db
WORKDIR /app
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/dist dist
COPY --from=build /src/bin bin
COPY --from=build /src/web/dist web/dist
COPY LICENSE package.json ./
RUN mkdir -p /var/lib/oddjob && chown 10001:10001 /var/lib/oddjob && chmod 0700 /var/lib/oddjob
VOLUME /var/lib/oddjob
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["node", "/app/bin/oddjob.mjs"]
CMD ["server"]

# syntax=docker/dockerfile:1
# The oddjob service and CLI. Multi-stage: compile TypeScript and native
# modules in a build stage; ship only the runtime files, as a non-root user.
FROM node:20-bookworm-slim AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY protocol protocol
COPY server server
COPY cli cli
COPY bin bin
COPY web web
RUN npx tsc -p tsconfig.build.json && npx vite build --config web/vite.config.ts && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production ODDJOB_COMPILED=1
WORKDIR /app
COPY --from=build /src/node_modules node_modules
COPY --from=build /src/dist dist
COPY --from=build /src/bin bin
COPY --from=build /src/web/dist web/dist
COPY package.json ./
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["node", "/app/bin/oddjob.mjs"]
CMD ["server"]

# syntax=docker/dockerfile:1
# sibyl: one image for `sibyl operator` and `sibyl router` (the chart passes the subcommand).
#   docker build -t REGISTRY/sibyl:0.1.0 .
#   helm install sibyl charts/sibyl -n sibyl-system --create-namespace --set image.repository=REGISTRY/sibyl

ARG NODE_IMAGE=node:20-slim

# 1. Build: every dependency, the TypeScript build, and the default latency model.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build
# The operator loads models/latency at start. Keep a committed model; train one only if none is in the context.
RUN if [ ! -d models/latency ]; then node dist/cli/main.js train --simulate --out models/latency; fi

# 2. Production dependencies only.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# 3. Runtime: no compiler, no dev dependencies, a numeric non-root user (runAsNonRoot can check it).
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    HOME=/tmp
WORKDIR /app
# package.json carries "type": "module": dist/ is ES modules.
COPY --from=deps /app/package.json ./package.json
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/models ./models
COPY --from=build /app/crds ./crds
COPY --from=build /app/proto ./proto
USER 10001:10001
# control API, operator metrics, router gRPC, router metrics
EXPOSE 9443 9090 8080 9091
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["--help"]

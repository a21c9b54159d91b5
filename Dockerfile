# The Pulsewire hub as an image: one hub node per container (docker-compose.yml
# runs two behind nginx; docs/deploy.md). It needs PULSEWIRE_INFLUX_URL (the
# image has no influxd to manage) and, for cluster mode, PULSEWIRE_NATS_URL,
# PULSEWIRE_NODE_ID and PULSEWIRE_OPERATOR_TOKEN. Keep /var/lib/pulsewire on
# a volume: it holds this node's spool (readings ACKed but not yet in InfluxDB).
#
# Install scripts are skipped in both stages: the native modules (lmdb,
# cbor-extract, msgpackr-extract; rolldown and esbuild for the build) load
# prebuilt binaries that npm installs as per-platform packages from the lock
# file. Their scripts would only fall back to compiling, with a toolchain the
# slim image does not have. The test suite runs with scripts skipped too.
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src src
COPY device-sim device-sim
COPY dashboards/web dashboards/web
# dist/src (the hub), dist/device-sim, dist/dashboard (the operator page).
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PULSEWIRE_HOST=0.0.0.0 \
    PULSEWIRE_PORT=8080 \
    PULSEWIRE_DATA_DIR=/var/lib/pulsewire
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /build/dist ./dist
# The node image's unprivileged user (uid 1000) owns only the data dir.
RUN mkdir -p /var/lib/pulsewire && chown node:node /var/lib/pulsewire
USER node
EXPOSE 8080
# Ready, not only alive: /readyz is 503 while InfluxDB does not answer or the spool is full.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PULSEWIRE_PORT || 8080) + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM drains: devices are closed with 1001 and reconnect through the other nodes.
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/main.js"]

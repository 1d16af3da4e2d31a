# syntax=docker/dockerfile:1
# Gatehouse: build with dev dependencies, run with production dependencies only, as a non-root user.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY migrations ./migrations
# The example host app, resource server and demo client (the compose `demo` profile runs them from this image).
COPY examples ./examples
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4000 \
    DATA_DIR=/data/pglite
WORKDIR /app
COPY package.json ./
# Templates and CSS are read from beside package.json at run time.
COPY views ./views
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN ln -s /app/dist/src/cli/main.js /usr/local/bin/gatehouse \
 && mkdir -p /data \
 && chown node:node /data
USER node
# No VOLUME: with DATABASE_URL nothing is kept here, and a declared volume would give every container an
# anonymous one. For the embedded database, mount a volume at /data (DATA_DIR=/data/pglite).
EXPOSE 4000
# No curl in the slim image: Node's fetch checks liveness. The embedded database's first start (creating
# and migrating it) can take a minute on a small machine: failures during the start period do not count.
HEALTHCHECK --interval=10s --timeout=3s --start-period=90s --start-interval=2s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["gatehouse"]
CMD ["serve"]

# The meshfork controller image (`helm install` runs it; see README "Install in a cluster").
#   docker build -t <registry>/meshfork:<version> .
# Stage 1 compiles TypeScript and bundles the `meshfork` executable with its dependencies into one
# ES module (scripts/bundle.mjs, ADR 0022); stage 2 holds only that module, the files it reads
# beside it (Lua filters, re2.wasm) and THIRD_PARTY_LICENSES (no node_modules), runs as a
# non-root user and needs no writable root filesystem.
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/lib/bundle ./
USER 65532:65532
ENTRYPOINT ["node", "/app/meshfork.mjs"]
CMD ["controller"]

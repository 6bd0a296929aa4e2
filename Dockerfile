# The meshfork controller image (`helm install` runs it; see README "Install in a cluster").
#   docker build -t <registry>/meshfork:<version> .
# Stage 1 compiles TypeScript to lib/; stage 2 holds only lib/ and the production dependencies,
# runs as a non-root user and needs no writable root filesystem.
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
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/lib ./lib
USER 65532:65532
ENTRYPOINT ["node", "/app/lib/bin/meshfork.js"]
CMD ["controller"]

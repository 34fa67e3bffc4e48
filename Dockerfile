# ringkv image: compile in one stage, run in a small one as a non-root user with only the
# production dependencies. Build: docker build -t ringkv:0.1.0 .
# Run:   docker run -e RINGKV_SECRET=... -e RINGKV_CLIENT_TOKEN=... -p 7070:7070 -v ringkv:/data ringkv:0.1.0
# kubectl for the Kubernetes autoscaler provisioner (deploy/kubernetes/autoscale-kubectl.sh).
FROM bitnami/kubectl:1.31 AS kubectl

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY lib lib
COPY workers workers
COPY test test
COPY perf perf
RUN npx tsc -p tsconfig.json

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /opt/ringkv
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /src/build/lib build/lib
COPY --from=build /src/build/workers build/workers
COPY --from=kubectl /opt/bitnami/kubectl/bin/kubectl /usr/local/bin/kubectl
COPY deploy/kubernetes/autoscale-kubectl.sh deploy/kubernetes/autoscale-kubectl.sh
RUN mkdir -p /data && chown node:node /data
USER node
ENV RINGKV_HOST=0.0.0.0 RINGKV_PORT=7070 RINGKV_DIR=/data
EXPOSE 7070
VOLUME ["/data"]
ENTRYPOINT ["node", "build/lib/cli/main.js"]
CMD ["start"]

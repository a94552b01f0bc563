# sonde in a container. Run it privileged in the host's pid namespace, with the
# host's tracefs, debugfs, bpffs and BTF mounted (see docker-compose.yml).

# Debian bookworm packages Node.js 18, below sonde's engines floor (>= 20.6), so
# the runtime comes from the official image built on the same Debian release.
FROM node:20-bookworm-slim AS node

FROM debian:bookworm-slim
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules /usr/local/lib/node_modules
COPY --from=node /usr/local/include/node /usr/local/include/node
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
# node-gyp would otherwise download headers that are already here.
ENV npm_config_nodedir=/usr/local

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      clang llvm libbpf-dev libelf-dev zlib1g-dev libnghttp2-dev bpftool make g++ python3 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/sonde
# Dependencies first, so that editing the sources does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# The BPF build reads the build host's /sys/kernel/btf/vmlinux; CO-RE makes the
# result portable to the kernel it later runs on.
RUN npm run build && npm prune --omit=dev

ENTRYPOINT ["bin/sonde"]

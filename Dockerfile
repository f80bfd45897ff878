# syntax=docker/dockerfile:1
#
# One image for the four ragtrace services (gateway, query-processor,
# retrieval, llm-service) plus a tiny health probe. compose.yaml builds it
# under one tag per service (ragtrace-gateway:local, ...: BuildKit builds it
# once, the tags name the same image) and picks the binary with
# `entrypoint:`. By hand:
#
#   docker build -t ragtrace:local .
#   docker run --rm -p 8080:8080 -e LISTEN_ADDR=0.0.0.0:8080 \
#     --entrypoint /app/retrieval ragtrace:local
#
# The services listen on 127.0.0.1 by default, so in a container LISTEN_ADDR
# must be set to 0.0.0.0:PORT (compose.yaml does that).

# The toolchain the workspace is tested with (rust-version in Cargo.toml is
# the minimum). Builder and runtime are both Debian 13 (trixie): the binaries
# link against the glibc they run with.
ARG RUST_VERSION=1.95

# ---------------------------------------------------------------------------
# Build: the whole workspace in one `cargo build`, so the shared dependency
# graph compiles once for all five binaries.
# ---------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-trixie AS builder
WORKDIR /app

# The workspace's release profile keeps line tables (debug =
# "line-tables-only"): about 65 MB of each ~80 MB binary. The image drops them
# and keeps the symbols, so a backtrace still names its functions. For file
# and line numbers: docker compose build --build-arg CARGO_PROFILE_RELEASE_STRIP=none
ARG CARGO_PROFILE_RELEASE_STRIP=debuginfo

# Every workspace member's manifest must be present for cargo to load the
# workspace and check Cargo.lock (--locked), so the whole context is copied;
# .dockerignore keeps target/, .git and local .env files out of it.
COPY . .

# Dependency caching lives in BuildKit cache mounts, not in layers: the crates
# registry and target/ survive between builds, so a source change recompiles
# only the workspace crates. The cache mounts are not part of the image, so the
# binaries are copied out of target/ in the same RUN.
# (No cmake, OpenSSL or protoc needed: TLS is rustls, aws-lc-sys builds with
# the cc toolchain the slim image ships, and the gRPC code is pre-generated.)
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/app/target,sharing=locked \
    cargo build --release --locked --bins \
        -p gateway -p query-processor -p retrieval -p llm-service -p healthcheck \
 && mkdir -p /out \
 && for bin in gateway query-processor retrieval llm-service healthcheck; do \
        cp "target/release/$bin" "/out/$bin"; \
    done

# ---------------------------------------------------------------------------
# Runtime: distroless "cc" = glibc + libgcc + CA certificates, no shell, no
# package manager, running as uid 65532 (nonroot). Debian 13, the same glibc
# as the trixie builder (cc-debian12 stopped receiving security rebuilds on
# 2026-09-01, GoogleContainerTools/distroless#2129). The `nonroot` tag moves
# with those rebuilds, which is the point: `docker compose build --pull`
# picks them up.
# ---------------------------------------------------------------------------
FROM gcr.io/distroless/cc-debian13:nonroot

LABEL org.opencontainers.image.title="ragtrace" \
      org.opencontainers.image.description="Distributed tracing of a RAG pipeline: gateway, query-processor, retrieval, llm-service" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"

WORKDIR /app
COPY --from=builder /out/ /app/
# The documents retrieval indexes at startup.
COPY corpus/ /app/corpus/
ENV CORPUS_DIR=/app/corpus

# nonroot, by number so that runtimes can verify it is not root
USER 65532:65532
# gateway, query-processor, retrieval, llm-service
EXPOSE 8000 3000 8080 8081

# No HEALTHCHECK here: the port differs per service, so compose.yaml sets one
# per service with the probe this image ships (the image has no shell and no
# curl): ["/app/healthcheck", "http://127.0.0.1:PORT/readyz"].
ENTRYPOINT ["/app/gateway"]

# syntax=docker/dockerfile:1
# soakd container image: the Rust binary on distroless, running as non-root 65532.
#   docker build -t REGISTRY/soakd:TAG .
#   docker run --rm -p 9477:9477 REGISTRY/soakd:TAG   # runs /etc/soakd/soakd.toml (from config/)
# In Kubernetes the ConfigMap from config/kubernetes.toml is mounted over /etc/soakd (k8s/).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target dir between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin soakd \
    && install -D -m 0755 target/release/soakd /out/soakd

# cc: glibc + libgcc for the Rust binary, CA certificates for https targets; no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/soakd /usr/local/bin/soakd
# Default and example configs; CMD reads /etc/soakd/soakd.toml.
COPY config/ /etc/soakd/
USER 65532:65532
# Admin port: /metrics, /healthz, /readyz, /status.
EXPOSE 9477
ENTRYPOINT ["/usr/local/bin/soakd"]
CMD ["run", "--config", "/etc/soakd/soakd.toml"]

# podgate container image.
#   docker build -t ghcr.io/podgate/podgate:0.1.0 .
# The builder's Debian release matches the runtime's (bookworm = Debian 12), so the binary's
# glibc fits the distroless cc image (glibc + libgcc, no shell, no package manager).

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# --locked: build exactly Cargo.lock. ring (the only C code) needs just the builder's gcc.
RUN cargo build --release --locked --bin podgate \
 && install -D -m 0755 target/release/podgate /out/podgate

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="podgate" \
      org.opencontainers.image.description="Kubernetes admission webhook guarding Pods" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/podgate /usr/local/bin/podgate
# Numeric, so the kubelet can verify runAsNonRoot without /etc/passwd.
USER 65532:65532
# 8443: webhook (TLS); 9090: plain-HTTP probes (/healthz, /readyz).
EXPOSE 8443 9090
# The binary is PID 1 and handles SIGTERM itself (drain, then exit 0). No CMD: the Deployment
# passes `serve` and its flags; `docker run` without arguments prints the usage.
ENTRYPOINT ["/usr/local/bin/podgate"]

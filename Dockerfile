# Multi-stage build: compile with the Rust toolchain, run on distroless (glibc, CA
# certificates, no shell, no package manager) as the non-root user 65532.
#
#   docker build -t scopegate .
#   docker run -p 8080:8080 -p 9901:9901 \
#     -v $PWD/config:/etc/scopegate:ro \
#     -e SCOPEGATE_INTROSPECTION_SECRET=... \
#     scopegate
#
# The configuration is read from /etc/scopegate/scopegate.yaml (mount a directory: a
# ConfigMap or a bind mount; changes are picked up without a restart). Secrets go in the
# environment and are named in the configuration as ${NAME}; they are never written into
# the image. The root filesystem can be read-only: scopegate writes nothing.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY config config
COPY benches benches
RUN cargo build --profile dist --locked --bin scopegate

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/dist/scopegate /usr/local/bin/scopegate
USER 65532:65532
EXPOSE 8080 9901
# No shell or curl in the image: the binary asks its own admin port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/scopegate", "health", "--url", "http://127.0.0.1:9901/healthz"]
ENTRYPOINT ["/usr/local/bin/scopegate"]
CMD ["run", "--config", "/etc/scopegate/scopegate.yaml"]

# Multi-stage build: compile with the Rust toolchain, run on a small Debian image as a
# non-root user. The configuration is mounted at /etc/scopegate/.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY config config
COPY benches benches
RUN cargo build --release --locked && strip target/release/scopegate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home scopegate
COPY --from=build /src/target/release/scopegate /usr/local/bin/scopegate
USER scopegate
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/scopegate"]
CMD ["run", "--config", "/etc/scopegate/scopegate.yaml"]

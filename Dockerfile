# jetchat's image: the release binary on a slim Debian. compose.yaml builds it.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY migration migration
COPY bench bench
COPY src src
COPY nats nats
COPY docs docs
RUN cargo build --release --locked --bin jetchat

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/jetchat jetchat \
 && mkdir -p /var/lib/jetchat /media \
 && chown jetchat /var/lib/jetchat /media
COPY --from=build /src/target/release/jetchat /usr/local/bin/jetchat
USER jetchat
WORKDIR /var/lib/jetchat
ENV BIND_ADDR=0.0.0.0:8000 DATA_DIR=/var/lib/jetchat MEDIA_DIR=/media RUST_LOG=info
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD curl -fsS http://127.0.0.1:8000/healthz || exit 1
ENTRYPOINT ["jetchat"]
CMD ["serve"]

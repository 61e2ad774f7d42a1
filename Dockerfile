# subsave: multi-stage build. The daemon issue completes the runtime (HEALTHCHECK, ports).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY config ./config
COPY migrations ./migrations
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/subsave --create-home subsave
COPY --from=build /src/target/release/subsave /usr/local/bin/subsave
COPY config /etc/subsave
USER subsave
WORKDIR /var/lib/subsave
ENTRYPOINT ["subsave"]
CMD ["check-config"]

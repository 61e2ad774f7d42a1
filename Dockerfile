# subsave: build with the locked dependencies, run as a non-root user in a slim image.
#   docker build -t subsave .
#   docker run -e SUBSAVE_DATABASE__URL=postgres://... -e SUBSAVE_MAIL__TRANSPORT=smtp \
#     -e SUBSAVE_MAIL__SMTP__HOST=... -e SUBSAVE_WEB__PUBLIC_URL=https://... \
#     -p 8081:8081 -p 127.0.0.1:8080:8080 subsave
# Two listeners: 8081 (web.listen) serves the customer pages, the /v1 API and the Stripe
# webhook, behind your TLS proxy; 8080 (http.listen) serves /healthz, /readyz and /metrics,
# for the operator and Prometheus only: never publish it to the internet.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, in a layer of their own: it is rebuilt only when Cargo.lock changes.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir src migrations && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
 && cargo build --release --locked && rm -rf src
COPY src ./src
COPY config ./config
COPY migrations ./migrations
COPY templates ./templates
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/subsave --create-home --uid 10001 subsave
COPY --from=build /src/target/release/subsave /usr/local/bin/subsave
COPY config/catalog.toml /etc/subsave/catalog.toml
USER subsave
WORKDIR /var/lib/subsave
# The embedded default (SQLite file, .eml files) writes here: keep it on a volume. Production
# sets SUBSAVE_DATABASE__URL (PostgreSQL) and SUBSAVE_MAIL__TRANSPORT=smtp.
VOLUME /var/lib/subsave
# Configuration comes from the environment (SUBSAVE_SECTION__KEY); these are the container's
# defaults: both listeners on all interfaces (inside the container: publish the public port,
# and the ops port only to 127.0.0.1 or a private network, as /metrics is for the operator
# only), the catalog baked into the image.
ENV SUBSAVE_HTTP__LISTEN=0.0.0.0:8080 \
    SUBSAVE_WEB__LISTEN=0.0.0.0:8081 \
    SUBSAVE_CATALOG__FILE=/etc/subsave/catalog.toml
# 8080: ops (health, readiness, metrics); 8081: public (customer pages, /v1, webhooks).
EXPOSE 8080 8081
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["subsave"]
CMD ["run", "--log-format", "json"]

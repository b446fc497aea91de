# The broker's container image: built in a Rust image, shipped on distroless (glibc, CA certificates, no shell),
# running as a non-root user. TLS is rustls, so no OpenSSL is needed at run time.
#   docker build -t ghcr.io/caas-broker/caas-broker:0.1.0 .
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rust-toolchain.toml ./
COPY src ./src
COPY catalog ./catalog
RUN cargo build --release --locked --bin caas-broker && strip target/release/caas-broker

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/caas-broker /usr/local/bin/caas-broker
COPY --from=build /src/catalog /etc/caas-broker/catalog
USER 65532:65532
EXPOSE 8080
ENV CAAS_BROKER__LISTEN=0.0.0.0:8080
ENTRYPOINT ["/usr/local/bin/caas-broker"]
CMD ["serve"]

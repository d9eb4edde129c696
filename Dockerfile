# syntax=docker/dockerfile:1.7
# One image for every role: usersvc gateway|api|service|worker|migrate|…
#
#   docker build --build-arg VERSION=1.2.3 --build-arg COMMIT=$(git rev-parse HEAD) -t usersvc/usersvc:1.2.3 .
#
# GO_IMAGE and BASE_IMAGE name the two base images; their defaults are the
# official ones. A builder that cannot pull them passes images of its own
# with the same contents (deploy/deploytest's TestImage passes stand-ins it
# builds from Debian, as no registry is reachable on the test machines).
#
# Stage 1 builds a static binary (no cgo: SQLite is the pure-Go driver;
# -tags nomsgpack leaves gin's MessagePack codec out, as `make build` does);
# stage 2 is distroless/static as the nonroot user, with nothing in it but
# the binary, CA certificates and tzdata: no shell, so the health check is
# the binary's own `usersvc healthcheck`. deploy/deploytest builds this file
# with podman and runs the image (TestImage), and runs its build command
# outside any container and checks the binary it makes.

ARG GO_VERSION=1.26.8
ARG GO_IMAGE=golang:${GO_VERSION}-bookworm
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${GO_IMAGE} AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
# go.mod replaces github.com/ccojocar/zxcvbn-go with this copy: without it
# `go mod download` fails (reading third_party/zxcvbn-go/go.mod).
COPY third_party ./third_party
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY api ./api
COPY cmd ./cmd
COPY internal ./internal
COPY sdk ./sdk
ARG VERSION=dev
ARG COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -tags nomsgpack -ldflags="-s -w -X github.com/usersvc/usersvc/internal/buildinfo.Version=${VERSION} -X github.com/usersvc/usersvc/internal/buildinfo.Commit=${COMMIT}" -o /out/usersvc ./cmd/usersvc
# The data dir must belong to the user the container runs as; so must its
# mail/ (compose mounts the worker's mail volume there: an empty named
# volume takes the owner of the directory it is mounted on).
RUN mkdir -p /out/data/mail

FROM ${BASE_IMAGE}
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="usersvc" \
      org.opencontainers.image.description="User service: accounts, tokens, password reset" \
      org.opencontainers.image.source="https://github.com/usersvc/usersvc" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
COPY --from=build /out/usersvc /usersvc
COPY --from=build --chown=65532:65532 /out/data /var/lib/usersvc
# 65532 is distroless's nonroot; numeric so runAsNonRoot can verify it.
USER 65532:65532
# Containers listen on every interface; one port per role, as compose.yaml
# and deploy/k8s set them. The data dir is for dev mode and mail files.
ENV USERSVC_HTTP_ADDR=0.0.0.0:8080 \
    USERSVC_API_ADDR=0.0.0.0:8081 \
    USERSVC_GRPC_ADDR=0.0.0.0:9090 \
    USERSVC_OPS_ADDR=0.0.0.0:9091 \
    USERSVC_DATA_DIR=/var/lib/usersvc
WORKDIR /var/lib/usersvc
EXPOSE 8080 8081 9090 9091
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["/usersvc", "healthcheck"]
ENTRYPOINT ["/usersvc"]
CMD ["dev"]

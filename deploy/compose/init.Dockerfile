# The image of compose.yaml's one-shot `init` service: alpine with openssl
# installed at build time, so the service itself runs with no network
# (network_mode: none) and installs nothing when it runs.
FROM alpine:3.20.3
RUN apk add --no-cache openssl

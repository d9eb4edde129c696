#!/bin/sh
# Stand-in of the official redis image's entrypoint: that image's Redis is
# built with protected mode off (it is reached over the pod network without
# a password); Debian's is not, so redis-server gets --protected-mode no.
set -eu
if [ "${1:-}" = redis-server ]; then
  shift
  set -- redis-server "$@" --protected-mode no
fi
exec "$@"

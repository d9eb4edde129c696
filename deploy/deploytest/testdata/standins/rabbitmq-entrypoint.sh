#!/bin/sh
# Stand-in of the official rabbitmq image's entrypoint: RABBITMQ_DEFAULT_USER
# and RABBITMQ_DEFAULT_PASS name the first user, written into a config file
# in /tmp (the root filesystem is read-only), and logs go to stdout.
set -eu
conf=/tmp/rabbitmq-standin.conf
: >"$conf"
if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then echo "default_user = $RABBITMQ_DEFAULT_USER" >>"$conf"; fi
if [ -n "${RABBITMQ_DEFAULT_PASS:-}" ]; then echo "default_pass = $RABBITMQ_DEFAULT_PASS" >>"$conf"; fi
export RABBITMQ_CONFIG_FILE=$conf RABBITMQ_ENABLED_PLUGINS_FILE=/tmp/enabled_plugins
echo "[]." >/tmp/enabled_plugins
exec "$@"

#!/bin/sh
# What the official images' entrypoints do with the environment and
# command compose.yaml gives them, for the Debian stand-in
# (../services.Containerfile): `entrypoint SERVICE [ARGS…]`, ARGS being the
# service's command from compose.yaml.
set -eu
svc=$1; shift
case "$svc" in
mysql)
  # mysql:8: a new data dir gets MYSQL_ROOT_PASSWORD for root and
  # MYSQL_DATABASE with MYSQL_USER/MYSQL_PASSWORD granted all on it.
  if [ ! -d /var/lib/mysql/mysql ]; then
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db >/dev/null
    cat >/run/standin-init.sql <<SQL
ALTER USER 'root'@'localhost' IDENTIFIED BY '${MYSQL_ROOT_PASSWORD}';
CREATE DATABASE IF NOT EXISTS \`${MYSQL_DATABASE}\`;
CREATE USER '${MYSQL_USER}'@'%' IDENTIFIED BY '${MYSQL_PASSWORD}';
GRANT ALL ON \`${MYSQL_DATABASE}\`.* TO '${MYSQL_USER}'@'%';
SQL
    set -- --init-file=/run/standin-init.sql "$@"
  fi
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  exec mariadbd --user=mysql --datadir=/var/lib/mysql --bind-address=0.0.0.0 "$@" ;;
redis)
  # redis: data in /data; protected mode off (the official image builds
  # it so: the network is the container's).
  cd /data && exec "$@" --protected-mode no ;;
rabbitmq)
  # rabbitmq: RABBITMQ_DEFAULT_USER/PASS is the first user; the
  # management plugin is on (enabled when the image is built); the log
  # goes to the console. The server runs as rabbitmq directly: Debian's
  # /usr/sbin wrapper starts it under su, which does not pass SIGTERM on,
  # so every stop waited for the kill.
  printf 'default_user = %s\ndefault_pass = %s\nloopback_users = none\nlisteners.tcp.default = 5672\nmanagement.tcp.port = 15672\nlog.console = true\n' \
    "$RABBITMQ_DEFAULT_USER" "$RABBITMQ_DEFAULT_PASS" >/etc/rabbitmq/rabbitmq.conf
  chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
  cd /var/lib/rabbitmq
  HOME=/var/lib/rabbitmq exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups /usr/lib/rabbitmq/bin/rabbitmq-server ;;
nginx)
  # nginx: templates/*.template rendered into conf.d with envsubst, only
  # the variables NGINX_ENVSUBST_FILTER matches.
  vars=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' | grep -E "${NGINX_ENVSUBST_FILTER:-.}" | sed 's/^/$/' | tr '\n' ' ')
  for f in /etc/nginx/templates/*.template; do
    envsubst "$vars" <"$f" >"/etc/nginx/conf.d/$(basename "$f" .template)"
  done
  exec nginx -g 'daemon off;' ;;
etcd) exec "$@" ;;
prometheus) exec prometheus "$@" ;;
alertmanager) exec prometheus-alertmanager "$@" ;;
jaeger) exec /bin/jaeger "$@" ;;
*) echo "standin: unknown service $svc" >&2; exit 2 ;;
esac

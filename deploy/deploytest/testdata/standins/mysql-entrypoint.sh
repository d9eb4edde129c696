#!/bin/sh
# Stand-in of the official mysql image's docker-entrypoint.sh, for MariaDB:
# arguments that start with "-" go to mysqld; on an empty data directory it
# initialises one and honours MYSQL_ROOT_PASSWORD / MYSQL_RANDOM_ROOT_PASSWORD,
# MYSQL_DATABASE, MYSQL_USER and MYSQL_PASSWORD, as the official one does.
set -eu
case "${1:-}" in -* | '') set -- mysqld "$@" ;; esac
if [ "$1" = mysqld ] && [ ! -d /var/lib/mysql/mysql ]; then
  mariadb-install-db --datadir=/var/lib/mysql --auth-root-authentication-method=normal --skip-test-db >/dev/null
  sock=/run/mysqld/init.sock
  mariadbd --datadir=/var/lib/mysql --skip-networking --socket="$sock" &
  pid=$!
  i=0
  until mariadb-admin --socket="$sock" ping --silent 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -lt 120 ] || { echo "mysql-entrypoint: the initialising server did not start" >&2; exit 1; }
    sleep 1
  done
  root=${MYSQL_ROOT_PASSWORD:-}
  if [ "${MYSQL_RANDOM_ROOT_PASSWORD:-}" = yes ]; then
    root=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
    echo "GENERATED ROOT PASSWORD: $root"
  fi
  {
    echo "DROP USER IF EXISTS ''@'localhost';"
    if [ -n "$root" ]; then echo "ALTER USER 'root'@'localhost' IDENTIFIED BY '$root';"; fi
    if [ -n "${MYSQL_DATABASE:-}" ]; then echo "CREATE DATABASE IF NOT EXISTS \`$MYSQL_DATABASE\`;"; fi
    if [ -n "${MYSQL_USER:-}" ]; then
      echo "CREATE USER '$MYSQL_USER'@'%' IDENTIFIED BY '${MYSQL_PASSWORD:-}';"
      if [ -n "${MYSQL_DATABASE:-}" ]; then echo "GRANT ALL ON \`$MYSQL_DATABASE\`.* TO '$MYSQL_USER'@'%';"; fi
    fi
  } | mariadb --socket="$sock" -uroot
  kill "$pid"
  wait "$pid" || true
fi
exec "$@"

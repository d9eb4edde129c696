#!/usr/bin/env bash
# Provisions the servers the test suite talks to over real connections:
# MariaDB (and later Redis and RabbitMQ). For each one it installs the Debian
# package when the server is missing and starts it when it is not running;
# whatever it started is recorded in $USERSVC_STARTED_FILE so `stop` can stop
# exactly that and leave servers it found running alone.
set -euo pipefail

STARTED_FILE=${USERSVC_STARTED_FILE:-${TMPDIR:-/tmp}/usersvc-test-started}
APT_UPDATED=0

log() { printf 'services: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

wait_for() { # description, seconds, command...
  local what=$1 secs=$2; shift 2
  for _ in $(seq 1 $((secs * 4))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  log "$what did not come up within ${secs}s"; return 1
}

mariadb_up() { mysqladmin --protocol=socket -uroot ping >/dev/null 2>&1; }

start_mariadb() {
  if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
    apt_install mariadb-server mariadb-client
  fi
  if ! mariadb_up; then
    log "starting MariaDB"
    as_root mkdir -p /run/mysqld
    as_root chown mysql: /run/mysqld
    if [ ! -d /var/lib/mysql/mysql ]; then
      as_root mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    fi
    as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql --bind-address=127.0.0.1
    wait_for MariaDB 60 mariadb_up
    echo mariadb >>"$STARTED_FILE"
  fi
  # A TCP account for the tests: a fresh MariaDB lets root in only over the socket.
  as_root mysql --protocol=socket -uroot <<'SQL'
CREATE USER IF NOT EXISTS 'usersvc'@'127.0.0.1' IDENTIFIED BY 'usersvc';
CREATE USER IF NOT EXISTS 'usersvc'@'localhost' IDENTIFIED BY 'usersvc';
GRANT ALL ON `usersvc%`.* TO 'usersvc'@'127.0.0.1';
GRANT ALL ON `usersvc%`.* TO 'usersvc'@'localhost';
FLUSH PRIVILEGES;
SQL
}

stop_started() {
  [ -f "$STARTED_FILE" ] || return 0
  while read -r svc; do
    case $svc in
      mariadb) log "stopping MariaDB (this script started it)"; as_root mysqladmin --protocol=socket -uroot shutdown || true ;;
    esac
  done <"$STARTED_FILE"
  rm -f "$STARTED_FILE"
}

case ${1:-} in
  start) : >"$STARTED_FILE"; start_mariadb ;;
  stop) stop_started ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Provisions what the test suite needs: the build tools Debian ships
# prebuilt (protoc with the well-known types, jq) and the servers the tests
# talk to over real connections: MariaDB, Redis and RabbitMQ. For each
# server it installs the Debian package when missing and starts it when it
# is not running; whatever it started or created (a server, the MariaDB
# account `usersvc`) is recorded in $USERSVC_STARTED_FILE so `stop` undoes
# exactly that, in reverse order, and leaves what it found alone.
# Installed packages stay installed (reinstalling them on every run would
# cost minutes and gain nothing); the README lists them.
# Needs root or passwordless sudo (apt-get, starting the servers, creating
# the MariaDB account over the root socket).
set -euo pipefail

STARTED_FILE=${USERSVC_STARTED_FILE:?set USERSVC_STARTED_FILE to a file of your own, e.g. \$(mktemp)}
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
  # A TCP account for the tests: a fresh MariaDB lets root in only over the
  # socket. Its name is the suite's own, never the README's production
  # account (usersvc), so the README's CREATE USER works on a machine where
  # the suite ran. It may only touch databases named usersvc_*; the tests
  # create and drop their own usersvc_test_<random> ones (the load
  # generator usersvc_load_<random>).
  if [ "$(as_root mysql --protocol=socket -uroot -N -e "SELECT COUNT(*) FROM mysql.user WHERE user='usersvc_test'")" = 0 ]; then
    echo mariadb-account >>"$STARTED_FILE"
  fi
  as_root mysql --protocol=socket -uroot <<'SQL'
CREATE USER IF NOT EXISTS 'usersvc_test'@'127.0.0.1' IDENTIFIED BY 'usersvc_test';
CREATE USER IF NOT EXISTS 'usersvc_test'@'localhost' IDENTIFIED BY 'usersvc_test';
GRANT ALL ON `usersvc\_%`.* TO 'usersvc_test'@'127.0.0.1';
GRANT ALL ON `usersvc\_%`.* TO 'usersvc_test'@'localhost';
FLUSH PRIVILEGES;
SQL
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

start_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    apt_install redis-server
  fi
  if ! redis_up; then
    log "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --logfile ""
    wait_for Redis 30 redis_up
    echo redis >>"$STARTED_FILE"
  fi
}

rabbitmq_up() { port_open 5672 && rabbitmqctl -q status >/dev/null 2>&1; }

start_rabbitmq() {
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    apt_install rabbitmq-server
  fi
  if ! rabbitmq_up; then
    log "starting RabbitMQ"
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 rabbitmq-server -detached
    # The first await_startup can fail (exit 69) before the node exists.
    for _ in $(seq 1 60); do rabbitmqctl -q await_startup >/dev/null 2>&1 && break; sleep 1; done
    wait_for RabbitMQ 60 rabbitmq_up
    echo rabbitmq >>"$STARTED_FILE"
  fi
}

# Debian packages the suite runs but never starts as system servers: protoc
# and the well-known .proto files for `make check-generate`, jq for the test
# summary, nginx for the edge tests, chromium for the browser tests of the
# pages (e2e/browser_test.go), etcd for the kube-apiserver the
# Kubernetes manifests are applied to, Prometheus and Alertmanager (with
# promtool and amtool) for the observability tests: all run as the tests' own
# processes on private ports.
need_tools() {
  local pkgs=()
  command -v protoc >/dev/null 2>&1 || pkgs+=(protobuf-compiler)
  [ -f /usr/include/google/protobuf/timestamp.proto ] || pkgs+=(libprotobuf-dev)
  command -v jq >/dev/null 2>&1 || pkgs+=(jq)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || pkgs+=(nginx)
  command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
  command -v etcd >/dev/null 2>&1 || pkgs+=(etcd-server)
  command -v promtool >/dev/null 2>&1 || pkgs+=(prometheus)
  command -v prometheus-alertmanager >/dev/null 2>&1 || pkgs+=(prometheus-alertmanager)
  # The image test (deploy/deploytest TestImage): podman with runc (crun
  # cannot set its rlimits on these machines), slirp4netns for its
  # containers' networks, debootstrap for the local base image.
  command -v podman >/dev/null 2>&1 || pkgs+=(podman)
  command -v runc >/dev/null 2>&1 || pkgs+=(runc)
  command -v slirp4netns >/dev/null 2>&1 || pkgs+=(slirp4netns)
  command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || pkgs+=(debootstrap)
  # The compose test (TestComposeUp): CNI's dnsname plugin, so the stack's
  # containers find each other by service name on podman's bridge network
  # (it runs dnsmasq); iptables-save/-restore to put CNI's rules back.
  [ -x /usr/lib/cni/dnsname ] || pkgs+=(golang-github-containernetworking-plugin-dnsname)
  command -v iptables-restore >/dev/null 2>&1 || [ -x /usr/sbin/iptables-restore ] || pkgs+=(iptables)
  # The Kubernetes node test (deploy/deploytest TestKubelet): containerd
  # (with ctr) as the container runtime, the CNI plugins (bridge,
  # host-local), conntrack for kube-proxy.
  command -v containerd >/dev/null 2>&1 || pkgs+=(containerd)
  [ -x /usr/lib/cni/bridge ] || pkgs+=(containernetworking-plugins)
  command -v conntrack >/dev/null 2>&1 || [ -x /usr/sbin/conntrack ] || pkgs+=(conntrack)
  [ ${#pkgs[@]} = 0 ] || apt_install "${pkgs[@]}"
}

stop_started() {
  [ -f "$STARTED_FILE" ] || return 0
  tac "$STARTED_FILE" | while read -r svc; do
    case $svc in
      mariadb-account) log "dropping the MariaDB account usersvc_test (this script created it)"
        as_root mysql --protocol=socket -uroot -e "DROP USER IF EXISTS 'usersvc_test'@'127.0.0.1', 'usersvc_test'@'localhost'" || true ;;
      mariadb) log "stopping MariaDB (this script started it)"; as_root mysqladmin --protocol=socket -uroot shutdown || true ;;
      redis) log "stopping Redis (this script started it)"; redis-cli -h 127.0.0.1 -p 6379 shutdown nosave >/dev/null 2>&1 || true ;;
      rabbitmq) log "stopping RabbitMQ (this script started it)"; rabbitmqctl -q stop >/dev/null 2>&1 || true ;;
    esac
  done
  rm -f "$STARTED_FILE"
}

case ${1:-} in
  start) : >"$STARTED_FILE"; need_tools; start_mariadb; start_redis; start_rabbitmq ;;
  stop) stop_started ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

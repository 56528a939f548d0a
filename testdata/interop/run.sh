#!/usr/bin/env bash
# The interop lab (README.md beside this file): real server software on one
# loopback address, each endpoint with its own certificate; an independent
# client (openssl s_client, rdp_cert.py for RDP) fetches every leaf; certsweep
# sweeps the same endpoints; the fingerprints must agree.
#
#   CERTSWEEP=bin/certsweep bash testdata/interop/run.sh    # make interop
#   KEEP=1 ...                     # leave the lab running, print how to stop it
#   bash testdata/interop/run.sh --install-only             # packages only
#
# Needs root on Debian 12. All traffic stays on INTEROP_ADDR (a 127.x).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ADDR=${INTEROP_ADDR:-127.0.93.1}
KEEP=${KEEP:-0}
WAIT_SECS=${INTEROP_WAIT:-90}
CERTSWEEP=${CERTSWEEP:-$ROOT/bin/certsweep}

# The endpoints: port, protocol certsweep must report, daemon, how openssl
# s_client reaches TLS there ("-" = implicit TLS, "rdp" = rdp_cert.py).
ENDPOINTS=(
  "21    ftp       vsftpd        ftp"
  "25    smtp      postfix       smtp"
  "110   pop3      dovecot       pop3"
  "143   imap      dovecot       imap"
  "389   ldap      slapd         ldap"
  "587   smtp      postfix       smtp"
  "636   tls       slapd-ldaps   -"
  "993   tls       dovecot-imaps -"
  "3306  mysql     mariadb       mysql"
  "3389  rdp       xrdp          rdp"
  "5222  xmpp      prosody       xmpp"
  "5432  postgres  postgres      postgres"
  "2525  smtp      postfix       smtp"
  "2526  smtp      postfix       smtp"
)
PORTS=21,25,110,143,389,587,636,993,3306,3389,5222,5432,2525,2526,2527
# What certsweep sweeps: the default protocol of each standard port, 2525
# named in the port spec, 2526 not named (an SMTP greeting on a port without
# a protocol: certsweep must recognise it and retry with STARTTLS), and 2527,
# a postfix without TLS, which must end no-starttls.
SWEEP_PORTS=21,25,110,143,389,587,636,993,3306,3389,5222,5432,2525/smtp,2526,2527/smtp

PACKAGES=(postfix dovecot-imapd dovecot-pop3d slapd postgresql mariadb-server
  vsftpd prosody xrdp openssl python3 sqlite3 iproute2)

log() { printf '%s interop: %s\n' "$(date +%T)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it installs packages and starts daemons as their own users)"
case $ADDR in
  127.0.0.1) die "INTEROP_ADDR must not be 127.0.0.1 (system services live there)" ;;
  127.*) ;;
  *) die "INTEROP_ADDR=$ADDR is not a loopback (127.x) address" ;;
esac

# ---------------------------------------------------------------- install --

POLICY=/usr/sbin/policy-rc.d
POLICY_SAVED=""
restore_policy() {
  if [ -n "$POLICY_SAVED" ]; then
    mv -f "$POLICY_SAVED" "$POLICY"
    POLICY_SAVED=""
  elif [ -f "$POLICY.interop" ]; then
    rm -f "$POLICY" "$POLICY.interop"
  fi
}

install_packages() {
  local missing=() p t0
  for p in "${PACKAGES[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "packages already installed"
    INSTALL_SECS=0
    return
  fi
  t0=$SECONDS
  log "installing: ${missing[*]}"
  # No package may start its service (on 0.0.0.0) during the install:
  # invoke-rc.d and deb-systemd-invoke ask policy-rc.d, and 101 means no.
  if [ -e "$POLICY" ]; then
    POLICY_SAVED=$(mktemp "$POLICY.saved.XXXXXX")
    cp -p "$POLICY" "$POLICY_SAVED"
  fi
  printf '#!/bin/sh\n# installed by certsweep testdata/interop/run.sh\nexit 101\n' >"$POLICY"
  chmod 755 "$POLICY"
  [ -n "$POLICY_SAVED" ] || : >"$POLICY.interop"
  trap 'restore_policy' EXIT
  export DEBIAN_FRONTEND=noninteractive
  # slapd: no initial database (no admin password prompt); postfix: no
  # configuration (this script writes its own).
  debconf-set-selections <<'EOF'
slapd slapd/no_configuration boolean true
postfix postfix/main_mailer_type select No configuration
EOF
  local alog=/tmp/certsweep-interop-apt.log
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"; } >"$alog" 2>&1; then
    tail -40 "$alog" >&2
    die "apt-get install failed (log $alog)"
  fi
  rm -f "$alog"
  restore_policy
  trap - EXIT
  stop_system_services "${missing[@]}"
  INSTALL_SECS=$((SECONDS - t0))
  log "installed in ${INSTALL_SECS}s"
}

# stop_system_services PACKAGE...: stops the services of the packages just
# installed, if any started anyway (policy-rc.d ignored). A service of a
# package that was there before is the machine's, not the lab's: left alone.
stop_system_services() {
  local p s services=()
  for p in "$@"; do
    case $p in
      postfix | slapd | postgresql | vsftpd | prosody) services+=("$p") ;;
      dovecot-*) services+=(dovecot) ;;
      mariadb-server) services+=(mariadb) ;;
      xrdp) services+=(xrdp xrdp-sesman) ;;
    esac
  done
  for s in "${services[@]}"; do
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
      if systemctl is-active --quiet "$s" 2>/dev/null; then
        log "stopping system service $s"
        systemctl stop "$s" || true
      fi
    elif [ -x "/etc/init.d/$s" ]; then
      # (postfix's init script says nothing and exits 0 when unconfigured)
      local out
      if out=$("/etc/init.d/$s" status 2>&1) && [ -n "$out" ]; then
        log "stopping system service $s"
        "/etc/init.d/$s" stop >/dev/null 2>&1 || true
      fi
    fi
  done
}

INSTALL_SECS=0
install_packages
if [ "${1:-}" = "--install-only" ]; then
  exit 0
fi

# -------------------------------------------------------------------- lab --

RUN_T0=$SECONDS
case $CERTSWEEP in /*) ;; *) CERTSWEEP=$PWD/$CERTSWEEP ;; esac
[ -x "$CERTSWEEP" ] || die "no certsweep binary at $CERTSWEEP (make build, or set CERTSWEEP=)"

T=$(mktemp -d /tmp/certsweep-interop.XXXXXX)
chmod 755 "$T" # every daemon runs as its own user and must traverse it
mkdir -p "$T/certs" "$T/pids" "$T/fp"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  restore_policy
  if [ "$KEEP" = 1 ]; then
    log "KEEP=1: the lab is still running in $T"
    log "stop it with: bash $HERE/stop.sh $T"
    exit $rc
  fi
  bash "$HERE/stop.sh" "$T" || rc=1
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# LOGS[daemon]: its log files, shown when it does not come up.
declare -A LOGS

# start NAME LOGFILE CMD...: runs CMD in its own session, output to LOGFILE.
# The session's id (CMD's pid) goes to $T/pids/NAME: stop.sh stops the whole
# process group.
start() {
  local name=$1 logf=$2
  shift 2
  [ -n "${LOGS[$name]:-}" ] || LOGS[$name]=$logf
  (cd "$T" && exec setsid "$@" </dev/null >>"$logf" 2>&1) &
  echo $! >"$T/pids/$name"
}

# key_for CERT USER: CERT's key becomes readable by USER only (the daemons
# that drop privileges read their key afterwards).
key_for() {
  chown "$2" "$T/certs/$1.key"
  chmod 600 "$T/certs/$1.key"
}

log "lab in $T on $ADDR"

# Nothing may already listen on the lab's ports (a system daemon on 0.0.0.0
# would make the bind fail, or answer instead of the lab's daemon).
busy=$(ss -Hltn "( $(printf 'sport = :%s or ' ${PORTS//,/ }) sport = :0 )" 2>/dev/null |
  awk -v a="$ADDR" '{split($4, h, ":"); if (h[1] == a || h[1] == "0.0.0.0" || h[1] == "*" || $4 ~ /^\[::\]/) print $4}')
[ -z "$busy" ] || die "already listening on the lab's ports: $(tr "\n" " " <<<"$busy")(stop those services first)"

# One certificate per endpoint, so a fingerprint names the endpoint.
for e in "${ENDPOINTS[@]}"; do
  read -r port proto _ _ <<<"$e"
  n=$proto-$port
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$n.interop.test" \
    -addext "subjectAltName=DNS:$n.interop.test" \
    -keyout "$T/certs/$n.key" -out "$T/certs/$n.crt" 2>/dev/null &
done
wait
chmod 755 "$T/certs"
chmod 644 "$T/certs"/*.crt
for f in "$T/certs"/*.crt; do
  openssl x509 -in "$f" -outform DER | sha256sum | cut -d' ' -f1 >"${f%.crt}.sha256"
done

# ---- postfix: SMTP on 25 and submission on 587 -------------------------------
# inet_interfaces rejects an address that is no interface's (127.0.93.1 is
# only inside lo's 127/8), so the services bind their address in master.cf.
PF=$T/postfix
mkdir -p "$PF/etc" "$PF/spool" "$PF/data"
chown postfix "$PF/data"
key_for smtp-25 root
key_for smtp-587 root
key_for smtp-2525 root
key_for smtp-2526 root
cat >"$PF/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF/spool
data_directory = $PF/data
maillog_file = $PF/maillog
# maillog_file must start with one of these (default /var, /dev/stdout)
maillog_file_prefixes = $T
notify_classes =
myhostname = smtp.interop.test
mydomain = interop.test
mydestination =
relayhost =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
biff = no
# no DNS: the lab's traffic stays on loopback
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
smtpd_tls_security_level = may
smtpd_tls_cert_file = $T/certs/smtp-25.crt
smtpd_tls_key_file = $T/certs/smtp-25.key
EOF
cat >"$PF/etc/master.cf" <<EOF
$ADDR:25  inet n - n - - smtpd
$ADDR:587 inet n - n - - smtpd -o syslog_name=postfix/submission -o smtpd_tls_cert_file=$T/certs/smtp-587.crt -o smtpd_tls_key_file=$T/certs/smtp-587.key
$ADDR:2525 inet n - n - - smtpd -o smtpd_tls_cert_file=$T/certs/smtp-2525.crt -o smtpd_tls_key_file=$T/certs/smtp-2525.key
$ADDR:2526 inet n - n - - smtpd -o smtpd_tls_cert_file=$T/certs/smtp-2526.crt -o smtpd_tls_key_file=$T/certs/smtp-2526.key
$ADDR:2527 inet n - n - - smtpd -o smtpd_tls_security_level=none
anvil     unix - - n - 1 anvil
tlsmgr    unix - - n 1000? 1 tlsmgr
postlog   unix-dgram n - n - 1 postlogd
EOF
LOGS[postfix]=$PF/maillog
# postfix(1) sends its own fatal errors to syslog (/dev/log), not to
# maillog_file: a bad setting fails here with exit 1 and no message.
postfix -c "$PF/etc" start >"$PF/start.log" 2>&1 || {
  cat "$PF/start.log" "$PF/maillog" >&2 || true
  die "postfix -c $PF/etc start failed; it logs why to syslog only (try its 'check' with a syslog running)"
}
for _ in $(seq 50); do [ -s "$PF/spool/pid/master.pid" ] && break; sleep 0.1; done
# master detached into its own session: its pid is the process group's id.
tr -d ' \n' <"$PF/spool/pid/master.pid" >"$T/pids/postfix" || die "postfix wrote no master.pid"


# ---- dovecot: IMAP STARTTLS on 143, POP3 STLS on 110 -------------------------
# A second instance serves IMAPS on 993 with its own certificate (one
# dovecot serves one certificate per protocol, not per port).
dovecot_conf() { # DIR PROTOCOLS SSL_CERT_NAME LISTENERS [EXTRA]
  cat <<EOF
base_dir = $1/run
state_dir = $1/state
instance_name = interop-$(basename "$1")
protocols = $2
listen = $ADDR
log_path = $1/dovecot.log
ssl = yes
ssl_cert = <$T/certs/$3.crt
ssl_key = <$T/certs/$3.key
ssl_dh = </usr/share/dovecot/dh.pem
auth_mechanisms = plain
passdb {
  driver = static
  args = password=interop
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}
mail_location = mbox:/nonexistent
$4
${5:-}
EOF
}
D=$T/dovecot
mkdir -p "$D"
key_for imap-143 root
key_for pop3-110 root
dovecot_conf "$D" "imap pop3" imap-143 "
service imap-login {
  inet_listener imap {
    port = 143
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3-login {
  inet_listener pop3 {
    port = 110
  }
  inet_listener pop3s {
    port = 0
  }
}" "
protocol pop3 {
  ssl_cert = <$T/certs/pop3-110.crt
  ssl_key = <$T/certs/pop3-110.key
}" >"$D/dovecot.conf"
LOGS[dovecot]="$D/dovecot.log $D/dovecot.out"
start dovecot "$D/dovecot.out" dovecot -F -c "$D/dovecot.conf"

DI=$T/dovecot-imaps
mkdir -p "$DI"
key_for tls-993 root
dovecot_conf "$DI" imap tls-993 "
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = 993
    ssl = yes
  }
}" >"$DI/dovecot.conf"
LOGS[dovecot-imaps]="$DI/dovecot.log $DI/dovecot.out"
start dovecot-imaps "$DI/dovecot.out" dovecot -F -c "$DI/dovecot.conf"

# ---- slapd: LDAP StartTLS on 389; a second instance for LDAPS on 636 --------
slapd_instance() { # NAME CERT URL
  local S=$T/$1
  mkdir -p "$S/data"
  key_for "$2" openldap
  cat >"$S/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
pidfile $S/slapd.pid
argsfile $S/slapd.args
TLSCertificateFile $T/certs/$2.crt
TLSCertificateKeyFile $T/certs/$2.key
database ldif
directory $S/data
suffix "dc=interop,dc=test"
EOF
  chown -R openldap:openldap "$S"
  LOGS[$1]=$S/slapd.log
  # -d keeps slapd in the foreground (256: log connections and operations)
  start "$1" "$S/slapd.log" slapd -d 256 -u openldap -g openldap -f "$S/slapd.conf" -h "$3"
}
slapd_instance slapd ldap-389 "ldap://$ADDR:389/"
slapd_instance slapd-ldaps tls-636 "ldaps://$ADDR:636/"

# ---- postgres: SSLRequest on 5432 ----------------------------------------------
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PG=$T/postgres
mkdir -p "$PG/run"
chown -R postgres:postgres "$PG"
key_for postgres-5432 postgres
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --init-groups "$@"; }
(cd "$PG" && as postgres "$PGBIN/initdb" -D "$PG/data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
  >"$PG/initdb.log" 2>&1) || { cat "$PG/initdb.log" >&2; die "initdb failed (log $PG/initdb.log)"; }
LOGS[postgres]=$PG/postgres.log
start postgres "$PG/postgres.log" setpriv --reuid=postgres --regid=postgres --init-groups \
  "$PGBIN/postgres" -D "$PG/data" -c listen_addresses="$ADDR" -c port=5432 \
  -c unix_socket_directories="$PG/run" -c ssl=on -c ssl_cert_file="$T/certs/postgres-5432.crt" \
  -c ssl_key_file="$T/certs/postgres-5432.key" -c fsync=off -c shared_buffers=16MB -c log_connections=on

# ---- mariadb: SSL request in the handshake on 3306 -----------------------------
# MariaDB answers "Host ... is not allowed to connect" (no handshake, no TLS)
# unless an account matches the client's host: 'interop'@'127.%'.
M=$T/mariadb
mkdir -p "$M/data"
key_for mysql-3306 mysql
cat >"$M/init.sql" <<'EOF'
CREATE USER IF NOT EXISTS 'interop'@'127.%' IDENTIFIED BY 'interop';
EOF
chown -R mysql:mysql "$M"
mariadb-install-db --no-defaults --user=mysql --datadir="$M/data" --auth-root-authentication-method=socket \
  --skip-test-db >"$M/install.log" 2>&1 || { cat "$M/install.log" >&2; die "mariadb-install-db failed (log $M/install.log)"; }
LOGS[mariadb]="$M/error.log $M/mariadbd.out"
start mariadb "$M/mariadbd.out" mariadbd --no-defaults --user=mysql --datadir="$M/data" \
  --bind-address="$ADDR" --port=3306 --socket="$M/mysqld.sock" --pid-file="$M/mariadbd.pid" \
  --log-error="$M/error.log" --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=16M \
  --ssl-cert="$T/certs/mysql-3306.crt" --ssl-key="$T/certs/mysql-3306.key" --init-file="$M/init.sql"

# ---- vsftpd: AUTH TLS on 21 ----------------------------------------------------
V=$T/vsftpd
mkdir -p "$V/empty" "$V/anon"
key_for ftp-21 root
cat >"$V/vsftpd.conf" <<EOF
listen=YES
listen_ipv6=NO
listen_address=$ADDR
listen_port=21
background=NO
anonymous_enable=YES
anon_root=$V/anon
no_anon_password=YES
local_enable=NO
write_enable=NO
connect_from_port_20=NO
secure_chroot_dir=$V/empty
ssl_enable=YES
allow_anon_ssl=YES
force_anon_logins_ssl=NO
force_anon_data_ssl=NO
require_ssl_reuse=NO
ssl_ciphers=HIGH
rsa_cert_file=$T/certs/ftp-21.crt
rsa_private_key_file=$T/certs/ftp-21.key
xferlog_enable=YES
vsftpd_log_file=$V/vsftpd.log
log_ftp_protocol=YES
EOF
LOGS[vsftpd]="$V/vsftpd.log $V/vsftpd.out"
# vsftpd writes its startup errors ("500 OOPS: ...") to fd 0, its control
# connection in inetd mode: point fd 0 at the log.
start vsftpd "$V/vsftpd.out" bash -c 'exec vsftpd "$1" 0>>"$2"' vsftpd "$V/vsftpd.conf" "$V/vsftpd.out"

# ---- prosody: XMPP <starttls/> on 5222 -----------------------------------------
# Prosody offers STARTTLS only to a stream whose 'to' names a VirtualHost it
# serves; certsweep sends the address when it has no SNI, so the VirtualHost
# is the address.
P=$T/prosody
mkdir -p "$P/data"
key_for xmpp-5222 prosody
cat >"$P/prosody.cfg.lua" <<EOF
pidfile = "$P/prosody.pid"
data_path = "$P/data"
log = { info = "$P/prosody.log" }
interfaces = { "$ADDR" }
c2s_ports = { 5222 }
c2s_direct_tls_ports = { }
modules_enabled = { "tls", "saslauth", "disco" }
modules_disabled = { "s2s" }
authentication = "internal_hashed"
VirtualHost "$ADDR"
  ssl = { certificate = "$T/certs/xmpp-5222.crt", key = "$T/certs/xmpp-5222.key" }
EOF
chown -R prosody:prosody "$P"
LOGS[prosody]="$P/prosody.log $P/prosody.out"
# prosody refuses to run as root (prosodyctl would switch users; run it as
# prosody directly).
start prosody "$P/prosody.out" setpriv --reuid=prosody --regid=prosody --init-groups \
  prosody --config "$P/prosody.cfg.lua" -F

# ---- xrdp: X.224 negotiation on 3389 ---------------------------------------------
# Only the listener is needed for the handshake (no sesman, no X server).
X=$T/xrdp
mkdir -p "$X"
key_for rdp-3389 root
cat >"$X/xrdp.ini" <<EOF
[Globals]
ini_version=1
fork=true
port=tcp://$ADDR:3389
use_vsock=false
security_layer=negotiate
crypt_level=high
certificate=$T/certs/rdp-3389.crt
key_file=$T/certs/rdp-3389.key
ssl_protocols=TLSv1.2, TLSv1.3

[Logging]
LogFile=$X/xrdp.log
LogLevel=INFO
EnableSyslog=false
EOF
LOGS[xrdp]="$X/xrdp.log $X/xrdp.out"
start xrdp "$X/xrdp.out" xrdp --nodaemon --config "$X/xrdp.ini"

STARTED_SECS=$((SECONDS - RUN_T0))

# ---------------------------------------------------------- wait for ports --

show_logs() { # NAME
  local f
  for f in ${LOGS[$1]:-}; do
    [ -f "$f" ] || continue
    echo "----- $f (last 40 lines)" >&2
    tail -40 "$f" >&2
  done
}
port_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$ADDR" "$1" 2>/dev/null; }

deadline=$((SECONDS + WAIT_SECS))
for e in "${ENDPOINTS[@]}"; do
  read -r port proto daemon _ <<<"$e"
  until port_open "$port"; do
    pid=$(cat "$T/pids/$daemon" 2>/dev/null || echo 0)
    if ! kill -0 "$pid" 2>/dev/null; then
      show_logs "$daemon"
      die "$daemon exited before listening on $ADDR:$port (its log is above; KEEP=1 keeps ${LOGS[$daemon]:-it})"
    fi
    if [ $SECONDS -ge $deadline ]; then
      show_logs "$daemon"
      die "$daemon does not answer on $ADDR:$port after ${WAIT_SECS}s (its log is above; KEEP=1 keeps ${LOGS[$daemon]:-it})"
    fi
    sleep 0.2
  done
done
UP_SECS=$((SECONDS - RUN_T0))
log "all ${#ENDPOINTS[@]} endpoints answer (${UP_SECS}s after the lab started)"

# ------------------------------------------------- the independent client --

# fingerprint PORT MODE: the leaf's SHA-256 as openssl s_client (or, for RDP,
# rdp_cert.py) sees it; empty when it got none. Errors in $T/fp/PORT.err.
fingerprint() {
  local port=$1 mode=$2 args=() pem
  case $mode in
    rdp)
      timeout 20 python3 "$HERE/rdp_cert.py" "$ADDR" "$port" 2>"$T/fp/$port.err" || true
      return ;;
    -) ;;
    xmpp) args=(-starttls xmpp -xmpphost "$ADDR") ;;
    *) args=(-starttls "$mode") ;;
  esac
  pem=$(timeout 20 openssl s_client -connect "$ADDR:$port" "${args[@]}" </dev/null 2>"$T/fp/$port.err" |
    sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' || true)
  [ -n "$pem" ] || return 0
  openssl x509 -outform DER <<<"$pem" | sha256sum | cut -d' ' -f1
}

# s_client's -starttls values differ between OpenSSL versions.
supported=$(openssl s_client -starttls bogus 2>&1 | tr -s ' \t' '\n' || true)
: >"$T/fp/independent.tsv"
for e in "${ENDPOINTS[@]}"; do
  read -r port proto daemon mode <<<"$e"
  case $mode in
    -|rdp) ;;
    *) grep -qx "$mode" <<<"$supported" || die "this openssl s_client has no -starttls $mode (it has: $(tr "\n" " " <<<"$supported"))" ;;
  esac
  fp=$(fingerprint "$port" "$mode")
  printf '%s\t%s\t%s\t%s\t%s\n' "$port" "$proto" "$daemon" "$(cat "$T/certs/$proto-$port.sha256")" "${fp:--}" \
    >>"$T/fp/independent.tsv"
done

# ------------------------------------------------------------- certsweep --

log "certsweep sweep $ADDR --ports $SWEEP_PORTS"
sweep_t0=$SECONDS
set +e
"$CERTSWEEP" sweep "$ADDR" --ports "$SWEEP_PORTS" --db "$T/interop.db" --name interop --quiet >"$T/sweep.out" 2>&1
sweep_rc=$?
set -e
SWEEP_SECS=$((SECONDS - sweep_t0))
cat "$T/sweep.out" >&2
# Exit 0: the sweep completed and reached at least one TLS endpoint. 4 would
# mean it reached none (993 and 636 are implicit TLS, so that is a failure
# too); anything else is an error.
[ $sweep_rc = 0 ] || die "certsweep sweep exited $sweep_rc (want 0); output above"
"$CERTSWEEP" endpoints --db "$T/interop.db" --format json >"$T/endpoints.json" ||
  die "certsweep endpoints failed"

# ---------------------------------------------------------------- compare --

set +e
python3 "$HERE/compare.py" "$T/fp/independent.tsv" "$T/endpoints.json" "$T/interop.db"
cmp_rc=$?
set -e
RUN_SECS=$((SECONDS - RUN_T0))
log "timings: install ${INSTALL_SECS}s; lab up ${UP_SECS}s (daemons started in ${STARTED_SECS}s), sweep ${SWEEP_SECS}s, run total ${RUN_SECS}s"
[ $cmp_rc = 0 ] || die "certsweep disagrees with the independent client (table above; the independent client's errors were in $T/fp/*.err; KEEP=1 keeps them)"
# postfix without TLS on 2527: an SMTP server that offers no STARTTLS.
plain=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["port"] == 2527: print(r["outcome"], r["protocol"])' "$T/endpoints.json")
[ "$plain" = "no-starttls smtp" ] || die "port 2527 (postfix without TLS): certsweep recorded '$plain', want 'no-starttls smtp'"
log "port 2527 (postfix without TLS): no-starttls over smtp, as it must be"
log "PASS: certsweep's leaf fingerprints match the independent client's on all ${#ENDPOINTS[@]} endpoints"

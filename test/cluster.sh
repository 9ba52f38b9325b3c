# Shared by test/harness.sh and test/bench/run.sh (sourced, never run):
# install what is missing, build and install, and run one throwaway cluster
# that is always stopped and removed on exit.  Never touches another cluster.
PACKAGES="postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl"

say() { printf '== %s\n' "$*"; }

ensure_packages() {
	local missing=()
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing packages: ${missing[*]} (run as root to install them)" >&2
		exit 1
	fi
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# PG_CONFIG may point at another installation (e.g. a private copy of the tree).
ensure_packages
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
BINDIR=$("$PG_CONFIG" --bindir)
export PATH="$BINDIR:$PATH"

say "building"
make -s PG_CONFIG="$PG_CONFIG" all
make -s PG_CONFIG="$PG_CONFIG" install >/dev/null

# Run server-side programs as postgres when we are root.
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$(( 20000 + RANDOM % 30000 ))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
	done
	echo "no free port" >&2; return 1
}

TMP=""
# A script may define on_cleanup to stop its own helpers first.
cleanup() {
	local rc=$?
	if declare -F on_cleanup >/dev/null; then on_cleanup || true; fi
	if [ -n "$TMP" ] && [ -f "$TMP/data/postmaster.pid" ]; then
		as_pg pg_ctl -D "$TMP/data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	[ -n "$TMP" ] && rm -rf "$TMP"
	exit $rc
}
trap cleanup EXIT INT TERM

# start_cluster [extra postgresql.conf lines...]: sets PGHOST/PGPORT/PGUSER.
# Later lines win, so callers can override the defaults.
start_cluster() {
	TMP=$(mktemp -d /tmp/segtier.XXXXXX)
	chmod 755 "$TMP"
	[ "$(id -u)" -eq 0 ] && chown postgres: "$TMP"
	PGPORT=$(free_port)
	as_pg initdb -D "$TMP/data" -A trust -E UTF8 --locale=C.UTF-8 -U postgres >/dev/null
	{
		echo "port = $PGPORT"
		echo "listen_addresses = '127.0.0.1'"
		echo "unix_socket_directories = '$TMP'"
		echo "shared_preload_libraries = 'segtier'"
		echo "fsync = off"
		echo "max_worker_processes = 16"
		echo "lc_messages = 'C'"
		for line in "$@"; do echo "$line"; done
	} >> "$TMP/data/postgresql.conf"
	as_pg pg_ctl -D "$TMP/data" -l "$TMP/server.log" -w -t 60 start >/dev/null || {
		cat "$TMP/server.log" >&2; exit 1; }
	export PGHOST=$TMP PGPORT PGUSER=postgres PGDATABASE=postgres
	export SEGTIER_SERVER_LOG=$TMP/server.log SEGTIER_DATA=$TMP/data
}


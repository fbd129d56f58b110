# Shared by the ops/ scripts: installs what is missing and finds (or starts) a PostgreSQL.
# Sourced, not run. Every function is safe to call again.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.onshi"
mkdir -p "$STATE"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# ensure_packages PKG...: installs the Debian packages that are not installed yet.
ensure_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# pg_reachable URL: true when a server answers at URL.
pg_reachable() {
  psql "$1" -Atqc 'select 1' >/dev/null 2>&1
}

# ensure_postgres: sets PG_SERVER_URL to a server URL without a database name (we append one).
# Order: DATABASE_URL's server, then 127.0.0.1:5432 as postgres, then a private cluster under
# .onshi/pg started from the system's PostgreSQL binaries (installed if absent).
ensure_postgres() {
  ensure_packages postgresql-client
  if [ -n "${DATABASE_URL:-}" ]; then
    local server="${DATABASE_URL%/*}"
    if pg_reachable "$server/postgres"; then PG_SERVER_URL="$server"; return 0; fi
    log "DATABASE_URL is set but its server does not answer; looking elsewhere"
  fi
  if pg_reachable "postgres://postgres@127.0.0.1:5432/postgres"; then
    PG_SERVER_URL="postgres://postgres@127.0.0.1:5432"
    return 0
  fi
  start_private_postgres
  PG_SERVER_URL="postgres://postgres@127.0.0.1:54329"
}

start_private_postgres() {
  ensure_packages postgresql
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  local data="$STATE/pg/data"
  local url="postgres://postgres@127.0.0.1:54329/postgres"
  pg_reachable "$url" && return 0
  # initdb refuses to run as root: the cluster belongs to the system's postgres user.
  local as=()
  if [ "$(id -u)" -eq 0 ]; then
    as=(runuser -u postgres --)
    mkdir -p "$STATE/pg"
    chown postgres "$STATE/pg"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    log "creating a private PostgreSQL cluster in $data"
    "${as[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  log "starting the private PostgreSQL on 127.0.0.1:54329"
  "${as[@]}" "$bin/pg_ctl" -D "$data" -l "$STATE/pg/server.log" -w \
    -o "-p 54329 -k /tmp -c listen_addresses=127.0.0.1" start >/dev/null
  pg_reachable "$url" || { echo "the private PostgreSQL did not start; see $STATE/pg/server.log" >&2; exit 1; }
}

# ensure_database NAME: creates the database if it does not exist.
ensure_database() {
  local exists
  exists="$(psql "$PG_SERVER_URL/postgres" -Atqc "select 1 from pg_database where datname = '$1'")"
  [ "$exists" = 1 ] || psql "$PG_SERVER_URL/postgres" -qc "create database \"$1\"" >/dev/null
}

# ensure_link_key: a local, random link key for development (never committed: .onshi is ignored).
ensure_link_key() {
  if [ ! -s "$STATE/link.key" ]; then
    log "generating a development link key in $STATE/link.key"
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$STATE/link.key")
  fi
  export ONSHI_LINK_KEY_FILE="$STATE/link.key"
}

# ensure_audit_key: a local, random audit key for development (a deployment keeps it in the
# PKCS#11 token, see ops/softhsm) and the witness directory the checkpoints go to.
ensure_audit_key() {
  if [ ! -s "$STATE/audit.key" ]; then
    log "generating a development audit key in $STATE/audit.key"
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$STATE/audit.key")
  fi
  mkdir -p "$STATE/witness"
  export ONSHI_AUDIT_KEY_FILE="$STATE/audit.key" ONSHI_AUDIT_WITNESS_DIR="$STATE/witness"
}

# ensure_proof_key: a local, random key for the proofs' signing pair in development (a deployment
# keeps the pair in the PKCS#11 token, see ops/softhsm).
ensure_proof_key() {
  if [ ! -s "$STATE/proof.key" ]; then
    log "generating a development proof key in $STATE/proof.key"
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$STATE/proof.key")
  fi
  export ONSHI_PROOF_KEY_FILE="$STATE/proof.key"
}

# app_role_url DB: the URL of database DB as the application role onshi_app (the server's role),
# after letting that role log in (the migrations create it without LOGIN; the local server
# trusts 127.0.0.1, a real deployment gives it a password instead).
app_role_url() {
  psql "$PG_SERVER_URL/postgres" -qc "do \$\$ begin
      if not exists (select 1 from pg_roles where rolname = 'onshi_app') then create role onshi_app login;
      elsif not (select rolcanlogin from pg_roles where rolname = 'onshi_app') then alter role onshi_app login;
      end if; end \$\$" >/dev/null
  local server="${PG_SERVER_URL#*://}"
  printf 'postgres://onshi_app@%s/%s\n' "${server#*@}" "$1"
}

ensure_toolchain() {
  command -v cargo >/dev/null || { echo "cargo is required (install the Rust toolchain)" >&2; exit 1; }
  ensure_packages pkg-config build-essential
}

# cargo-deny, from crates.io (pinned, so that every run checks with the same rules).
CARGO_DENY_VERSION=0.20.2
ensure_cargo_deny() {
  if ! cargo deny --version 2>/dev/null | grep -q "$CARGO_DENY_VERSION"; then
    log "installing cargo-deny $CARGO_DENY_VERSION (once)"
    cargo install --locked --quiet cargo-deny --version "$CARGO_DENY_VERSION"
  fi
}

# An independent FHIR R4 model for the FHIR tests (fhir.resources 6.5 is R4 4.0.1; it needs
# pydantic 1), in a virtual environment of the project's: sets ONSHI_FHIR_PYTHON.
FHIR_PACKAGES=("fhir.resources==6.5.0" "pydantic==1.10.19")
ensure_fhir_python() {
  local venv="$STATE/py"
  if ! "$venv/bin/python" -c 'import fhir.resources, pydantic; assert pydantic.VERSION.startswith("1.")' 2>/dev/null; then
    log "installing ${FHIR_PACKAGES[*]} into $venv (once)"
    command -v python3 >/dev/null || ensure_packages python3
    python3 -m venv "$venv" 2>/dev/null || { ensure_packages python3-venv; python3 -m venv "$venv"; }
    "$venv/bin/pip" install --quiet "${FHIR_PACKAGES[@]}"
  fi
  export ONSHI_FHIR_PYTHON="$venv/bin/python"
}

# Debian's Chromium and its WebDriver (chromedriver) for the reception page's test
# (tests/api/desk.rs), with a Japanese font so that its screenshots show the page's text.
# Sets ONSHI_CHROMIUM and ONSHI_CHROMEDRIVER (the test reads them) unless already set.
ensure_chromium() {
  export ONSHI_CHROMIUM="${ONSHI_CHROMIUM:-/usr/bin/chromium}"
  export ONSHI_CHROMEDRIVER="${ONSHI_CHROMEDRIVER:-/usr/bin/chromedriver}"
  if [ ! -x "$ONSHI_CHROMIUM" ] || [ ! -x "$ONSHI_CHROMEDRIVER" ]; then
    ensure_packages chromium chromium-driver
  fi
  ensure_packages fonts-ipafont-gothic
}

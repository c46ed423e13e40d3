#!/usr/bin/env bash
# Install and start what the test suite needs outside Python, idempotently:
# the real validators (STILTS), headless Chromium, PostgreSQL 15 with pgsphere.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PACKAGES=(stilts chromium postgresql-15 postgresql-15-pgsphere)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-system: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q "${missing[@]}" >/dev/null \
    || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "${missing[@]}" >/dev/null; }
fi

# PostgreSQL: the Debian cluster, on 127.0.0.1 only, with a password user for TCP
# (Felis cannot use the Unix socket, see NOTES.md).
if ! pg_lsclusters -h | awk '$1 == 15 && $2 == "main"' | grep -q .; then
  $SUDO pg_createcluster 15 main >/dev/null
fi
if ! pg_lsclusters -h | awk '$1 == 15 && $2 == "main" && $4 == "online"' | grep -q .; then
  $SUDO pg_ctlcluster 15 main start
fi
for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
$SUDO -u postgres psql -q -v ON_ERROR_STOP=1 <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vosim') THEN
    CREATE ROLE vosim LOGIN SUPERUSER PASSWORD 'vosim';
  END IF;
END $$;
SELECT 'CREATE DATABASE vosim OWNER vosim'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'vosim')\gexec
SQL
echo "setup-system: stilts, chromium and PostgreSQL (vosim@127.0.0.1:5432) ready"

#!/usr/bin/env bash
# Install and start what the test suite needs outside Python, idempotently:
# the real validators (STILTS), headless Chromium, PostgreSQL 15 with pgsphere.
set -euo pipefail

SUDO=""
AS_POSTGRES=(runuser -u postgres --)
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; AS_POSTGRES=(sudo -u postgres); fi
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
# (Felis cannot use the Unix socket, see docs/validators.md).
if ! pg_lsclusters -h | awk '$1 == 15 && $2 == "main"' | grep -q .; then
  $SUDO pg_createcluster 15 main >/dev/null
fi
if ! pg_lsclusters -h | awk '$1 == 15 && $2 == "main" && $4 == "online"' | grep -q .; then
  $SUDO pg_ctlcluster 15 main start
fi
for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
"${AS_POSTGRES[@]}" psql -q -v ON_ERROR_STOP=1 <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vosim') THEN
    CREATE ROLE vosim LOGIN SUPERUSER PASSWORD 'vosim';
  END IF;
END $$;
SELECT 'CREATE DATABASE vosim OWNER vosim'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'vosim')\gexec
SQL

# GAVO DaCHS, for the plugin-mode acceptance tests (publishing into an archive's
# own TAP service). Optional: where the package cannot be installed, those tests
# skip. Its configuration needs the cluster above running; it creates its own
# database (gavo) and roles. /etc/gavo.rc keeps a DaCHS started by the system on
# 127.0.0.1:18080, clear of the ports others use; the tests run their own server
# on a free port with a settings file of their own.
if [ ! -e /etc/gavo.rc ]; then
  printf '[web]\nbindAddress: 127.0.0.1\nserverPort: 18080\nserverURL: http://127.0.0.1:18080\n' \
    | $SUDO tee /etc/gavo.rc >/dev/null
fi
if ! dpkg-query -W -f='${Status}' gavodachs2-server 2>/dev/null | grep -q "install ok installed"; then
  echo "setup-system: installing gavodachs2-server"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q gavodachs2-server >/dev/null \
    || { $SUDO apt-get update -q >/dev/null \
      && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q gavodachs2-server >/dev/null; } \
    || echo "setup-system: gavodachs2-server could not be installed; the DaCHS tests will skip"
fi
echo "setup-system: stilts, chromium, PostgreSQL (vosim@127.0.0.1:5432) and DaCHS ready"

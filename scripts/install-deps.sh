#!/usr/bin/env bash
# Installs what building and testing need, from Debian's archive only.
# Quick when everything is there already.
set -euo pipefail

packages=(
    build-essential cmake pkg-config
    postgresql-15 postgresql-server-dev-15 postgresql-contrib
    libcurl4-openssl-dev libssl-dev libpqxx-dev libgtest-dev
    media-types nginx curl pgbouncer
    python3 python3-boto3 python3-psycopg2 awscli
    chromium chromium-driver python3-selenium
)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts nginx and a default PostgreSQL cluster on install; the
# tests start their own on free ports and need neither.

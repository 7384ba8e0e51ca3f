#!/usr/bin/env bash
# `npm run db:down`: stops the PostgreSQL that `npm run db:up` started (its data stays in .postgres/).
set -euo pipefail
cd "$(dirname "$0")/../.."
data=.postgres/data
if [ ! -f "$data/postmaster.pid" ]; then echo "no PostgreSQL from db:up is running"; exit 0; fi
ctl=/usr/lib/postgresql/15/bin/pg_ctl
if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$ctl" -D "$data" stop -m fast; else "$ctl" -D "$data" stop -m fast; fi

#!/bin/sh
# Sourced by local-up.sh and local-down.sh: the local stack's file state backend inside the repo
# (ignored by git) and a passphrase that is only for it.
PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-local-stack-only}"
export PULUMI_BACKEND_URL PULUMI_CONFIG_PASSPHRASE

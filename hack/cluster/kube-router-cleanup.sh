#!/usr/bin/env bash
# Removes kube-router's firewall rules and ipsets (used by down.sh). kube-router
# v2.1.0's own --cleanup-config runs on an empty controller and removes nothing
# (then panics in the service-proxy cleanup), so this removes them by name.
set -uo pipefail
CHAINS='KUBE-ROUTER-|KUBE-POD-FW-|KUBE-NWPLCY-'
command -v iptables >/dev/null || exit 0
chains=$(iptables -S 2>/dev/null | awk -v re="^($CHAINS)" '$1 == "-N" && $2 ~ re {print $2}')
for c in $chains; do iptables -F "$c" 2>/dev/null; done
# What is left pointing at them are the jumps from INPUT, FORWARD and OUTPUT.
iptables -S 2>/dev/null | grep -E -- "-j ($CHAINS)" | sed 's/^-A /-D /' | while read -r rule; do eval "iptables $rule" 2>/dev/null; done
for c in $chains; do iptables -X "$c" 2>/dev/null; done
if command -v ipset >/dev/null; then
  for s in $(ipset list -n 2>/dev/null | grep -E '^(KUBE-SRC-|KUBE-DST-|kube-router-)'); do ipset destroy "$s" 2>/dev/null; done
fi
exit 0

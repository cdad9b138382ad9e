#!/usr/bin/env bash
# Start a private containerd for kybernetes tests and development.
#
# Usage:
#   source .ci/containerd.sh; kyb_containerd_start   # exports KYB_CONTAINERD_ADDRESS (and _PID, _DIR)
#   ...; kyb_containerd_stop                           # stops the daemon kyb_containerd_start started
#   bash .ci/containerd.sh [start]                     # prints the socket path; the daemon keeps running
#   bash .ci/containerd.sh stop
#
# kyb_containerd_start installs containerd, runc and the CNI plugins with
# apt-get when they are missing, then runs
# `containerd --config C --root R --state S --address SOCK` under
# KYB_CONTAINERD_DIR (default /var/lib/kyb-containerd; socket, state and pid
# file in KYB_CONTAINERD_RUNDIR, default /run/kyb-containerd) and waits until
# the socket answers. It never touches the system containerd
# (/run/containerd/containerd.sock). When the private daemon already
# answers, it is reused.
#
# The tests of runtimes/containerd find the daemon through
# KYB_CONTAINERD_ADDRESS (else /run/containerd/containerd.sock); they need
# root. Without a daemon they skip, unless CI=true, where they fail.

kyb_containerd_stop() {
	local rundir="${KYB_CONTAINERD_RUNDIR:-/run/kyb-containerd}"
	local pidfile="$rundir/containerd.pid"
	if [ -f "$pidfile" ]; then
		local pid
		pid="$(cat "$pidfile")"
		kill "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		rm -f "$pidfile"
	fi
	return 0
}

kyb_containerd_start() {
	local dir="${KYB_CONTAINERD_DIR:-/var/lib/kyb-containerd}"
	local rundir="${KYB_CONTAINERD_RUNDIR:-/run/kyb-containerd}"
	local sock="$rundir/containerd.sock"
	local pidfile="$rundir/containerd.pid"

	local missing=()
	command -v containerd >/dev/null 2>&1 || missing+=(containerd)
	command -v runc >/dev/null 2>&1 || missing+=(runc)
	[ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ] || missing+=(containernetworking-plugins)
	command -v ip >/dev/null 2>&1 || missing+=(iproute2)
	command -v iptables >/dev/null 2>&1 || missing+=(iptables)
	if [ "${#missing[@]}" -gt 0 ]; then
		echo "containerd.sh: installing ${missing[*]}" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >&2 || return 1
		apt-get install -y -qq "${missing[@]}" >&2 || return 1
	fi

	mkdir -p "$dir/root" "$rundir/state" || return 1
	# Reuse a daemon that already answers on our socket.
	if [ -S "$sock" ] && ctr --address "$sock" version >/dev/null 2>&1; then
		export KYB_CONTAINERD_ADDRESS="$sock" KYB_CONTAINERD_DIR="$dir"
		[ -f "$pidfile" ] && export KYB_CONTAINERD_PID="$(cat "$pidfile")"
		echo "$sock"
		return 0
	fi
	rm -f "$sock"

	cat >"$dir/config.toml" <<CONF
version = 2
root = "$dir/root"
state = "$rundir/state"
# The CRI plugin is not needed: kybernetes sets up pod networks itself.
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$sock"

[ttrpc]
  address = "$sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""
CONF

	# setsid so that the daemon outlives this shell and is not hit by its
	# job-control signals.
	setsid containerd --config "$dir/config.toml" --root "$dir/root" --state "$rundir/state" \
		--address "$sock" >"$dir/containerd.log" 2>&1 </dev/null &
	local pid=$!
	echo "$pid" >"$pidfile"

	local ok=0
	for _ in $(seq 1 300); do
		if ! kill -0 "$pid" 2>/dev/null; then break; fi
		if [ -S "$sock" ] && ctr --address "$sock" version >/dev/null 2>&1; then ok=1; break; fi
		sleep 0.1
	done
	if [ "$ok" != 1 ]; then
		echo "containerd.sh: containerd did not answer on $sock; log:" >&2
		tail -n 40 "$dir/containerd.log" >&2
		return 1
	fi
	export KYB_CONTAINERD_ADDRESS="$sock" KYB_CONTAINERD_PID="$pid" KYB_CONTAINERD_DIR="$dir"
	echo "$sock"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	case "${1:-start}" in
	start) kyb_containerd_start ;;
	stop) kyb_containerd_stop ;;
	*) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
	esac
	exit $?
fi

// Package fault holds the control plane's fault tests with real processes:
// the kyb binary is built once per run, real `kyb server` processes are
// started (three for a cluster, in network namespaces where a partition is
// needed), killed with SIGKILL, restarted and partitioned, while clients
// apply. They run when CI=true or KYB_FAULT=1 (and not with -short), and
// take about two minutes. See docs/ha.md.
package fault

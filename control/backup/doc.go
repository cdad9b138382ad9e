// Package backup writes and restores a backup of the whole control-plane
// store: every JetStream stream of the control plane's account (the objects
// bucket with its leases, the heartbeat and auth buckets, the events and
// logs streams, the module object store), each as a JetStream snapshot
// taken by the server, so revisions (resourceVersions) come back exactly.
//
// The file is a tar archive: "kyb-backup.json" (the format version and the
// names of the streams), then for each stream "<name>.json" (the server's
// snapshot reply: the stream's configuration and state) and
// "<name>.snapshot" (the server's snapshot bytes). Each stream is a
// consistent point-in-time copy; streams are taken one after the other
// (objects first), so a backup is not one cut across streams. The pki
// directory (the cluster's keys) is never in a backup: keep it apart.
//
// It speaks JetStream's snapshot and restore API ($JS.API.STREAM.SNAPSHOT,
// $JS.API.STREAM.RESTORE) on the control plane's own connection; users reach
// it only through the apiserver's backup verb and `kyb server --restore`.
package backup

package controlplane

import (
	"sync"
	"time"
	_ "unsafe" // go:linkname
)

// nats-server's Raft election timeouts (server/raft.go): a follower that
// hears no heartbeat from its leader for a random time between these
// starts an election. nats-server 2.15 fixes them at 4–9 s with no option,
// so a killed stream leader is replaced only after 4–9 s. kybernetes sets
// them once, before its first clustered server starts, to
// ElectionTimeoutMin–Max: still at least two of the leader's 1 s
// heartbeats, so a busy leader is not deposed by one late beat. If a
// nats-server upgrade renames them, the build fails here (it does not
// silently stop applying).
//
//go:linkname natsMinElectionTimeout github.com/nats-io/nats-server/v2/server.minElectionTimeout
var natsMinElectionTimeout time.Duration

//go:linkname natsMaxElectionTimeout github.com/nats-io/nats-server/v2/server.maxElectionTimeout
var natsMaxElectionTimeout time.Duration

// The election timeouts a clustered server runs with (docs/ha.md).
const (
	ElectionTimeoutMin = 2 * time.Second
	ElectionTimeoutMax = 3500 * time.Millisecond
)

var setElection sync.Once

// tuneRaft sets the election timeouts of every NATS server of this process;
// call it before the first clustered server is created.
func tuneRaft() {
	setElection.Do(func() {
		natsMinElectionTimeout, natsMaxElectionTimeout = ElectionTimeoutMin, ElectionTimeoutMax
	})
}

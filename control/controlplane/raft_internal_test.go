package controlplane

import "testing"

// The linkname reaches nats-server's own variables: before tuneRaft they
// hold nats-server's defaults (4 s and 9 s), after it ours.
func TestRaftElectionTimeoutsLinked(t *testing.T) {
	if natsMinElectionTimeout != ElectionTimeoutMin {
		if natsMinElectionTimeout.Seconds() != 4 || natsMaxElectionTimeout.Seconds() != 9 {
			t.Fatalf("nats-server's election timeouts read %v-%v, want its defaults 4s-9s: the linkname does not reach them", natsMinElectionTimeout, natsMaxElectionTimeout)
		}
	}
	tuneRaft()
	if natsMinElectionTimeout != ElectionTimeoutMin || natsMaxElectionTimeout != ElectionTimeoutMax {
		t.Fatalf("after tuneRaft: %v-%v", natsMinElectionTimeout, natsMaxElectionTimeout)
	}
}

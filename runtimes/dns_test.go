package runtimes

import "testing"

func TestParseResolvConf(t *testing.T) {
	c := ParseResolvConf([]byte("# comment\nnameserver 1.1.1.1\ndomain a.example\nsearch b.example c.example ; x\nnameserver 8.8.8.8\noptions ndots:2 edns0\nbogus\n"))
	if got := string(c.ResolvConf()); got != "search b.example c.example\nnameserver 1.1.1.1\nnameserver 8.8.8.8\noptions ndots:2 edns0\n" {
		t.Fatalf("round trip:\n%s", got)
	}
}

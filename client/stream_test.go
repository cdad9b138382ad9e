package client_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// A stream notices a server that stops answering (no heartbeat within the
// idle time) and one that is not there, each as a 503; heartbeats keep a
// quiet stream alive; an end with a resume point re-sends the request.
func TestStreamEnds(t *testing.T) {
	s := testutil.StartNATS(t)
	srv := testutil.Connect(t, s)
	nc := testutil.Connect(t, s)
	msg := func(kind string, data string, hdr ...string) *nats.Msg {
		m := &nats.Msg{Header: nats.Header{api.StreamHeader: []string{kind}}, Data: []byte(data)}
		for i := 0; i+1 < len(hdr); i += 2 {
			m.Header.Set(hdr[i], hdr[i+1])
		}
		return m
	}
	// test.dies beats once, sends one item, then says nothing more.
	if _, err := srv.Subscribe("test.dies", func(m *nats.Msg) {
		_ = m.RespondMsg(msg(api.StreamHeartbeat, api.HeartbeatBody))
		_ = m.RespondMsg(msg(api.StreamData, "a"))
	}); err != nil {
		t.Fatal(err)
	}
	// test.resumes answers "a" then ends with resume "2"; asked from "2" it
	// beats a few times (slower than nothing, faster than idle), sends "b"
	// and ends for good.
	if _, err := srv.Subscribe("test.resumes", func(m *nats.Msg) {
		if string(m.Data) == "from 2" {
			for range 4 {
				_ = m.RespondMsg(msg(api.StreamHeartbeat, api.HeartbeatBody))
				time.Sleep(40 * time.Millisecond)
			}
			_ = m.RespondMsg(msg(api.StreamData, "b"))
			_ = m.RespondMsg(msg(api.StreamEnd, ""))
			return
		}
		_ = m.RespondMsg(msg(api.StreamData, "a"))
		_ = m.RespondMsg(msg(api.StreamEnd, "", api.StreamResumeHeader, "2"))
	}); err != nil {
		t.Fatal(err)
	}
	// test.flaky ends its first stream with resume "2"; the first request
	// from "2" finds the server "restarting" (503), the next one is served.
	var flaky atomic.Int32
	if _, err := srv.Subscribe("test.flaky", func(m *nats.Msg) {
		if string(m.Data) != "from 2" {
			_ = m.RespondMsg(msg(api.StreamData, "a"))
			_ = m.RespondMsg(msg(api.StreamEnd, "", api.StreamResumeHeader, "2"))
			return
		}
		if flaky.Add(1) == 1 {
			_ = m.RespondMsg(&nats.Msg{Header: nats.Header{micro.ErrorCodeHeader: []string{"503"}, micro.ErrorHeader: []string{"stopping"}}})
			return
		}
		_ = m.RespondMsg(msg(api.StreamData, "b"))
		_ = m.RespondMsg(msg(api.StreamEnd, ""))
	}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name, subject string
		want          string
		code          int
	}{
		{"dead server", "test.dies", "a", 503},
		{"no server", "test.nobody", "", 503},
		{"resumed", "test.resumes", "ab", 0},
		{"resumed after a 503", "test.flaky", "ab", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			err := client.Stream(ctx, nc, 100*time.Millisecond, tc.subject, []byte("first"),
				func(resume string) ([]byte, error) { return []byte("from " + resume), nil },
				func(m *nats.Msg) error { got += string(m.Data); return nil })
			if got != tc.want {
				t.Errorf("data %q, want %q", got, tc.want)
			}
			if tc.code == 0 && err != nil {
				t.Fatalf("error %v", err)
			}
			if st, ok := err.(*api.Status); tc.code != 0 && (!ok || st.Code != tc.code) {
				t.Fatalf("error %v, want a %d Status", err, tc.code)
			}
		})
	}
}

package apiserver

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
)

// errWindow tells a stream's producer that the stream has sent what one
// window may hold (its byte budget): return the resume point.
var errWindow = errors.New("stream window full")

// stream is one streamed reply: data messages, heartbeats and one end
// message on the request's reply subject (see api.StreamHeader). A
// producer calls send for each item; the heartbeats run beside it.
type stream struct {
	s     *Server
	reply string
	sent  atomic.Int64
	max   int64
}

// send publishes one data message with hdr (may be nil). After the message
// that fills the window it returns errWindow: the message was sent, and the
// producer should end with the resume point after it.
func (st *stream) send(hdr nats.Header, data []byte) error {
	if hdr == nil {
		hdr = nats.Header{}
	}
	hdr.Set(api.StreamHeader, api.StreamData)
	if err := st.s.nc.PublishMsg(&nats.Msg{Subject: st.reply, Header: hdr, Data: data}); err != nil {
		return fmt.Errorf("stream reply: %w", err)
	}
	if st.sent.Add(int64(len(data))) >= st.max {
		return errWindow
	}
	return nil
}

// producer produces one stream until it is complete (resume "") or ctx
// ends or send says errWindow; then it returns the point to resume from. An
// error ends the stream with that error.
type producer func(ctx context.Context, st *stream) (resume string, err error)

// serveStream answers req with a stream fed by run, in its own goroutine.
// Streams are bounded by Config.MaxStreams (503 beyond), end after
// Config.StreamMaxDuration or Config.StreamMaxBytes with a resume point,
// and beat every Config.StreamHeartbeat so that a client notices a dead
// server.
//
// slots is s.streams for users' streams and s.nodeStreams for nodes'.
func (s *Server) serveStream(req micro.Request, slots chan struct{}, what string, run producer) {
	reply := req.Reply()
	if reply == "" {
		syncErr(req, api.NewBadRequest("%s is a streamed reply: send it as a request (with a reply subject)", what))
		return
	}
	select {
	case slots <- struct{}{}:
	default:
		syncErr(req, api.NewUnavailable("too many streams open (%d); retry", cap(slots)))
		return
	}
	if !s.track() {
		<-slots
		syncErr(req, api.NewUnavailable("apiserver is shutting down; retry"))
		return
	}
	go func() {
		defer s.wg.Done()
		defer func() { <-slots }()
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.StreamMaxDuration)
		defer cancel()
		st := &stream{s: s, reply: reply, max: s.cfg.StreamMaxBytes}
		beats := make(chan struct{})
		hbDone := make(chan struct{})
		go func() {
			defer close(hbDone)
			t := time.NewTicker(s.cfg.StreamHeartbeat)
			defer t.Stop()
			hb := &nats.Msg{Subject: reply, Header: nats.Header{api.StreamHeader: []string{api.StreamHeartbeat}}, Data: []byte(api.HeartbeatBody)}
			for {
				select {
				case <-beats:
					return
				case <-t.C:
					if err := s.nc.PublishMsg(hb); err != nil {
						s.log.Debug("stream heartbeat", "what", what, "err", err)
					}
				}
			}
		}()
		resume, err := run(ctx, st)
		close(beats)
		<-hbDone
		if err != nil {
			m := errorMsg(reply, err)
			m.Header.Set(api.StreamHeader, api.StreamEnd)
			if st := toStatus(err); st.Code >= 500 {
				s.log.Error("stream failed", "what", what, "err", err)
			}
			if perr := s.nc.PublishMsg(m); perr != nil {
				s.log.Warn("stream end", "what", what, "err", perr)
			}
			return
		}
		end := &nats.Msg{Subject: reply, Header: nats.Header{api.StreamHeader: []string{api.StreamEnd}}}
		if resume != "" {
			end.Header.Set(api.StreamResumeHeader, resume)
		}
		if perr := s.nc.PublishMsg(end); perr != nil {
			s.log.Warn("stream end", "what", what, "err", perr)
		}
	}()
}

package execwire

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

func TestWindow(t *testing.T) {
	w := NewWindow(10)
	if n, err := w.Take(context.Background(), 25); n != 10 || err != nil {
		t.Fatalf("take: %d %v; want the 10 held", n, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := w.Take(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("take without credit: %v; want it to wait until ctx ends", err)
	}
	got := make(chan int, 1)
	go func() {
		n, _ := w.Take(context.Background(), 5)
		got <- n
	}()
	w.Give(3)
	if n := <-got; n != 3 {
		t.Errorf("take after give 3: %d", n)
	}
	w.Give(10 * api.ExecWindow) // a hostile credit is capped
	if n, _ := w.Take(context.Background(), 100*api.ExecWindow); n != api.ExecWindow {
		t.Errorf("credit beyond the window: took %d, want %d", n, api.ExecWindow)
	}
	w.Close()
	w.Give(1) // a credit that arrives after the end is ignored
	if _, err := w.Take(context.Background(), 1); !errors.Is(err, ErrClosed) {
		t.Errorf("take after close: %v", err)
	}
}

func TestInbox(t *testing.T) {
	var credited []int
	b := NewInbox(func(n int) { credited = append(credited, n) })
	if err := b.Push(make([]byte, api.ExecWindow)); err != nil {
		t.Fatal(err)
	}
	if err := b.Push([]byte{1}); !errors.Is(err, ErrOverrun) {
		t.Fatalf("push past the window: %v; want ErrOverrun", err)
	}
	buf := make([]byte, api.ExecWindow/8)
	for range 2 {
		if _, err := b.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	if len(credited) != 1 || credited[0] != api.ExecWindow/4 {
		t.Errorf("credit after a quarter window read: %v", credited)
	}
	_ = b.Push(nil) // end of input
	n, _ := io.Copy(io.Discard, b)
	if n != api.ExecWindow*3/4 {
		t.Errorf("read %d after EOF, want the rest", n)
	}
	if err := b.Push([]byte{1}); !errors.Is(err, ErrClosed) {
		t.Errorf("push after EOF: %v", err)
	}
	total := 0
	for _, c := range credited {
		total += c
	}
	if total != api.ExecWindow {
		t.Errorf("credited %d in all, want %d", total, api.ExecWindow)
	}
}

// A tiny frame costs MinFrameCost: its overhead is credited when it is
// queued, its bytes when read; so a window holds a bounded number of frames.
func TestFrameCost(t *testing.T) {
	var credited int
	b := NewInbox(func(n int) { credited += n })
	_ = b.Push([]byte("0123456789"))
	if credited != MinFrameCost-10 {
		t.Errorf("credited %d at push, want %d", credited, MinFrameCost-10)
	}
	buf := make([]byte, 16)
	b.Read(buf)
	if credited != MinFrameCost {
		t.Errorf("credited %d after the read, want %d", credited, MinFrameCost)
	}
	w := NewWindow(api.ExecWindow)
	frames := 0
	s := &Sender{Ctx: context.Background(), Window: w, Send: func([]byte) error { frames++; return nil }}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	s.Ctx = ctx
	for {
		if _, err := s.Write([]byte{'x'}); err != nil {
			break
		}
	}
	if frames != api.ExecWindow/MinFrameCost {
		t.Errorf("%d one-byte frames sent within a window, want %d", frames, api.ExecWindow/MinFrameCost)
	}
}

package lifecycle

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// recorder makes components that note the order in which they stop.
type recorder struct {
	mu      sync.Mutex
	stopped []string
}

func (r *recorder) comp(name string, fail error) Component {
	return Component{Name: name, Run: func(ctx context.Context) error {
		if fail != nil {
			time.Sleep(20 * time.Millisecond)
			return fail
		}
		<-ctx.Done()
		time.Sleep(5 * time.Millisecond) // a stop that takes a moment
		r.mu.Lock()
		r.stopped = append(r.stopped, name)
		r.mu.Unlock()
		return nil
	}}
}

func TestStopsInReverseOrder(t *testing.T) {
	r := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(30 * time.Millisecond); cancel() }()
	err := Run(ctx, quiet, time.Second, r.comp("broker", nil), r.comp("store", nil), r.comp("processor", nil), r.comp("http", nil))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"http", "processor", "store", "broker"}; !slices.Equal(r.stopped, want) {
		t.Fatalf("stop order %v, want %v", r.stopped, want)
	}
}

func TestFailureStopsTheRest(t *testing.T) {
	r := &recorder{}
	boom := errors.New("boom")
	err := Run(context.Background(), quiet, time.Second, r.comp("broker", nil), r.comp("processor", boom), r.comp("http", nil))
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want boom", err)
	}
	if want := []string{"http", "broker"}; !slices.Equal(r.stopped, want) {
		t.Fatalf("stop order %v, want %v", r.stopped, want)
	}
}

func TestStuckComponentTimesOut(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	stuck := Component{Name: "stuck", Run: func(context.Context) error { select {} }}
	start := time.Now()
	err := Run(ctx, quiet, 50*time.Millisecond, stuck)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %v, want a timeout error soon", err, time.Since(start))
	}
}

// Package lifecycle runs a program's components and stops them in a
// written-out order. Components are started in the order given and
// stopped in reverse: list producers of data after their consumers' sinks
// (broker, store, processor, ..., HTTP) so shutdown goes HTTP first, then
// scrapers, then consumers (which flush and commit), then storage, then
// the broker.
//
// Every component runs in a goroutine owned by Run, which waits for all of
// them before returning.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Component is one long-running part. Run must return when its context
// is cancelled (nil for a clean stop).
type Component struct {
	Name string
	Run  func(ctx context.Context) error
}

// Run starts comps and blocks until ctx ends or one of them returns; it
// then stops the rest one by one in reverse order and returns the first
// error (nil on a clean shutdown).
func Run(ctx context.Context, log *slog.Logger, stopTimeout time.Duration, comps ...Component) error {
	type running struct {
		cancel context.CancelFunc
		done   chan error
	}
	rs := make([]running, len(comps))
	exited := make(chan int, len(comps))
	for i, c := range comps {
		cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		rs[i] = running{cancel: cancel, done: make(chan error, 1)}
		go func() {
			err := c.Run(cctx)
			rs[i].done <- err
			exited <- i
		}()
	}
	var first error
	results := make([]error, len(comps))
	got := make([]bool, len(comps))
	select {
	case <-ctx.Done():
		log.Info("shutting down", "cause", context.Cause(ctx))
	case i := <-exited:
		err := <-rs[i].done
		results[i], got[i] = err, true
		if err != nil {
			first = fmt.Errorf("%s: %w", comps[i].Name, err)
			log.Error("component failed; shutting down", "component", comps[i].Name, "err", err)
		} else {
			log.Info("component stopped; shutting down", "component", comps[i].Name)
		}
	}
	for i := len(comps) - 1; i >= 0; i-- {
		rs[i].cancel()
		if got[i] {
			continue
		}
		start := time.Now()
		select {
		case err := <-rs[i].done:
			results[i] = err
			if err != nil && !errors.Is(err, context.Canceled) && first == nil {
				first = fmt.Errorf("%s: %w", comps[i].Name, err)
			}
			log.Debug("stopped", "component", comps[i].Name, "took", time.Since(start).Round(time.Millisecond))
		case <-time.After(stopTimeout):
			log.Error("component did not stop in time", "component", comps[i].Name, "timeout", stopTimeout)
			if first == nil {
				first = fmt.Errorf("%s: did not stop within %v", comps[i].Name, stopTimeout)
			}
		}
	}
	return first
}

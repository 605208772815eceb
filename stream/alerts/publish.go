package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/internal/account"
	"github.com/netwarden/netwarden/internal/broker"
)

// Event is an alert as published on the alert topic (JSON; schema in
// docs/schemas/alert-blocklist.json). The record key is the account id
// in decimal.
type Event struct {
	// ID is the alert's stable id: a consumer seeing an id twice (the
	// topic is at-least-once) drops the repeat.
	ID       int64     `json:"id"`
	Account  int64     `json:"account"`
	Kind     string    `json:"kind"`
	Created  time.Time `json:"created"`
	Detected time.Time `json:"detected"`
	Resource string    `json:"resource"`
	Watched  string    `json:"watched"`
	List     string    `json:"list"`
	Lists    []string  `json:"lists"`
	Source   *Source   `json:"source,omitempty"`
}

// Source is the change record that raised an alert; absent for initial alerts.
type Source struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// EventOf returns the published form of a.
func EventOf(a account.Alert, changesTopic string) Event {
	e := Event{ID: a.ID, Account: int64(a.Account), Kind: string(a.Kind), Created: a.Created, Detected: a.Detected,
		Resource: a.Resource, Watched: a.Watched, List: a.List, Lists: a.Lists}
	if e.Lists == nil {
		e.Lists = []string{}
	}
	if a.SourcePartition >= 0 {
		e.Source = &Source{Topic: changesTopic, Partition: a.SourcePartition, Offset: a.SourceOffset}
	}
	return e
}

// Run relays stored, unpublished alerts to the alert topic until ctx
// ends: woken by every stored batch, and once a second regardless.
func (a *Alerter) Run(ctx context.Context) error {
	if a.prod == nil {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		n, err := a.publish(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			mPubErr.Inc()
			a.log.Warn("publish alerts; retrying", "err", err, "in", a.cfg.PublishRetry)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(a.cfg.PublishRetry):
			}
			continue
		case n == a.cfg.PublishBatch:
			continue // more waiting
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.kick:
		case <-t.C:
		}
	}
}

// publish produces one batch of unpublished alerts and marks them.
func (a *Alerter) publish(ctx context.Context) (int, error) {
	als, err := a.store.Unpublished(ctx, a.cfg.PublishBatch)
	if err != nil || len(als) == 0 {
		return 0, err
	}
	recs := make([]*kgo.Record, len(als))
	ids := make([]int64, len(als))
	for i, al := range als {
		v, err := json.Marshal(EventOf(al, broker.TopicChanges))
		if err != nil {
			return 0, fmt.Errorf("encode alert %d: %w", al.ID, err)
		}
		recs[i] = &kgo.Record{Topic: a.topic, Key: strconv.AppendInt(nil, int64(al.Account), 10), Value: v}
		ids[i] = al.ID
	}
	if err := a.prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return 0, fmt.Errorf("produce %d alerts to %s: %w", len(recs), a.topic, err)
	}
	if err := a.store.MarkPublished(ctx, ids); err != nil {
		return 0, err
	}
	mPublished.Add(len(ids))
	return len(ids), nil
}

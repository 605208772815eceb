package telemetry

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/ingest/bgp"
	"github.com/netwarden/netwarden/internal/broker"
)

// Publisher writes points to TopicTelemetry with a franz-go producer
// owned by the caller. It is safe for concurrent use.
type Publisher struct {
	cl    *kgo.Client
	topic string
}

// NewPublisher publishes through cl to broker.TopicTelemetry.
func NewPublisher(cl *kgo.Client) *Publisher {
	return &Publisher{cl: cl, topic: broker.TopicTelemetry}
}

// Publish produces pts (already checked) and waits for the broker's
// acknowledgement of every one.
func (p *Publisher) Publish(ctx context.Context, pts []detect.Point) error {
	if len(pts) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, len(pts))
	for i, pt := range pts {
		v, err := json.Marshal(pt)
		if err != nil { // only NaN or Inf, which Check rejects
			return fmt.Errorf("encode telemetry point %s: %w", Key(pt), err)
		}
		recs[i] = &kgo.Record{Topic: p.topic, Key: []byte(Key(pt)), Value: v}
	}
	if err := p.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("publish %d telemetry points: %w", len(pts), err)
	}
	return nil
}

// Sink receives points (Publisher, NDJSON).
type Sink interface {
	Publish(ctx context.Context, pts []detect.Point) error
}

// BGPSink adapts a Sink to bgp.Producer's: bgp points become points of
// datasource "bgp".
type BGPSink struct{ Sink Sink }

// Publish converts and forwards pts.
func (s BGPSink) Publish(ctx context.Context, pts []bgp.Point) error {
	out := make([]detect.Point, len(pts))
	for i, p := range pts {
		out[i] = detect.Point{Datasource: detect.BGP, EntityType: p.EntityType, EntityCode: p.EntityCode, Time: p.Time, Value: p.Value}
	}
	return s.Sink.Publish(ctx, out)
}

// NDJSON writes points as JSON lines (netwarden simulate without a broker).
// It is safe for concurrent use.
type NDJSON struct {
	mu sync.Mutex
	w  *bufio.Writer
}

// NewNDJSON writes to w.
func NewNDJSON(w io.Writer) *NDJSON { return &NDJSON{w: bufio.NewWriterSize(w, 64<<10)} }

// Publish writes one line per point and flushes.
func (n *NDJSON) Publish(_ context.Context, pts []detect.Point) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	enc := json.NewEncoder(n.w)
	for _, p := range pts {
		if err := enc.Encode(p); err != nil {
			return fmt.Errorf("write telemetry point %s: %w", Key(p), err)
		}
	}
	if err := n.w.Flush(); err != nil {
		return fmt.Errorf("write telemetry points: %w", err)
	}
	return nil
}

// Intake is what POST /v1/telemetry needs: a validator and a publisher.
type Intake struct {
	*Validator
	*Publisher
}

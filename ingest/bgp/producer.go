package bgp

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Sink receives the points of each closed bin, in time order.
type Sink interface {
	Publish(ctx context.Context, pts []Point) error
}

// Producer replays MRT files (a RIB dump, then update files, in order)
// through a Visibility and publishes the points of each bin to a Sink.
type Producer struct {
	files []string
	vis   *Visibility
	sink  Sink
}

// NewProducer returns a Producer of files through vis into sink.
func NewProducer(vis *Visibility, sink Sink, files ...string) *Producer {
	return &Producer{files: files, vis: vis, sink: sink}
}

// Run reads every file, publishes bins as they close and the last bin at
// the end; it stops with ctx's error when ctx ends.
func (p *Producer) Run(ctx context.Context) error {
	var pts []Point
	for _, f := range p.files {
		if err := p.file(ctx, f, &pts); err != nil {
			return err
		}
	}
	pts = p.vis.Flush(pts[:0])
	return p.publish(ctx, pts)
}

func (p *Producer) file(ctx context.Context, path string, pts *[]Point) error {
	r, err := Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	for n := 0; ; n++ {
		if n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %q: %w", path, err)
		}
		*pts = p.vis.Add(e, (*pts)[:0])
		if len(*pts) > 0 {
			if err := p.publish(ctx, *pts); err != nil {
				return err
			}
		}
	}
}

func (p *Producer) publish(ctx context.Context, pts []Point) error {
	if len(pts) == 0 {
		return nil
	}
	if err := p.sink.Publish(ctx, pts); err != nil {
		return fmt.Errorf("publish %d bgp points: %w", len(pts), err)
	}
	return nil
}

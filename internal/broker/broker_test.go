package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func start(t *testing.T, dir string) *Broker {
	t.Helper()
	return startConfig(t, Config{Embedded: Embedded{Dir: dir, Port: -1}, Partitions: 3})
}

// startConfig starts an embedded broker with cfg and its defaults.
func startConfig(t *testing.T, cfg Config) *Broker {
	t.Helper()
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := Start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEmbeddedLogSurvivesRestart: what the embedded broker acknowledged
// is there after it is closed and started again on the same directory.
func TestEmbeddedLogSurvivesRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kafka")
	b := start(t, dir)
	cl, err := b.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 1000
	for i := 0; i < n; i++ {
		r := &kgo.Record{Topic: TopicChanges, Key: []byte(fmt.Sprint(i % 37)), Value: []byte(fmt.Sprint(i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ends, err := EndOffsets(ctx, cl, TopicChanges)
	if err != nil || len(ends) != 3 {
		t.Fatalf("end offsets %v %v, want 3 partitions", ends, err)
	}
	cl.Close()
	b.Close()

	b = start(t, dir)
	defer b.Close()
	cl, err = b.NewClient(kgo.ConsumeTopics(TopicChanges), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	after, err := EndOffsets(ctx, cl, TopicChanges)
	if err != nil {
		t.Fatal(err)
	}
	for p, o := range ends {
		if after[p] != o {
			t.Fatalf("partition %d: end offset %d after restart, %d before", p, after[p], o)
		}
	}
	seen := map[string]bool{}
	for len(seen) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records after restart", len(seen), n)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{Partitions: 0, Embedded: Embedded{Dir: "d"}},
		{Partitions: 2, Embedded: Embedded{Dir: "d", Port: 70000}},
		{Partitions: 2},
		{Partitions: 2, Embedded: Embedded{Dir: "d"}, Compression: "brotli"},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	c := Config{}
	c.Defaults()
	if c.Embedded.Port != 9092 || c.Partitions != 8 || c.Compression != "gzip" {
		t.Errorf("defaults %+v", c)
	}
}

// TestProduceCompression: a client from NewClient compresses its batches
// with kafka.compression, as a consumer sees in the batch attributes.
func TestProduceCompression(t *testing.T) {
	for _, c := range []struct {
		codec string
		attr  uint8 // Kafka's batch attribute: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd
	}{{"none", 0}, {"gzip", 1}, {"snappy", 2}, {"lz4", 3}, {"zstd", 4}} {
		t.Run(c.codec, func(t *testing.T) {
			b := startConfig(t, Config{Embedded: Embedded{Dir: filepath.Join(t.TempDir(), "kafka"), Port: -1}, Partitions: 1, Compression: c.codec})
			defer b.Close()
			cl, err := b.NewClient(kgo.ConsumeTopics(TopicChanges), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			val := []byte(strings.Repeat("compressible ", 100)) // franz-go sends a batch raw when compression does not shrink it
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: TopicChanges, Value: val}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			for {
				fs := cl.PollFetches(ctx)
				if ctx.Err() != nil {
					t.Fatal("record not read back")
				}
				if rs := fs.Records(); len(rs) > 0 {
					if got := rs[0].Attrs.CompressionType(); got != c.attr {
						t.Fatalf("batch compression %d, want %d (%s)", got, c.attr, c.codec)
					}
					return
				}
			}
		})
	}
}

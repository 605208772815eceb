// Package broker gives netwarden its Kafka: either an external cluster
// (Kafka, Redpanda) named by seed brokers, or, when none is configured, an
// embedded Kafka-protocol broker (franz-go's kfake) listening on loopback
// and persisting its log under the data directory, so a restart (clean or
// kill -9) keeps every acknowledged record.
//
// A Broker is created by Start and owned by main; Run blocks until the
// context ends and then closes the embedded cluster. Clients are made with
// NewClient and owned by their callers.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topic names used by netwarden. Alerts and telemetry topics join here.
const (
	TopicChanges = "netwarden.changes"
	// TopicAlerts carries alerts as JSON, keyed by account (stream/alerts).
	TopicAlerts = "netwarden.alerts.blocklist"
	// TopicTelemetry carries outage-detection points as JSON
	// (detect.Point), keyed by "datasource/entity_type/entity_code".
	TopicTelemetry = "netwarden.telemetry"
	// TopicAlertsOutage carries outage alerts as JSON, keyed by
	// "entity_type/entity_code" (stream/outage).
	TopicAlertsOutage = "netwarden.alerts.outage"
)

// Config says which Kafka to use.
type Config struct {
	// Brokers are seed brokers of an external cluster; empty means embedded.
	Brokers []string `yaml:"brokers"`
	// Embedded broker settings, used when Brokers is empty.
	Embedded Embedded `yaml:"embedded"`
	// Partitions of netwarden's topics when it creates them.
	Partitions int `yaml:"partitions"`
	// ReplicationFactor of created topics on an external cluster (-1: broker default).
	ReplicationFactor int `yaml:"replication_factor"`
	// ClientID sent to the brokers.
	ClientID string `yaml:"client_id"`
	// Compression of produced record batches: none, gzip, snappy, lz4 or
	// zstd. The default, gzip, is the one codec every mainstream client
	// decodes without extra packages (kafkajs ships only gzip; kcat,
	// librdkafka, the Java client and franz-go read all five).
	Compression string `yaml:"compression"`
}

// Compression codecs accepted by kafka.compression.
var codecs = map[string]func() kgo.CompressionCodec{
	"none":   kgo.NoCompression,
	"gzip":   kgo.GzipCompression,
	"snappy": kgo.SnappyCompression,
	"lz4":    kgo.Lz4Compression,
	"zstd":   kgo.ZstdCompression,
}

// Embedded configures the in-process broker.
type Embedded struct {
	// Port on 127.0.0.1: 0 means the default 9092, -1 a free port.
	Port int `yaml:"port"`
	// Dir holds the log; empty means <data.dir>/kafka (filled by the caller).
	Dir string `yaml:"dir"`
	// SyncWrites fsyncs every produced batch (survives power loss, slower).
	SyncWrites bool `yaml:"sync_writes"`
}

// Defaults fills zero fields.
func (c *Config) Defaults() {
	if c.Partitions == 0 {
		c.Partitions = 8
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = -1
	}
	if c.ClientID == "" {
		c.ClientID = "netwarden"
	}
	if c.Compression == "" {
		c.Compression = "gzip"
	}
	if c.Embedded.Port == 0 && len(c.Brokers) == 0 {
		c.Embedded.Port = 9092
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Partitions < 1 || c.Partitions > 1024 {
		return fmt.Errorf("kafka.partitions %d out of range 1..1024", c.Partitions)
	}
	if c.Embedded.Port < -1 || c.Embedded.Port > 65535 {
		return fmt.Errorf("kafka.embedded.port %d out of range", c.Embedded.Port)
	}
	if _, ok := codecs[c.Compression]; !ok {
		return fmt.Errorf("kafka.compression %q (want none, gzip, snappy, lz4 or zstd)", c.Compression)
	}
	if len(c.Brokers) == 0 && c.Embedded.Dir == "" {
		return errors.New("kafka.embedded.dir is empty")
	}
	return nil
}

// Broker is the Kafka netwarden talks to.
type Broker struct {
	cfg     Config
	cluster *kfake.Cluster // nil when external
	seeds   []string
	log     *slog.Logger
}

// Start starts the embedded broker if needed and makes sure netwarden's
// topics exist.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Broker, error) {
	b := &Broker{cfg: cfg, seeds: cfg.Brokers, log: log}
	if len(cfg.Brokers) == 0 {
		if err := os.MkdirAll(cfg.Embedded.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("create kafka dir %q: %w", cfg.Embedded.Dir, err)
		}
		opts := []kfake.Opt{
			kfake.NumBrokers(1),
			kfake.Ports(max(cfg.Embedded.Port, 0)),
			kfake.DataDir(filepath.Clean(cfg.Embedded.Dir)),
			kfake.DefaultNumPartitions(cfg.Partitions),
			kfake.ClusterID("netwarden"),
		}
		if cfg.Embedded.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
		c, err := kfake.NewCluster(opts...)
		if err != nil {
			return nil, fmt.Errorf("start embedded kafka on port %d in %q: %w", cfg.Embedded.Port, cfg.Embedded.Dir, err)
		}
		b.cluster = c
		b.seeds = c.ListenAddrs()
		log.Info("embedded kafka started", "addrs", b.seeds, "dir", cfg.Embedded.Dir)
	}
	if err := b.EnsureTopics(ctx, TopicChanges, TopicAlerts, TopicTelemetry, TopicAlertsOutage); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Seeds returns the bootstrap addresses.
func (b *Broker) Seeds() []string { return append([]string(nil), b.seeds...) }

// Embedded reports whether the broker runs in this process.
func (b *Broker) Embedded() bool { return b.cluster != nil }

// NewClient makes a client for the broker with extra options. What it
// produces is compressed with kafka.compression.
func (b *Broker) NewClient(opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(b.seeds...),
		kgo.ClientID(b.cfg.ClientID),
	}
	codec, ok := codecs[b.cfg.Compression]
	if !ok { // unset (a Config used without Defaults): the default
		codec = codecs["gzip"]
	}
	base = append(base, kgo.ProducerBatchCompression(codec()))
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client for %v: %w", b.seeds, err)
	}
	return cl, nil
}

// EnsureTopics creates the topics that do not exist yet.
func (b *Broker) EnsureTopics(ctx context.Context, topics ...string) error {
	cl, err := b.NewClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopics(ctx, int32(b.cfg.Partitions), int16(b.cfg.ReplicationFactor), nil, topics...)
	if err != nil {
		return fmt.Errorf("create topics %v: %w", topics, err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %q: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// Run waits for ctx and then closes the embedded broker. It must be the
// last component to stop: main cancels it after consumers and producers.
func (b *Broker) Run(ctx context.Context) error {
	<-ctx.Done()
	b.Close()
	return nil
}

// Close stops the embedded broker (flushing its log). Idempotent.
func (b *Broker) Close() {
	if b.cluster != nil {
		b.cluster.Close()
	}
}

// EndOffsets returns the next offset to be written per partition of
// topic, asking through cl (any client of this broker).
func EndOffsets(ctx context.Context, cl *kgo.Client, topic string) (map[int32]int64, error) {
	lo, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %q: %w", topic, err)
	}
	out := make(map[int32]int64)
	var ferr error
	lo.Each(func(o kadm.ListedOffset) {
		if o.Err != nil && ferr == nil {
			ferr = fmt.Errorf("end offset of %s/%d: %w", o.Topic, o.Partition, o.Err)
		}
		out[o.Partition] = o.Offset
	})
	return out, ferr
}

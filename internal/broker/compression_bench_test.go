package broker

import (
	"context"
	"encoding/binary"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkProduceCompression produces change-sized records (binary key,
// ~40-byte value, as netwarden.changes carries) through the embedded
// broker with each codec, and reports records/s and the broker's log
// bytes per record. It measured the choice of gzip as kafka.compression's
// default (bench/README.md).
func BenchmarkProduceCompression(b *testing.B) {
	for _, name := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		b.Run(name, func(b *testing.B) {
			dir := filepath.Join(b.TempDir(), "kafka")
			cfg := Config{Embedded: Embedded{Dir: dir, Port: -1}, Partitions: 8, Compression: name}
			cfg.Defaults()
			brk, err := Start(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			defer brk.Close()
			cl, err := brk.NewClient(kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100_000))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			ctx := context.Background()
			lists := []string{"SPAMHAUS-DROP", "DSHIELD", "FIREHOL-LEVEL1", "BLOCKLIST-DE", "IPSUM"}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				key := make([]byte, 18)
				key[0] = 'i'
				key[11], key[12] = 0xff, 0xff
				binary.BigEndian.PutUint32(key[13:], uint32(i)*2654435761)
				key[17] = 128
				l := lists[i%len(lists)]
				val := make([]byte, 0, 32+len(l))
				val = append(val, 1, byte(1+i%2))
				val = binary.BigEndian.AppendUint64(val, uint64(1_700_000_000_000_000+int64(i)*1000))
				val = binary.AppendUvarint(val, uint64(len(l)))
				val = append(val, l...)
				val = append(val, key...)
				cl.Produce(ctx, &kgo.Record{Topic: TopicChanges, Key: key, Value: val}, func(_ *kgo.Record, err error) {
					if err != nil {
						b.Error(err)
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			el := time.Since(start)
			b.StopTimer()
			brk.Close()
			var size int64
			_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if fi, err := d.Info(); err == nil {
						size += fi.Size()
					}
				}
				return nil
			})
			b.ReportMetric(float64(b.N)/el.Seconds(), "records/s")
			b.ReportMetric(float64(size)/float64(b.N), "logbytes/record")
		})
	}
}

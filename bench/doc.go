// Package bench holds netwarden's end-to-end benchmarks and their figures
// (README.md). Everything runs for real and in-process: the embedded Kafka
// broker over TCP on loopback, the processor, Parquet history files on
// disk, the Gin HTTP API on a loopback listener and DuckDB as the SQL
// baseline. Every figure is reported next to a baseline measured in the
// same run, because absolute numbers on a shared machine are noise.
//
// The benchmarks live in the _test.go files:
//
//   - BenchmarkPipeline: raw Kafka consume rate vs the processor writing
//     every change to live state and Parquet history.
//   - BenchmarkHistoryQueryHTTP: GET /metadata/changes/ip/{ip} latency over
//     a large history vs DuckDB over one unsorted Parquet file.
//   - BenchmarkLiveLookupConcurrent: live-state lookups under a concurrent
//     writer vs a map under an RWMutex.
//   - BenchmarkMemory / TestMemoryPerLiveResource: heap bytes per live
//     resource vs raw key bytes and a naive map[string][]string.
//
// Sizes come from NETWARDEN_BENCH_* environment variables (see README.md);
// the defaults keep `go test -run='^$' -bench=. ./bench/` to a few minutes.
package bench

// Package history is the durable, queryable history of blocklist changes:
// an append-only set of Parquet files plus a JSON manifest that names the
// live files and the Kafka offsets their rows cover.
//
// # Contract
//
// Exactly-once bookkeeping: [Store.Commit] writes the rows of one flush
// into new Parquet files and then, in a single atomic rename, a new
// manifest that lists those files together with the next Kafka offset to
// consume per partition. A commit is done only once the manifest rename is
// durable; a crash at any earlier point leaves the previous manifest in
// force, and [Open] deletes the files it does not name. A restarted
// consumer resumes from [Store.Offsets], so history has neither gaps nor
// duplicates as long as the processor commits Kafka offsets only after
// Commit returned (Kafka's committed offsets are advisory; the manifest is
// the truth).
//
// History is append-only: rows are never changed or deleted. Compaction
// ([Store.Compact], run periodically by [Store.Run]) rewrites many small
// files of one month into few large ones with identical content and swaps
// them in with another manifest rename.
//
// A failed Commit changes nothing: the snapshot and manifest stay at the
// last good state and the files it wrote are removed (or, after a crash,
// deleted as orphans by the next Open). Callers must not commit later
// offsets after a failed commit (the processor is fail-stop), since
// offsets are merged per partition.
//
// # Concurrency and ownership
//
// A Store owns its directory; a second Store on the same directory fails
// to open (advisory lock on Dir/LOCK where the platform has flock).
// Commit and Compact may be called from any goroutine: Commit calls are
// serialized with each other and with compaction's manifest swap.
// Lookup, Scan, Offsets, Bits, Files and Stats are safe to call
// concurrently with everything, including Commit and Compact: readers work
// on an immutable snapshot of the file set, and a file replaced by
// compaction is closed and deleted only after every reader that could see
// it has finished and DeleteDelay has passed (DeleteDelay also protects
// outside readers such as DuckDB that were given [Store.Files]).
// Lookup and Scan hold no lock while they call their callback, which runs
// on the caller's goroutine and may call any method of the Store; what it
// reads is the snapshot taken when Lookup or Scan started.
//
// # Layout
//
//	<Dir>/LOCK                                        advisory lock
//	<Dir>/manifest.json                               the committed state
//	<Dir>/manifest.json.tmp                           a manifest being written
//	<Dir>/changes/month=YYYY-MM/<name>.parquet        data files
//	<Dir>/changes/month=YYYY-MM/<name>.parquet.tmp    a data file being written
//	<Dir>/changes/month=YYYY-MM/<name>.parquet.crc    its checksums (see crc.go)
//
// Data files hold the changes of one UTC month (by ts), sorted by
// (key, ts, arrival order). The manifest lists files in arrival order: of
// two files of the same month, every row of the earlier one arrived before
// every row of the later one; compaction keeps that true by replacing a
// run of consecutive files of a month in place.
//
// Manifest (JSON):
//
//	{"version":1,"generation":N,"offsets":{"0":123,...},
//	 "files":[{"path":"changes/month=2025-05/....parquet","month":"2025-05",
//	           "rows":N,"bytes":N,"min_ts":"...","max_ts":"..."}]}
//
// # Parquet schema
//
// The column names are part of the public SQL surface (DuckDB views over
// [Store.Files]):
//
//	ts        INT64 TIMESTAMP(MICROS, isAdjustedToUTC=true)
//	op        BYTE_ARRAY STRING, dictionary-encoded: "add" or "rem"
//	kind      BYTE_ARRAY STRING, dictionary-encoded: "ip", "domain" or "email"
//	list      BYTE_ARRAY STRING, dictionary-encoded
//	resource  BYTE_ARRAY STRING: canonical text (resource.Resource.String()),
//	          with a bloom filter
//	key       BYTE_ARRAY: resource key (resource.Resource.Key()); the sort
//	          column, with statistics and a page index
//	kafka_partition  INT32: topic partition of the record the change came from
//	kafka_offset     INT64: its offset (schema version 2; version 1 files
//	          lack both and their rows read with change.NoPosition)
//
// Files are zstd-compressed (snappy if zstd is unavailable), have
// statistics and page indexes on every column, row groups of
// Config.RowGroupRows rows and key-value metadata
// "netwarden.schema_version", "netwarden.min_ts", "netwarden.max_ts"
// (RFC 3339, UTC, µs), "netwarden.bits4" and "netwarden.bits6" (the
// comma-separated prefix lengths of the IP keys in the file).
//
// # Reading
//
// [Store.Lookup] returns the changes of the given keys in (key, ts,
// arrival) order. It keeps in memory, per row group, the key range (from
// the footer statistics), the bloom filter of the resource column and the
// key column's page index plus the page locations of key, ts, op and list
// (from the offset index): a key is looked for only in the row groups
// whose range holds it and whose bloom filter admits it, and there only in
// the one or two key pages that can hold it; ts, op and list pages are read
// only for matching rows. Each page costs one pread and one decompression,
// and nothing is allocated but the results. The in-memory index costs about
// one byte per stored row for the bloom filters (3% false positives per
// row group) plus about a quarter of that for the page index; see
// [Stats].BloomBytes and IndexBytes.
//
// [Store.Scan] merges all files and yields every row in (key, ts, arrival)
// order: all changes of one key are consecutive and in time order, ties
// in the order they arrived.
package history

// Package query runs locked-down, ad-hoc, read-only SQL over the history
// Parquet files and the configured lists, for `POST /sql` and
// `netwarden sql "SELECT ..."`.
//
// # Data model
//
// An Engine owns one in-memory DuckDB database with two relations:
//
//   - changes (ts TIMESTAMPTZ, op VARCHAR, kind VARCHAR, list VARCHAR,
//     resource VARCHAR): a view over exactly the Parquet files last passed to
//     SetFiles (the binary sort key column of the files is not exposed). The
//     history writer owns the file list; files not in it are never part of
//     the view, and file functions (read_parquet, ...) are not allowed.
//   - lists (name, kind, source, format, status, last_fetch TIMESTAMPTZ,
//     last_change TIMESTAMPTZ, entries BIGINT, error): a table whose content
//     SetLists replaces.
//
// # Lockdown
//
// At open the engine sets TimeZone=UTC, memory_limit, threads,
// temp_directory (empty unless Config.TempDir), max_temp_directory_size,
// autoinstall/autoload_known_extensions=false, allow_community_extensions=
// false, allowed_directories=[HistoryDir/], enable_external_access=false and
// finally lock_configuration=true. Parquet, JSON and ICU are compiled into
// the DuckDB library, so nothing is ever installed or loaded.
//
// Every user statement must be a single SELECT that calls only functions on
// the allow-list (allowlist.go; see Engine.Run for the exact checks);
// everything else fails with ErrRejected and a reason, before it is bound or
// executed. Reads outside HistoryDir fail inside DuckDB with a
// permission error, which is also reported as ErrRejected.
//
// # Concurrency and ownership
//
// All Engine methods are safe for concurrent use. Up to
// Config.MaxConcurrent queries run at once on their own connections; more
// wait (within their Timeout). SetFiles and SetLists are serialized with each
// other, run on a dedicated connection, and are atomic with respect to
// queries: a query sees the old or the new state, never a mix. A query that
// started before SetFiles may keep reading the previous files until it ends;
// callers that delete replaced files (compaction) should call
// WaitForOldQueries first. The engine never writes, renames or deletes
// history files.
//
// A ResultSet returned by Run belongs to the caller. Close releases the
// database; it waits for running queries.
//
// # Worker processes
//
// The server does not run user SQL in its own process: a Pool keeps
// MaxConcurrent worker processes (the same binary calling WorkerMain, e.g.
// `netwarden sql-worker`), each with one Engine, and streams their results
// (Pool.Query). A worker runs under RLIMIT_AS (Config.WorkerMemory) and a
// Landlock rule set that denies every file write outside its private temp
// dir; it is killed (SIGKILL to its process group) at Config.Timeout plus a
// short grace, when the caller's context ends or its output cannot be
// written, and is then replaced. Results are capped at Config.MaxBytes.
// Pool.SetFiles and Pool.SetLists take effect in each worker before its next
// query. docs/ARCHITECTURE.md describes the protocol and the layers.
package query

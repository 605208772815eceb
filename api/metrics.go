package api

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"

	"github.com/VictoriaMetrics/metrics"
	"github.com/gin-gonic/gin"
)

// help describes every netwarden_ metric family for the # HELP lines of
// /metrics (VictoriaMetrics/metrics writes them empty). A family missing
// here fails TestMetricsArePrometheusCompatible.
var help = map[string]string{
	"netwarden_http_requests_total":                   "HTTP requests served, by route and status code.",
	"netwarden_http_request_duration_seconds":         "HTTP request duration, by route.",
	"netwarden_history_lookup_duration_seconds":       "Duration of a history lookup (/metadata/changes/...).",
	"netwarden_sql_queries_total":                     "SQL queries run on /sql, by result (ok, error, rejected, timeout).",
	"netwarden_sql_query_duration_seconds":            "Duration of a /sql query.",
	"netwarden_scrape_total":                          "Feed versions fetched, by list and result (ok, unchanged, error, unparseable, held).",
	"netwarden_scrape_changes_total":                  "Changes published by the scrapers, by list and op (add, rem).",
	"netwarden_scrape_duration_seconds":               "Duration of an HTTP feed fetch, by list.",
	"netwarden_feed_skipped_lines_total":              "Lines of feed versions that could not be parsed and were skipped, by list.",
	"netwarden_feed_entries":                          "Entries on the last accepted version of a list.",
	"netwarden_feed_up":                               "1 while a list's last fetch was accepted, 0 while it is pending or unhealthy.",
	"netwarden_feed_last_success_timestamp_seconds":   "Unix time a list last accepted a version or was confirmed unchanged (HTTP 304).",
	"netwarden_processor_records_total":               "Records consumed from the changes topic.",
	"netwarden_processor_changes_total":               "Consumed changes, by result (applied, duplicate, bad_record).",
	"netwarden_processor_flushes_total":               "Buffers committed to history.",
	"netwarden_processor_flushed_rows_total":          "Rows committed to history.",
	"netwarden_processor_flush_duration_seconds":      "Duration of a history commit.",
	"netwarden_processor_offset_commit_errors_total":  "Failed Kafka offset commits (retried with the next flush).",
	"netwarden_processor_lag_records":                 "Records on the changes topic not consumed yet (-1 when unknown).",
	"netwarden_processor_pending_changes":             "Changes consumed but not yet committed to history.",
	"netwarden_live_resources":                        "Resources on at least one list now.",
	"netwarden_telemetry_points_total":                "Telemetry points POSTed to /v1/telemetry, by result (accepted, rejected).",
	"netwarden_telemetry_simulated_points_total":      "Telemetry points published by the simulator (simulate.enabled).",
	"netwarden_history_files":                         "Parquet files in history.",
	"netwarden_history_rows":                          "Rows in history.",
	"netwarden_history_bytes":                         "Bytes of Parquet files in history.",
	"netwarden_consistency_checks_total":              "Consistency checks run (history fold against the live state).",
	"netwarden_history_corrupt_pages_total":           "History pages (or file metadata) that failed their checksum when read.",
	"netwarden_history_damaged_files":                 "History files that failed checksum verification in the last check.",
	"netwarden_processor_history_commit_errors_total": "History commits that failed; the processor stops consuming after the first (fail-stop).",
	"netwarden_audit_missing_rows":                    "State-changing records on netwarden.changes missing from history in the last audit.",
	"netwarden_audit_extra_rows":                      "History rows with no state-changing record on netwarden.changes in the last audit.",
	"netwarden_audit_mismatched_rows":                 "History rows that differ from the record at their partition and offset in the last audit.",
	"netwarden_sql_history_read_errors_total":         "SQL queries that failed reading a history file (damaged or unreadable): server errors, not user errors.",
	"netwarden_audits_total":                          "Audits run (history against the changes topic).",
	"netwarden_consistency_mismatches":                "Resources whose live state differed from the history fold in the last check.",
	"netwarden_notify_deliveries_total":               "Digest deliveries, by channel (e-mail, webhook) and result (ok, retry, failed).",
	"netwarden_subscribe_outage_alerts_total":         "Outage alerts handed to the subscription tap (re-deliveries included).",
	"netwarden_subscribe_activity_rows_total":         "Activity rows the subscription tap added (one per outage alert and subscribed account).",
}

// serveMetrics writes the process-wide metrics in the Prometheus text
// format (0.0.4): typed families, le-bucket histograms, and the help
// texts above.
func serveMetrics(c *gin.Context) {
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf, true)
	c.Header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	c.Status(http.StatusOK)
	w := bufio.NewWriter(c.Writer)
	for line := range bytes.Lines(buf.Bytes()) {
		if name, ok := bytes.CutPrefix(line, []byte("# HELP ")); ok {
			name = bytes.TrimSpace(name)
			if h := help[string(name)]; h != "" && !bytes.ContainsRune(name, ' ') {
				w.WriteString("# HELP ")
				w.Write(name)
				w.WriteByte(' ')
				w.WriteString(escapeHelp(h))
				w.WriteByte('\n')
				continue
			}
		}
		w.Write(line)
	}
	w.Flush()
}

// escapeHelp escapes a help text for the text format.
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// Package outage is the outage-detection service: it consumes telemetry
// points from netwarden.telemetry, runs the detector (detect.Detector),
// stores signals, alerts and events, and publishes alerts to
// netwarden.alerts.outage.
//
// Store. One SQLite file (<data.dir>/outage/outage.db): signals (the
// verdict of every evaluated bin: value, baseline = the detector's
// historyValue, judged, level), alerts (ids growing in the order they
// were stored; unique per series, time and level), events (alerts folded
// per entity by detect.Events, refolded for the entities a batch
// touches), the next telemetry offset per partition, the offsets of
// points rejected as late, and three marks: the detector watermark, the
// highest published and the highest tapped alert id. Signals older than
// detect.signal_retention (event time) are pruned; alerts and events are
// kept.
//
// Exactly once. Service.Run consumes every partition of the telemetry
// topic directly (no consumer group; the offsets live in the store). Each
// polled batch is added to the detector, which is advanced by event time
// (the watermark: the latest bin start seen) and, while the data is live
// (within detect.clock_lead of the wall clock), by the wall clock; the
// verdicts, alerts, events, offsets, late points and watermark of the
// batch are committed in one transaction. Only then are alerts produced
// to the alert topic (an outbox: the published mark moves after the
// produce; at-least-once, consumers drop repeated ids) and handed to the
// Tap (in id order; the tapped mark moves after it returns; a tap error
// stops the service, and the same alerts are delivered again on start).
//
// Restart. The detector's state is rebuilt by replaying the topic from
// the start up to the stored offsets, skipping the points stored as late,
// then advancing to the stored watermark, with nothing written: the
// detector then holds exactly the points and evaluated bins it had at the
// last commit (the detector's contract: the same accepted points give the
// same verdicts whatever the batch boundaries), and live consumption
// resumes at the stored offsets. Records the topic's retention deleted
// below a stored offset are missing from the rebuilt windows (a
// warning). A crash between commits loses nothing
// (the batch is consumed again) and stores nothing twice (alerts are
// unique per series, time and level; verdicts are upserts).
//
// Late points (a bin already evaluated) and malformed records are counted
// (netwarden_outage_points_late_total, _bad_total) and skipped. Points of
// different series interleave across partitions: the aligner waits
// detect.align_wait for an empty partition (a burst split over partitions
// is lined up), but a producer far behind the others (more than that and
// detect.grace) has its points rejected as late.
package outage

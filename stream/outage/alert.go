package outage

import (
	"context"

	"github.com/netwarden/netwarden/detect"
)

// Alert is a stored outage alert: a detector alert with the id the store
// gave it. Ids grow in the order alerts were raised; they are stable, so
// consumers of the alert topic and taps dedupe on them.
type Alert struct {
	ID int64 `json:"id"`
	detect.Alert
}

// Tap receives every stored alert once it is durable, in id order (e.g.
// account subscriptions joining outage alerts to digests). It must be
// idempotent by Alert.ID: after a crash the alerts since the last
// acknowledged call are delivered again. An error stops the service
// (fail-stop); the same alerts are delivered on restart.
type Tap interface {
	OnOutageAlerts(ctx context.Context, alerts []Alert) error
}

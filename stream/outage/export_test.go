package outage

import (
	"context"
	"fmt"

	"github.com/netwarden/netwarden/detect"
)

// BulkInsert stores als (every alert of the entities it names) and their
// events in one transaction, bypassing the per-batch refold: the bench's
// loader for millions of alerts.
func (s *Store) BulkInsert(ctx context.Context, als []detect.Alert, asOf int64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO alerts (datasource, entity_type, entity_code, time, level, condition, value, history_value, method, window)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`)
	if err != nil {
		return err
	}
	for _, a := range als {
		if _, err := st.ExecContext(ctx, a.Datasource, a.EntityType, a.EntityCode, a.Time, int(a.Level), a.Condition, a.Value, a.HistoryValue, a.Method, a.Window); err != nil {
			st.Close()
			return fmt.Errorf("bulk insert: %w", err)
		}
	}
	st.Close()
	if err := insertEvents(ctx, tx, detect.Events(als, asOf)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO marks (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)`, markWatermark, asOf); err != nil {
		return err
	}
	return tx.Commit()
}

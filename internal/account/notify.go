package account

import (
	"context"
	"fmt"
)

func init() {
	// Partial index: the notifier finds the accounts with unreported
	// alerts (and their oldest ones) without scanning reported history.
	// Partial indexes exist in PostgreSQL too.
	migrate("0006_notify",
		`CREATE INDEX alerts_unreported ON alerts (account_id, id) WHERE reported IS NULL`,
	)
}

// UnreportedAccounts returns the accounts that have alerts no
// notification has carried yet, in id order.
func (s *Store) UnreportedAccounts(ctx context.Context) ([]ID, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT account_id FROM alerts WHERE reported IS NULL ORDER BY account_id`)
	if err != nil {
		return nil, fmt.Errorf("accounts with unreported alerts: %w", err)
	}
	defer rows.Close()
	var out []ID
	for rows.Next() {
		var id ID
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("accounts with unreported alerts: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

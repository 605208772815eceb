package query

import (
	"context"
	"errors"
	"os"
	"testing"
)

// TestDamagedHistoryFileIsNotAUserError: a history file damaged on disk
// makes queries over it fail as server errors (logged, counted), never as
// ErrRejected, which the API would answer 400 as if the user had erred.
// Bytes are flipped one at a time across the whole file.
func TestDamagedHistoryFileIsNotAUserError(t *testing.T) {
	f := newFixture(t)
	e := newEngine(t, f, nil)
	orig, err := os.ReadFile(f.fileA)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetFiles([]string{f.fileA}); err != nil {
		t.Fatal(err)
	}
	failed, tried := 0, 0
	for off := 4; off < len(orig)-8; off += 7 {
		tried++
		b := append([]byte(nil), orig...)
		b[off] ^= 0xff
		if err := os.WriteFile(f.fileA, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := e.Run(context.Background(), `SELECT ts, op, kind, list, resource FROM changes ORDER BY ts`)
		if err == nil {
			continue // the flip hit bytes this query does not decode, or decoded to other values
		}
		failed++
		if errors.Is(err, ErrRejected) {
			t.Errorf("byte %d flipped: %v — reported as the user's error", off, err)
		}
	}
	if failed == 0 {
		t.Fatal("no flip made a query fail: the test exercises nothing")
	}
	t.Logf("%d of %d flips failed the query, none as a user error", failed, tried)
}

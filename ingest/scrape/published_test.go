package scrape

import (
	"testing"
	"time"
)

func TestPublishedAt(t *testing.T) {
	tests := []struct {
		head string
		want time.Time
	}{
		{"#\n# This File Date  : Thu Jan  6 06:56:05 UTC 2022\n1.2.3.4\n", time.Date(2022, 1, 6, 6, 56, 5, 0, time.UTC)},
		{"# Last update: Sat, 22 Aug 2026 03:00:29 +0200\n", time.Date(2026, 8, 22, 1, 0, 29, 0, time.UTC)},
		{"; Last-Modified: Thu, 29 May 2025 12:38:49 GMT\n", time.Date(2025, 5, 29, 12, 38, 49, 0, time.UTC)},
		{"#    updated: 2025-05-23T20:15:17.944698\n", time.Date(2025, 5, 23, 20, 15, 17, 944698000, time.UTC)},
		{"# Last updated: 2024-03-26 23:30:15 UTC                        #\n", time.Date(2024, 3, 26, 23, 30, 15, 0, time.UTC)},
	}
	for _, tt := range tests {
		got, ok := publishedAt([]byte(tt.head))
		if !ok || !got.Equal(tt.want) {
			t.Errorf("publishedAt(%q) = %v %v, want %v", tt.head, got, ok, tt.want)
		}
	}
	for _, bad := range []string{"", "1.2.3.4\n", "# updated: yesterday\n", "1.2.3.4 # Last update: Sat, 22 Aug 2026 03:00:29 +0200\n"} {
		if got, ok := publishedAt([]byte(bad)); ok {
			t.Errorf("publishedAt(%q) = %v, want none", bad, got)
		}
	}
}

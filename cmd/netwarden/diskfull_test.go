package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/netwarden/netwarden/stream/check"
)

// mountTmpfs mounts a tmpfs of size (e.g. "320k") on dir, or skips the test
// with the reason it cannot. The mount is removed in Cleanup, after the
// server is killed.
func mountTmpfs(t *testing.T, s *server, dir, size string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a size-limited tmpfs as the data directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs CAP_SYS_ADMIN): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if s.cmd != nil && s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
		}
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// TestDiskFullLosesNothing runs the real binary on a data directory that
// fills up mid-ingest: the server must stop with an error (fail-stop on
// the failed history commit), and after the disk is enlarged a restart
// must end with exactly the expected history, and the audit against the
// topic must find nothing lost.
func TestDiskFullLosesNothing(t *testing.T) {
	needShared(t)
	want := expectedChanges(t, runs)
	// The history directory is the small disk (the whole history of these
	// runs takes about 650 KB); the broker log stays on the normal disk,
	// so the failure is the history commit's own.
	hdir := filepath.Join(t.TempDir(), "history")
	s := newServer(t, runs, fmt.Sprintf("history: {dir: %q}\nprocessor: {flush_interval: 100ms, flush_rows: 2000, poll_records: 500}", hdir))
	const size = "320k"
	mountTmpfs(t, s, hdir, size)

	s.start()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("server on a full disk exited with %v, want a non-zero exit", err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("server did not stop within 3m on a %s history directory (the disk never filled?)", size)
	}
	logb, _ := os.ReadFile(s.logf.Name())
	if !strings.Contains(string(logb), "no space left on device") {
		t.Fatalf("server stopped, but not for ENOSPC; log tail: %s", tail(logb, 3000))
	}
	partial := s.history()
	if len(partial) >= len(want) {
		t.Fatalf("history already complete (%d changes) when the disk filled; the test proved nothing", len(partial))
	}
	t.Logf("disk full with %d of %d changes in history", len(partial), len(want))

	if out, err := exec.Command("mount", "-o", "remount,size=512m", hdir).CombinedOutput(); err != nil {
		t.Fatalf("enlarge tmpfs: %v: %s", err, out)
	}
	s.start()
	s.waitIdle(5 * time.Minute)

	out, err := exec.Command(s.bin, "check", "--audit", "--config", s.cfgPath).Output()
	if err != nil {
		t.Fatalf("netwarden check --audit: %v\n%s", err, out)
	}
	var res check.Result
	if err := json.Unmarshal(out, &res); err != nil || res.Audit == nil {
		t.Fatalf("check --audit output %s: %v", out, err)
	}
	if a := res.Audit; a.Lost() || a.Rows != int64(len(want)) || a.StateChanging != int64(len(want)) {
		t.Fatalf("audit after restart: %+v, want %d rows, nothing lost", a, len(want))
	}
	s.stop()
	diffChanges(t, want, s.history())
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runBin runs the real binary and returns its exit code and stderr.
func runBin(t *testing.T, dir string, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, buildBinary(t), args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("netwarden %v did not finish in %v; stderr:\n%s", args, timeout, stderr.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stderr.String()
}

// occupy listens on a free loopback port until the test ends.
func occupy(t *testing.T) (addr string, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port
}

func TestCLIEdges(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "empty")

	t.Run("sql without history", func(t *testing.T) {
		code, stderr := runBin(t, dir, time.Minute, "sql", "--data.dir", data, "SELECT count(*) FROM changes")
		want := "no history at " + filepath.Join(data, "history") + " (did you mean --config demo.yaml?)"
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, stderr %q; want non-zero and %q", code, stderr, want)
		}
	})
	t.Run("http port in use", func(t *testing.T) {
		busy, _ := occupy(t)
		code, stderr := runBin(t, dir, time.Minute, "serve", "--data.dir", filepath.Join(dir, "d1"), "--kafka.embedded.port", "-1", "--http.addr", busy)
		if code == 0 || !strings.Contains(stderr, "--http.addr") || !strings.Contains(stderr, busy) {
			t.Errorf("exit %d, stderr %q; want non-zero naming %s and --http.addr", code, stderr, busy)
		}
	})
	t.Run("kafka port in use", func(t *testing.T) {
		_, port := occupy(t)
		code, stderr := runBin(t, dir, time.Minute, "serve", "--data.dir", filepath.Join(dir, "d2"), "--kafka.embedded.port", fmt.Sprint(port), "--http.addr", "127.0.0.1:0")
		if code == 0 || !strings.Contains(stderr, "--kafka.embedded.port") {
			t.Errorf("exit %d, stderr %q; want non-zero naming --kafka.embedded.port", code, stderr)
		}
	})
	t.Run("check against a server without history", func(t *testing.T) {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		// One feed with nothing to read yet (an empty snapshot directory)
		// keeps the server up with an empty history.
		if err := os.MkdirAll(filepath.Join(dir, "feed"), 0o755); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "empty.yaml")
		if err := os.WriteFile(cfg, []byte("feeds:\n  - {name: EMPTY, kind: ip, format: plain, source: feed, every: 1h}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(buildBinary(t), "serve", "--config", cfg, "--data.dir", filepath.Join(dir, "d3"), "--kafka.embedded.port", "-1", "--http.addr", addr)
		var log bytes.Buffer
		cmd.Stderr = &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			cmd.Process.Kill()
			cmd.Wait()
		}()
		deadline := time.Now().Add(time.Minute)
		for {
			resp, err := http.Get("http://" + addr + "/healthz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("server not ready; log:\n%s", log.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		code, stderr := runBin(t, dir, time.Minute, "check", "--http.addr", addr)
		want := "no history at the server at " + addr
		if code == 0 || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, stderr %q; want non-zero and %q", code, stderr, want)
		}
	})
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netwarden/netwarden/internal/broker"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

// rec is one record of netwarden.changes, decoded.
type rec struct {
	Partition int32  `json:"partition"`
	Offset    string `json:"offset"`
	MsgKey    string `json:"msgkey"` // record key, hex
	Op        string `json:"op"`
	Micros    string `json:"micros"`
	List      string `json:"list"`
	Resource  string `json:"resource"`
	Key       string `json:"key"` // resource key in the value, hex
}

// TestKafkaInterop: clients netwarden did not write (kcat, librdkafka's
// CLI, and kafkajs, a pure-JavaScript client with no extra codecs) read
// netwarden.changes from the embedded broker with the default
// kafka.compression and decode every record as docs/ARCHITECTURE.md
// describes; each gets exactly what franz-go reads.
func TestKafkaInterop(t *testing.T) {
	needShared(t)
	if testing.Short() {
		t.Skip("interop test runs the binary and external clients")
	}
	var rs []listRun
	for _, r := range runs {
		switch r.list {
		case "SPAMHAUS-DROPV6", "FEODO", "DISPOSABLE-EMAIL-DOMAINS", "TOR-EXIT":
			rs = append(rs, r)
		}
	}
	s := newServer(t, rs, "")
	s.start()
	s.waitIdle(3 * time.Minute)
	seed := fmt.Sprintf("127.0.0.1:%d", s.kport)

	want := readReference(t, seed)
	if len(want) < 1000 {
		t.Fatalf("only %d records on the topic", len(want))
	}
	kinds := map[byte]int{}
	for _, r := range want {
		k, _ := hex.DecodeString(r.Key)
		kinds[k[0]]++
		if k[0] == 'i' && strings.Contains(r.Resource, ":") {
			kinds['6']++
		}
	}
	if kinds['i'] == 0 || kinds['6'] == 0 || kinds['e'] == 0 {
		t.Fatalf("test data lacks a kind: %v", kinds)
	}

	t.Run("kcat", func(t *testing.T) {
		kcat := needTool(t, "kcat", "kcat")
		got := readKcat(t, kcat, seed)
		compareRecs(t, "kcat", want, got)
	})
	t.Run("kafkajs", func(t *testing.T) {
		out := runKafkajs(t, "kafkajs-consume.js", seed, broker.TopicChanges, len(want))
		var got []rec
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r rec
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("kafkajs output %q: %v", sc.Text(), err)
			}
			got = append(got, r)
		}
		compareRecs(t, "kafkajs", want, got)
	})
}

// readReference reads the whole topic with franz-go and decodes it with
// package change and resource: what the independent clients must match.
func readReference(t *testing.T, seed string) []rec {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.ConsumeTopics(broker.TopicChanges), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := broker.EndOffsets(ctx, cl, broker.TopicChanges)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, o := range ends {
		total += o
	}
	var out []rec
	for int64(len(out)) < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", len(out), total)
		}
		fs.EachRecord(func(r *kgo.Record) {
			d, err := change.Decode(r.Value)
			if err != nil {
				t.Fatalf("record %d/%d: %v", r.Partition, r.Offset, err)
			}
			res, err := resource.FromKey(string(d.Key))
			if err != nil {
				t.Fatalf("record %d/%d: %v", r.Partition, r.Offset, err)
			}
			out = append(out, rec{Partition: r.Partition, Offset: strconv.FormatInt(r.Offset, 10), MsgKey: hex.EncodeToString(r.Key),
				Op: d.Op.String(), Micros: strconv.FormatInt(d.Micros, 10), List: string(d.List), Resource: res.String(), Key: hex.EncodeToString(d.Key)})
		})
	}
	return out
}

// readKcat consumes the topic with kcat, each record framed by its key
// and value lengths (keys are binary and may hold newlines), and decodes
// the values the documented way, independently of package change.
func readKcat(t *testing.T, kcat, seed string) []rec {
	t.Helper()
	cmd := exec.Command(kcat, "-b", seed, "-C", "-t", broker.TopicChanges, "-o", "beginning", "-e", "-q",
		"-f", "%p %o %K %S\n%k%s\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, stderr.String())
	}
	var got []rec
	br := bufio.NewReader(bytes.NewReader(out))
	for {
		hdr, err := br.ReadString('\n')
		if err == io.EOF && hdr == "" {
			break
		}
		if err != nil {
			t.Fatalf("kcat output: %v", err)
		}
		var p int32
		var off, kl, vl int64
		if _, err := fmt.Sscanf(hdr, "%d %d %d %d\n", &p, &off, &kl, &vl); err != nil {
			t.Fatalf("kcat header %q: %v", hdr, err)
		}
		body := make([]byte, kl+vl+1)
		if _, err := io.ReadFull(br, body); err != nil {
			t.Fatalf("kcat record %d/%d: %v", p, off, err)
		}
		r, err := decodeDocumented(body[kl : kl+vl])
		if err != nil {
			t.Fatalf("kcat record %d/%d: %v", p, off, err)
		}
		r.Partition, r.Offset, r.MsgKey = p, strconv.FormatInt(off, 10), hex.EncodeToString(body[:kl])
		got = append(got, r)
	}
	return got
}

// decodeDocumented decodes a change value by the table in
// docs/ARCHITECTURE.md: version, op, Unix µs big endian, uvarint-sized
// list name, resource key.
func decodeDocumented(v []byte) (rec, error) {
	if len(v) < 12 || v[0] != 1 {
		return rec{}, fmt.Errorf("value %x: not version 1", v)
	}
	var r rec
	switch v[1] {
	case 1:
		r.Op = "add"
	case 2:
		r.Op = "rem"
	default:
		return rec{}, fmt.Errorf("value %x: op %d", v, v[1])
	}
	var micros uint64
	for _, b := range v[2:10] {
		micros = micros<<8 | uint64(b)
	}
	r.Micros = strconv.FormatUint(micros, 10)
	n, shift, i := 0, 0, 10
	for ; i < len(v); i++ {
		n |= int(v[i]&0x7f) << shift
		shift += 7
		if v[i] < 0x80 {
			i++
			break
		}
	}
	if i+n > len(v) {
		return rec{}, fmt.Errorf("value %x: list name past the end", v)
	}
	r.List = string(v[i : i+n])
	key := v[i+n:]
	r.Key = hex.EncodeToString(key)
	res, err := resource.FromKey(string(key))
	if err != nil {
		return rec{}, err
	}
	r.Resource = res.String()
	return r, nil
}

func compareRecs(t *testing.T, client string, want, got []rec) {
	t.Helper()
	order := func(a, b rec) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		x, _ := strconv.ParseInt(a.Offset, 10, 64)
		y, _ := strconv.ParseInt(b.Offset, 10, 64)
		return int(x - y)
	}
	want, got = slices.Clone(want), slices.Clone(got)
	slices.SortFunc(want, order)
	slices.SortFunc(got, order)
	if len(got) != len(want) {
		t.Errorf("%s read %d records, franz-go %d", client, len(got), len(want))
	}
	bad := 0
	for i := range min(len(want), len(got)) {
		if want[i] != got[i] {
			if bad++; bad <= 5 {
				t.Errorf("%s record %d:\n got %+v\nwant %+v", client, i, got[i], want[i])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d records differ", client, bad, len(want))
	}
}

// needTool finds name on PATH or installs the Debian package pkg (CI runs
// as root with apt reachable); it skips with the reason when it cannot.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", pkg}} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Skipf("%s is not installed and apt-get %s failed: %v\n%s", name, args[0], err, out)
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found after installing %s: %v", name, pkg, err)
	}
	return p
}

// runKafkajs runs testdata/script with node and kafkajs against the
// broker at seed (args: seed, topic, n) and returns what it printed.
func runKafkajs(t *testing.T, script, seed, topic string, n int) []byte {
	t.Helper()
	modules := needKafkajs(t)
	cmd := exec.Command("node", filepath.Join("testdata", script), seed, topic, strconv.Itoa(n))
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kafkajs %s: %v\n%s", script, err, stderr.String())
	}
	return out
}

// needKafkajs installs kafkajs from npm into the user cache (once) and
// returns its node_modules directory; it skips when node or npm fail.
func needKafkajs(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: kafkajs interop needs Node.js")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "netwarden-test", "kafkajs-2.2.4")
	modules := filepath.Join(dir, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "kafkajs", "package.json")); err == nil {
		return modules
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Skipf("kafkajs cache dir: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", dir, "kafkajs@2.2.4")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("npm install kafkajs failed: %v\n%s", err, out)
	}
	return modules
}

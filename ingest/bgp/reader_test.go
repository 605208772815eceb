package bgp

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func readAll(t *testing.T, r *Reader) []Elem {
	t.Helper()
	var out []Elem
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("after %d elems: %v", len(out), err)
		}
		out = append(out, e)
	}
}

// gunzip returns the decompressed content of the gzip file at path.
func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip %s: %v", path, err)
	}
	return raw
}

// countRecords walks the MRT framing independently of Reader.
func countRecords(t *testing.T, path string) int {
	t.Helper()
	raw := gunzip(t, path)
	n := 0
	for len(raw) >= 12 {
		l := int(binary.BigEndian.Uint32(raw[8:12]))
		raw = raw[12+l:]
		n++
	}
	return n
}

// TestUpdates2007TwoByteAS reads a BGP4MP_MESSAGE file (2-byte AS numbers,
// which gobgp's ParseBody alone decodes as 4-byte) without golden output: every
// record is read and the paths are plausible (peer AS first on almost all).
func TestUpdates2007TwoByteAS(t *testing.T) {
	path := needData(t, "updates.20070211.0141.gz")
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	elems := readAll(t, r)
	if got, want := r.Stats().Records, countRecords(t, path); got != want {
		t.Fatalf("records read %d, framing has %d", got, want)
	}
	ann, firstIsPeer := 0, 0
	for _, e := range elems {
		if e.Type != Announce {
			continue
		}
		ann++
		if len(e.Attrs.ASPath) > 0 && len(e.Attrs.ASPath[0].ASN) > 0 && e.Attrs.ASPath[0].ASN[0] == e.PeerAS {
			firstIsPeer++
		}
		for _, s := range e.Attrs.ASPath {
			for _, as := range s.ASN {
				if as > 0xffff {
					t.Fatalf("4-byte AS %d in a 2-byte file: %s", as, e.Bgpdump())
				}
			}
		}
	}
	if ann == 0 || float64(firstIsPeer) < 0.99*float64(ann) {
		t.Fatalf("%d of %d announcements start with the peer AS", firstIsPeer, ann)
	}
}

// TestLongWithdrawal: one UPDATE withdrawing 4096 IPv6 prefixes (beyond the
// 4096-byte classic message size).
func TestLongWithdrawal(t *testing.T) {
	r, err := Open(needData(t, "updates.long_withdrawal.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	elems := readAll(t, r)
	if len(elems) != 4096 {
		t.Fatalf("%d elems, want 4096", len(elems))
	}
	for i, e := range elems {
		want := netip.MustParsePrefix(fmt.Sprintf("2001:db8:0:%x::/64", i))
		if e.Type != Withdraw || e.Prefix != want || e.PeerAS != 65531 {
			t.Fatalf("elem %d: %s, want a withdrawal of %s", i, e.Bgpdump(), want)
		}
	}
}

func TestCompressionAndErrors(t *testing.T) {
	path := needData(t, "updates.20160811.1600.gz")
	raw := gunzip(t, path)
	plain, err := NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	gz, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	a, b := readAll(t, plain), readAll(t, gz)
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("plain %d elems, gzip %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Bgpdump() != b[i].Bgpdump() {
			t.Fatalf("elem %d: plain %s, gzip %s", i, a[i].Bgpdump(), b[i].Bgpdump())
		}
	}

	t.Run("bzip2", func(t *testing.T) {
		bz, err := exec.LookPath("bzip2")
		if err != nil {
			t.Skip("bzip2 tool absent (apt-get install bzip2)")
		}
		cmd := exec.Command(bz, "-c")
		cmd.Stdin = bytes.NewReader(raw)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "updates.bz2")
		if err := os.WriteFile(p, out, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		c := readAll(t, r)
		if len(c) != len(a) || c[len(c)-1].Bgpdump() != a[len(a)-1].Bgpdump() {
			t.Fatalf("bzip2: %d elems, plain %d", len(c), len(a))
		}
	})

	cases := []struct {
		name string
		data []byte
	}{
		{"truncated body", raw[:len(raw)-5]},
		{"truncated header", append(append([]byte{}, raw[:200:200]...), 0, 1)},
		{"bad table dump", []byte{0, 0, 0, 1, 0, 12, 0, 1, 0, 0, 0, 3, 1, 2, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(c.data))
			if err != nil {
				t.Fatal(err)
			}
			for {
				_, err := r.Next()
				if errors.Is(err, io.EOF) {
					t.Fatal("no error before EOF")
				}
				if err != nil {
					if !errors.Is(err, ErrMalformed) {
						t.Fatalf("error %v is not ErrMalformed", err)
					}
					return
				}
			}
		})
	}
}

// TestBGP4MPET rewrites the real 2016 update file as BGP4MP_ET (a 4-byte
// microsecond field after the header) and expects the same Elems.
func TestBGP4MPET(t *testing.T) {
	path := needData(t, "updates.20160811.1600.gz")
	raw := gunzip(t, path)
	var et []byte
	for p := raw; len(p) >= 12; {
		l := binary.BigEndian.Uint32(p[8:12])
		h := append([]byte{}, p[:12]...)
		binary.BigEndian.PutUint16(h[4:6], 17)
		binary.BigEndian.PutUint32(h[8:12], l+4)
		et = append(et, h...)
		et = append(et, 0, 7, 0xa1, 0x20) // 500000 µs
		et = append(et, p[12:12+l]...)
		p = p[12+l:]
	}
	a, err := NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewReader(bytes.NewReader(et))
	if err != nil {
		t.Fatal(err)
	}
	ea, eb := readAll(t, a), readAll(t, b)
	if len(ea) != len(eb) || len(ea) == 0 {
		t.Fatalf("BGP4MP %d elems, BGP4MP_ET %d", len(ea), len(eb))
	}
	for i := range ea {
		if ea[i].Bgpdump() != eb[i].Bgpdump() {
			t.Fatalf("elem %d: %s vs %s", i, ea[i].Bgpdump(), eb[i].Bgpdump())
		}
	}
}

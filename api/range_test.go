package api_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/api"
	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

// model is the obvious reference for range answers: the state-changing
// changes in time order (duplicates are dropped as the pipeline does).
type model struct {
	on  map[[2]string]bool // (canonical resource, list)
	log []mchange
}

type mchange struct {
	ts        int64
	op        change.Op
	list, res string
}

func (m *model) apply(ts int64, op change.Op, list, res string) {
	k := [2]string{res, list}
	if m.on[k] == (op == change.Add) {
		return
	}
	if op == change.Add {
		m.on[k] = true
	} else {
		delete(m.on, k)
	}
	m.log = append(m.log, mchange{ts, op, list, res})
}

func prefixOf(s string) netip.Prefix {
	r, _ := resource.ParseIP(s)
	return r.Prefix
}

// history is the expected /metadata/changes/ip/{q} answer, newest first,
// one string per item.
func (m *model) history(q netip.Prefix) []string {
	on := map[[2]string]bool{}
	var out []string
	lists := func(keep func(string) bool) string {
		set := map[string]bool{}
		for k := range on {
			if keep(k[0]) {
				set[k[1]] = true
			}
		}
		var ls []string
		for l := range set {
			ls = append(ls, l)
		}
		slices.Sort(ls)
		return strings.Join(ls, ",")
	}
	qs := resource.FromPrefix(q).String()
	covers := func(res string) bool { p := prefixOf(res); return p.Bits() <= q.Bits() && p.Contains(q.Addr()) }
	inside := func(res string) bool { p := prefixOf(res); return p.Bits() > q.Bits() && q.Contains(p.Addr()) }
	for _, c := range m.log {
		on[[2]string{c.res, c.list}] = c.op == change.Add
		if !on[[2]string{c.res, c.list}] {
			delete(on, [2]string{c.res, c.list})
		}
		switch {
		case covers(c.res):
			res := c.res
			if res == qs {
				res = ""
			}
			out = append(out, fmt.Sprintf("%d %v %s ip=%s [%s] res=%s inside=false", c.ts, c.op, c.list, qs, lists(covers), res))
		case inside(c.res):
			out = append(out, fmt.Sprintf("%d %v %s ip=%s [%s] res=%s inside=true", c.ts, c.op, c.list, c.res, lists(func(r string) bool { return r == c.res }), c.res))
		}
	}
	slices.Reverse(out)
	return out
}

// bad is the expected /badip/{q} answer: covering lists, inside entries.
func (m *model) bad(q netip.Prefix) (covering []string, inside []string) {
	byRes := map[string][]string{}
	for k := range m.on {
		p := prefixOf(k[0])
		switch {
		case p.Bits() <= q.Bits() && p.Contains(q.Addr()):
			if !slices.Contains(covering, k[1]) {
				covering = append(covering, k[1])
			}
		case p.Bits() > q.Bits() && q.Contains(p.Addr()):
			byRes[k[0]] = append(byRes[k[0]], k[1])
		}
	}
	slices.Sort(covering)
	keys := map[string]string{}
	for res := range byRes {
		keys[resource.FromPrefix(prefixOf(res)).Key()] = res
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	}) {
		ls := byRes[keys[k]]
		slices.Sort(ls)
		inside = append(inside, fmt.Sprintf("%s %v", keys[k], ls))
	}
	return covering, inside
}

func fmtItem(it map[string]any) string {
	res, _ := it["resource"].(string)
	in, _ := it["inside"].(bool)
	return fmt.Sprintf("%.0f %s %s ip=%s [%s] res=%s inside=%v", it["timestamp"], it["command"], it["blacklist_change"], it["ip"], it["blacklists"], res, in)
}

// TestRangeQueries compares the range forms of /metadata/changes/ip and
// /badip over real HTTP and the real pipeline with the reference model,
// on a hand-made case and on seeded random changes.
func TestRangeQueries(t *testing.T) {
	const maxRows = 80
	s := newStack(t, func(c *api.Config) { c.MaxRangeRows = maxRows })
	m := &model{on: map[[2]string]bool{}}
	pub := func(ts int64, op change.Op, list, res string) {
		s.publish(t, ts, op, list, res)
		m.apply(ts, op, list, resource.FromPrefix(prefixOf(res)).String())
	}
	// The hand-made case of the docs: an ISP's 1.10.0.0/16.
	pub(100, change.Add, "BIG", "1.0.0.0/8")
	pub(200, change.Add, "TOR", "1.10.2.3")
	pub(300, change.Add, "DSHIELD", "1.10.5.0/24")
	pub(400, change.Add, "TOR", "1.10.5.7")
	pub(500, change.Rem, "TOR", "1.10.2.3")
	pub(600, change.Add, "TOR", "1.11.0.1")
	pub(700, change.Add, "X", "1.10.0.0/16")
	pub(800, change.Add, "TOR", "1.10.5.7") // duplicate: dropped
	// Seeded random changes in 10.20.0.0/20 and 2001:db8:5::/48.
	rng := rand.New(rand.NewPCG(1, 2))
	var pool []string
	for range 30 {
		pool = append(pool, netip.AddrFrom4([4]byte{10, 20, byte(rng.IntN(16)), byte(rng.IntN(256))}).String())
	}
	for range 8 {
		a := netip.AddrFrom4([4]byte{10, 20, byte(rng.IntN(16)), byte(rng.IntN(256))})
		pool = append(pool, netip.PrefixFrom(a, 22+rng.IntN(9)).Masked().String())
	}
	pool = append(pool, "10.0.0.0/8", "10.20.0.0/16", "2001:db8:5::1", "2001:db8:5:1::/64", "2001:db8::/32")
	for i := range 220 {
		op := change.Add
		if rng.IntN(3) == 0 {
			op = change.Rem
		}
		pub(int64(10_000+i), op, []string{"A", "B", "C"}[rng.IntN(3)], pool[rng.IntN(len(pool))])
	}
	s.settle(t)

	history := func(q string, items int) (int, []string, string) {
		t.Helper()
		var out []string
		for page := 1; ; page++ {
			code, v := get(t, fmt.Sprintf("%s/metadata/changes/ip/%s?items=%d&page=%d", s.url, q, items, page))
			if code != 200 {
				msg, _ := v["error"].(string)
				return code, nil, msg
			}
			its := v["changes_ip"].([]any)
			for _, it := range its {
				out = append(out, fmtItem(it.(map[string]any)))
			}
			if len(its) < items {
				return code, out, ""
			}
		}
	}
	t.Run("hand-made history", func(t *testing.T) {
		_, got, _ := history("1.10.0.0/16", 5)
		want := []string{
			"700 add X ip=1.10.0.0/16 [BIG,X] res= inside=false",
			"500 rem TOR ip=1.10.2.3 [] res=1.10.2.3 inside=true",
			"400 add TOR ip=1.10.5.7 [TOR] res=1.10.5.7 inside=true",
			"300 add DSHIELD ip=1.10.5.0/24 [DSHIELD] res=1.10.5.0/24 inside=true",
			"200 add TOR ip=1.10.2.3 [TOR] res=1.10.2.3 inside=true",
			"100 add BIG ip=1.10.0.0/16 [BIG] res=1.0.0.0/8 inside=false",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if !slices.Equal(want, m.history(prefixOf("1.10.0.0/16"))) {
			t.Errorf("the model disagrees with the hand-made answer:\n%s", strings.Join(m.history(prefixOf("1.10.0.0/16")), "\n"))
		}
	})
	t.Run("hand-made badip", func(t *testing.T) {
		code, v := get(t, s.url+"/badip/1.10.0.0/16")
		got := fmt.Sprint(code, v["response"], v["inside"], v["inside_total"])
		want := "200 [BIG X] [map[blacklists:[DSHIELD] ip:1.10.5.0/24] map[blacklists:[TOR] ip:1.10.5.7]] 2"
		if got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
		code, v = get(t, s.url+"/badip/1.10.5.7")
		if fmt.Sprint(code, v) != "200 map[response:[BIG DSHIELD TOR X]]" {
			t.Errorf("single address answer changed: %d %v", code, v)
		}
		code, v = get(t, s.url+"/badip/192.0.2.0/24")
		if fmt.Sprint(code, v) != "404 map[inside:[] inside_total:0 response:[]]" {
			t.Errorf("clean range: %d %v", code, v)
		}
	})

	queries := []string{"10.20.0.0/16", "10.20.0.0/20", "10.0.0.0/8", "0.0.0.0/0", "::/0", "2001:db8::/32", "2001:db8:5::/48", "1.0.0.0/8"}
	for _, p := range pool {
		a := prefixOf(p).Addr()
		queries = append(queries, netip.PrefixFrom(a, []int{18, 20, 22, 24, 26, 28}[rng.IntN(6)]).Masked().String(), p)
	}
	compared, tooBroad := 0, 0
	for _, q := range queries {
		qp := prefixOf(q)
		want := m.history(qp)
		insideRows := 0
		for _, w := range want {
			if strings.HasSuffix(w, "inside=true") {
				insideRows++
			}
		}
		code, got, msg := history(q, 7)
		if qp.IsSingleIP() {
			insideRows = 0
		}
		if insideRows > maxRows {
			tooBroad++
			if code != 422 || !strings.Contains(msg, "http.max_range_rows") {
				t.Errorf("%s holds %d changes inside: %d %q, want 422 naming http.max_range_rows", q, insideRows, code, msg)
			}
			continue
		}
		compared++
		if code != 200 || strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("history of %s: %d %s\ngot\n%s\nwant\n%s", q, code, msg, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if qp.IsSingleIP() {
			continue
		}
		cov, in := m.bad(qp)
		var gotIn []string
		var total float64
		for page := 1; ; page++ {
			code, v := get(t, fmt.Sprintf("%s/badip/%s?items=3&page=%d", s.url, url.PathEscape(q), page))
			if code != 200 && code != 404 {
				t.Fatalf("badip %s: %d %v", q, code, v)
			}
			if fmt.Sprint(v["response"]) != fmt.Sprint(cov) {
				t.Errorf("badip %s: covering %v, want %v", q, v["response"], cov)
			}
			total = v["inside_total"].(float64)
			its := v["inside"].([]any)
			for _, it := range its {
				it := it.(map[string]any)
				gotIn = append(gotIn, fmt.Sprintf("%s %v", it["ip"], it["blacklists"]))
			}
			if len(its) < 3 {
				break
			}
		}
		if int(total) != len(in) || strings.Join(gotIn, "\n") != strings.Join(in, "\n") {
			t.Errorf("badip %s inside (total %v):\n%s\nwant\n%s", q, total, strings.Join(gotIn, "\n"), strings.Join(in, "\n"))
		}
	}
	t.Logf("%d range queries compared with the model, %d answered 422 as too broad", compared, tooBroad)
	if compared < 10 || tooBroad == 0 {
		t.Errorf("%d queries compared, %d too broad: the test does not exercise both", compared, tooBroad)
	}
	t.Run("paging too deep", func(t *testing.T) {
		code, v := get(t, s.url+"/badip/10.0.0.0/8?items=100&page=2")
		if msg, _ := v["error"].(string); code != 422 || !strings.Contains(msg, "http.max_range_rows") {
			t.Errorf("page past max_range_rows: %d %v", code, v)
		}
	})
}

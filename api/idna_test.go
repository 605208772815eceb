package api_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/netwarden/netwarden/internal/change"
)

// TestUnicodeNames: Unicode domains and e-mail domains are the same
// resources as their punycode spelling, in queries as in feeds.
func TestUnicodeNames(t *testing.T) {
	s := newStack(t)
	s.publish(t, 100, change.Add, "PHISH", "bücher.de")       // parsed like a feed line
	s.publish(t, 200, change.Add, "EMAILDOM", "müll.example") // an e-mail domain list
	s.settle(t)
	esc := func(p string) string { return (&url.URL{Path: p}).EscapedPath() }
	for _, tt := range []struct {
		path, want string
		code       int
	}{
		{"/baddomain/bücher.de", "[PHISH]", 200},
		{"/baddomain/www.BÜCHER.de", "[PHISH]", 200},
		{"/baddomain/xn--bcher-kva.de", "[PHISH]", 200},
		{"/baddomain/buecher.de", "[]", 404},
		{"/bademail/jörg@müll.example", "[EMAILDOM]", 200},
		{"/bademail/info@xn--mll-hoa.example", "[EMAILDOM]", 200},
	} {
		code, v := get(t, s.url+esc(tt.path))
		if got := fmt.Sprint(v["response"]); code != tt.code || got != tt.want {
			t.Errorf("GET %s = %d %s, want %d %s", tt.path, code, got, tt.code, tt.want)
		}
	}
	code, v := get(t, s.url+esc("/metadata/changes/domain/bücher.de"))
	items, _ := v["changes_domain"].([]any)
	if code != 200 || len(items) != 1 || items[0].(map[string]any)["domain"] != "xn--bcher-kva.de" {
		t.Errorf("history of bücher.de: %d %v", code, v)
	}
	code, v = get(t, s.url+"/baddomain_batch?domain="+url.QueryEscape("bücher.de,example.com"))
	if got := fmt.Sprint(v["response"]); code != 200 || got != "[map[blacklists:[PHISH] domain:xn--bcher-kva.de] map[blacklists:[] domain:example.com]]" {
		t.Errorf("batch: %d %s", code, got)
	}
	code, v = get(t, s.url+esc("/baddomain/-bü.de"))
	if msg, _ := v["error"].(string); code != 400 || !strings.Contains(msg, "internationalised") {
		t.Errorf("invalid IDN: %d %v, want 400 saying why", code, v)
	}
}

package api

import "testing"

func TestJSONUnmarshalStrict(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"a":1}`, true},
		{" {\"a\":1} \n", true},
		{`{"a":1}}`, false}, // a stray brace: json.Decoder.More says no more values
		{`{"a":1}]`, false},
		{`{"a":1} {"a":2}`, false},
		{`{"a":1} x`, false},
		{`{"b":1}`, false}, // unknown field
		{`{"a":`, false},
	} {
		var v struct{ A int }
		err := jsonUnmarshal([]byte(tc.in), &v)
		if (err == nil) != tc.ok {
			t.Errorf("jsonUnmarshal(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

package api

import (
	"bytes"
	"encoding/json"
	"errors"
)

// jsonUnmarshal decodes strictly: unknown fields and trailing data are errors.
func jsonUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	// dec.More is false before a stray '}' or ']': look at the bytes.
	if len(bytes.TrimSpace(b[dec.InputOffset():])) > 0 {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

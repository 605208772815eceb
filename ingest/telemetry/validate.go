package telemetry

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/netwarden/netwarden/detect"
	"github.com/netwarden/netwarden/internal/entity"
)

// ErrInvalid marks a point that is rejected; the message says why.
var ErrInvalid = errors.New("invalid telemetry point")

// MaxCodeLen bounds an entity code (region codes are free-form).
const MaxCodeLen = 64

// Entities resolves entity codes (entity.Registry).
type Entities interface {
	Lookup(typ, code string) (entity.Entity, error)
}

// Validator checks points against the detector's datasources and the
// entity registry. It is safe for concurrent use.
type Validator struct {
	bins      map[string]int64
	names     []string
	entities  Entities
	maxFuture int64
	now       func() time.Time
}

// NewValidator checks points against cfg's datasources and reg's codes
// (a nil reg accepts every well-formed code: entity.Registry's zero
// value); a point more than maxFuture past now is rejected.
func NewValidator(cfg detect.Config, reg Entities, maxFuture time.Duration, now func() time.Time) *Validator {
	if reg == nil {
		reg = &entity.Registry{}
	}
	if now == nil {
		now = time.Now
	}
	v := &Validator{bins: map[string]int64{}, entities: reg, maxFuture: int64(maxFuture / time.Second), now: now}
	for name, ds := range cfg.Datasources {
		v.bins[name] = ds.Bin
		v.names = append(v.names, name)
	}
	slices.Sort(v.names)
	return v
}

// Bin returns the bin width of datasource ds in seconds, 0 when unknown.
func (v *Validator) Bin(ds string) int64 { return v.bins[ds] }

// Check validates p and normalises it in place: the code to the
// registry's form, the time down to its bin start.
func (v *Validator) Check(p *detect.Point) error {
	bin, ok := v.bins[p.Datasource]
	if !ok {
		return fmt.Errorf("%w: datasource %q: want one of %s", ErrInvalid, p.Datasource, strings.Join(v.names, ", "))
	}
	switch p.EntityType {
	case entity.TypeCountry, entity.TypeRegion, entity.TypeASN:
	default:
		return fmt.Errorf("%w: entity_type %q: want country, region or asn", ErrInvalid, p.EntityType)
	}
	if len(p.EntityCode) > MaxCodeLen || strings.ContainsAny(p.EntityCode, "/\x00\r\n") {
		return fmt.Errorf("%w: entity_code %.70q: want at most %d characters and no '/'", ErrInvalid, p.EntityCode, MaxCodeLen)
	}
	e, err := v.entities.Lookup(p.EntityType, p.EntityCode)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if p.Time < 0 {
		return fmt.Errorf("%w: time %d: want unix seconds >= 0", ErrInvalid, p.Time)
	}
	if limit := v.now().Unix() + v.maxFuture; p.Time > limit {
		return fmt.Errorf("%w: time %d is %s in the future (at most %s)", ErrInvalid, p.Time,
			time.Duration(p.Time-v.now().Unix())*time.Second, time.Duration(v.maxFuture)*time.Second)
	}
	if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) || p.Value < 0 {
		return fmt.Errorf("%w: value %g: want a finite number >= 0", ErrInvalid, p.Value)
	}
	p.EntityCode = e.Code
	p.Time -= p.Time % bin
	return nil
}

// Key is the record key of p on TopicTelemetry.
func Key(p detect.Point) string {
	return p.Datasource + "/" + p.EntityType + "/" + p.EntityCode
}

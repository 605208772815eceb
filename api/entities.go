package api

import "github.com/netwarden/netwarden/internal/entity"

// Entities is the entity metadata the outage routes annotate with
// (entity.Registry).
type Entities interface {
	Lookup(typ, code string) (entity.Entity, error)
}

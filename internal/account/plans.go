package account

import "errors"

// Plan is what an account may use.
type Plan struct {
	// Watched is the most addresses it may watch, in counting units: IPv4
	// addresses plus IPv6 /64 blocks, overlaps counted once (package
	// stream/watch counts them).
	Watched uint64 `yaml:"watched" json:"watched"`
	// Recipients is the most e-mail recipients of its alerts.
	Recipients int `yaml:"recipients" json:"recipients"`
	// OwnerOnly restricts recipients to the registration address.
	OwnerOnly bool `yaml:"owner_only" json:"owner_only"`
	// HitsPerDay is its daily API quota (UTC days).
	HitsPerDay int64 `yaml:"hits_per_day" json:"hits_per_day"`
	// Subscriptions is the most entities (countries, regions, ASNs) whose
	// outage alerts it may subscribe to; 0 allows none.
	Subscriptions int `yaml:"subscriptions" json:"subscriptions"`
}

func (p Plan) validate() error {
	switch {
	case p.Watched == 0:
		return errors.New("watched must be positive")
	case p.Recipients < 1:
		return errors.New("recipients must be at least 1")
	case p.HitsPerDay < 1:
		return errors.New("hits_per_day must be positive")
	case p.Subscriptions < 0:
		return errors.New("subscriptions must not be negative")
	}
	return nil
}

// DefaultPlans returns the built-in plans; the configuration's plans
// override them by name.
func DefaultPlans() map[string]Plan {
	return map[string]Plan{
		"FREE":       {Watched: 256, Recipients: 1, OwnerOnly: true, HitsPerDay: 1_000, Subscriptions: 3},
		"TRIAL":      {Watched: 4_096, Recipients: 1, OwnerOnly: true, HitsPerDay: 10_000, Subscriptions: 10},
		"DEVELOPER":  {Watched: 65_536, Recipients: 2, HitsPerDay: 100_000, Subscriptions: 25},
		"STARTUP":    {Watched: 1 << 20, Recipients: 3, HitsPerDay: 500_000, Subscriptions: 100},
		"BUSINESS":   {Watched: 1 << 24, Recipients: 5, HitsPerDay: 2_000_000, Subscriptions: 1_000},
		"ENTERPRISE": {Watched: 1 << 40, Recipients: 7, HitsPerDay: 20_000_000, Subscriptions: 10_000},
	}
}

// Package live holds the live state: for every resource key, the set of
// lists it is on now. It answers containment-aware lookups from memory: an
// address is on every list that lists it or any prefix covering it; a name
// is on every list that lists it or a parent domain (for e-mail: its
// domain).
//
// Representation: list names are interned to uint16 ids; each distinct
// set of lists is interned once (most resources share a handful of sets)
// and resources map to a uint32 set id. Host addresses live in a
// map[[16]byte]uint32, shorter prefixes in a bart table, names in a
// map[string]uint32. Set 0 is the empty set and is never stored.
//
// A State is safe for concurrent use: Apply takes the write lock, lookups
// the read lock. Apply is idempotent: adding a resource to a list it is on
// (or removing one it is not on) changes nothing and reports false, which
// is how the processor drops duplicate events.
package live

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/gaissmai/bart"

	"github.com/netwarden/netwarden/internal/change"
	"github.com/netwarden/netwarden/internal/resource"
)

// State is the live state.
type State struct {
	mu sync.RWMutex

	listIDs   map[string]uint16
	listNames []string
	listCount []int64 // resources per list id

	sets   [][]uint16        // set id -> sorted list ids
	setIDs map[string]uint32 // encoded set -> id
	trans  map[uint64]uint32 // (set, list, op) -> set

	hosts map[[16]byte]uint32
	nets  *bart.Table[uint32]
	names map[string]uint32
}

// New returns an empty State.
func New() *State {
	return &State{
		listIDs: make(map[string]uint16),
		sets:    [][]uint16{nil},
		setIDs:  map[string]uint32{"": 0},
		trans:   make(map[uint64]uint32),
		hosts:   make(map[[16]byte]uint32),
		nets:    new(bart.Table[uint32]),
		names:   make(map[string]uint32),
	}
}

func listID[T ~string | ~[]byte](s *State, name T) uint16 {
	if id, ok := s.listIDs[string(name)]; ok {
		return id
	}
	id := uint16(len(s.listNames))
	n := string(name)
	s.listIDs[n] = id
	s.listNames = append(s.listNames, n)
	s.listCount = append(s.listCount, 0)
	return id
}

func encodeSet(ids []uint16) string {
	b := make([]byte, 0, 2*len(ids))
	for _, id := range ids {
		b = append(b, byte(id>>8), byte(id))
	}
	return string(b)
}

// next returns the set after applying op for list to set cur.
func (s *State) next(cur uint32, list uint16, op change.Op) uint32 {
	tk := uint64(cur)<<24 | uint64(list)<<8 | uint64(op)
	if n, ok := s.trans[tk]; ok {
		return n
	}
	ids := s.sets[cur]
	i, found := slices.BinarySearch(ids, list)
	var nids []uint16
	switch {
	case op == change.Add && !found:
		nids = slices.Insert(slices.Clone(ids), i, list)
	case op == change.Rem && found:
		nids = slices.Delete(slices.Clone(ids), i, i+1)
	default:
		s.trans[tk] = cur
		return cur
	}
	enc := encodeSet(nids)
	n, ok := s.setIDs[enc]
	if !ok {
		n = uint32(len(s.sets))
		s.sets = append(s.sets, nids)
		s.setIDs[enc] = n
	}
	s.trans[tk] = n
	return n
}

// Apply applies one change given as a binary key (resource.Key) and list
// name, and reports whether the state changed.
func (s *State) Apply(key, list []byte, op change.Op) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return apply(s, key, list, op)
}

// ApplyBatch applies many changes under one lock; changed[i] reports
// whether ds[i] changed the state. changed must be as long as ds.
func (s *State) ApplyBatch(ds []change.Decoded, changed []bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range ds {
		changed[i] = apply(s, ds[i].Key, ds[i].List, ds[i].Op)
	}
}

// ApplyChanges is ApplyBatch for owned changes (history folds).
func (s *State) ApplyChanges(cs []change.Change, changed []bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range cs {
		changed[i] = apply(s, cs[i].Key, cs[i].List, cs[i].Op)
	}
}

func apply[T ~string | ~[]byte](s *State, key, list T, op change.Op) bool {
	if len(key) == 0 {
		return false
	}
	lid := listID(s, list)
	var cur uint32
	switch {
	case key[0] == 'i' && len(key) == resource.IPKeyLen && key[17] == 128:
		var a [16]byte
		copy(a[:], key[1:17])
		cur = s.hosts[a]
		n := s.next(cur, lid, op)
		if n == cur {
			return false
		}
		if n == 0 {
			delete(s.hosts, a)
		} else {
			s.hosts[a] = n
		}
	case key[0] == 'i':
		r, err := resource.FromKey(string(key))
		if err != nil {
			return false
		}
		changed := false
		s.nets.Modify(r.Prefix, func(v uint32, ok bool) (uint32, bool) {
			n := s.next(v, lid, op)
			changed = n != v
			return n, n == 0
		})
		if !changed {
			return false
		}
	default:
		cur = s.names[string(key)]
		n := s.next(cur, lid, op)
		if n == cur {
			return false
		}
		if n == 0 {
			delete(s.names, string(key))
		} else {
			s.names[string(key)] = n
		}
	}
	if op == change.Add {
		s.listCount[lid]++
	} else {
		s.listCount[lid]--
	}
	return true
}

// Lookup returns the sorted names of the lists r is on now, including
// through covering prefixes or parent domains. nil means on none.
func (s *State) Lookup(r resource.Resource) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var acc []uint16
	add := func(set uint32) {
		if set != 0 {
			acc = append(acc, s.sets[set]...)
		}
	}
	switch r.Kind {
	case resource.IP:
		if !r.Prefix.IsValid() {
			return nil
		}
		if r.Prefix.IsSingleIP() {
			a := r.Prefix.Addr()
			if a.Is4() {
				a = netip.AddrFrom16(a.As16())
			}
			add(s.hosts[a.As16()])
		}
		for _, v := range s.nets.Supernets(r.Prefix) {
			add(v)
		}
	case resource.Domain, resource.Email:
		for _, k := range r.Covering(nil, nil) {
			add(s.names[k])
		}
	}
	return s.names2(acc)
}

func (s *State) names2(ids []uint16) []string {
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = s.listNames[id]
	}
	slices.SortFunc(out, strings.Compare)
	return out
}

// Get returns the lists the exact key is on (no containment).
func (s *State) Get(key string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.names2(slices.Clone(s.sets[s.getSet(key)]))
}

func (s *State) getSet(key string) uint32 {
	if len(key) == resource.IPKeyLen && key[0] == 'i' {
		if key[17] == 128 {
			var a [16]byte
			copy(a[:], key[1:17])
			return s.hosts[a]
		}
		r, err := resource.FromKey(key)
		if err != nil {
			return 0
		}
		v, _ := s.nets.Get(r.Prefix)
		return v
	}
	return s.names[key]
}

// ForEach calls fn for every key with a non-empty set, holding the read
// lock; fn must not call back into s. Iteration stops when fn returns false.
func (s *State) ForEach(fn func(key string, lists []string) bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for a, set := range s.hosts {
		k := string(resource.AppendPrefixKey(nil, netip.PrefixFrom(netip.AddrFrom16(a), 128)))
		if !fn(k, s.names2(slices.Clone(s.sets[set]))) {
			return
		}
	}
	for p, set := range s.nets.All() {
		if !fn(resource.FromPrefix(p).Key(), s.names2(slices.Clone(s.sets[set]))) {
			return
		}
	}
	for k, set := range s.names {
		if !fn(k, s.names2(slices.Clone(s.sets[set]))) {
			return
		}
	}
}

// Stats describes the state's size.
type Stats struct {
	Hosts, Prefixes, Names, Sets int
	PerList                      map[string]int64
}

// Stats returns counts for metrics and /lists.
func (s *State) Stats() Stats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := Stats{Hosts: len(s.hosts), Prefixes: s.nets.Size(), Names: len(s.names), Sets: len(s.sets), PerList: make(map[string]int64, len(s.listNames))}
	for i, n := range s.listNames {
		st.PerList[n] = s.listCount[i]
	}
	return st
}

// Len is the number of resources on at least one list.
func (s *State) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.hosts) + s.nets.Size() + len(s.names)
}

// Fold applies every change scan yields to s in batches and returns how
// many there were and how many changed nothing (0 for a consistent
// history folded into an empty state). scan is a history full scan
// (history.Store.Scan) giving each resource's changes in time order.
func Fold(ctx context.Context, scan func(context.Context, func(change.Change) error) error, s *State) (rows, noops int64, err error) {
	const batch = 4096
	buf := make([]change.Change, 0, batch)
	changed := make([]bool, batch)
	flush := func() {
		s.ApplyChanges(buf, changed[:len(buf)])
		for _, c := range changed[:len(buf)] {
			if !c {
				noops++
			}
		}
		rows += int64(len(buf))
		buf = buf[:0]
	}
	err = scan(ctx, func(c change.Change) error {
		if buf = append(buf, c); len(buf) == batch {
			flush()
		}
		return nil
	})
	flush()
	return rows, noops, err
}

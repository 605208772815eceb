// Package change defines a blocklist change event and its binary record
// encoding on the changes topic. Encoding is allocation-light and needs no
// text parsing on the consumer side: the resource travels as its binary
// key (see package resource).
//
// Record value, version 1:
//
//	byte    version (1)
//	byte    op (1 add, 2 rem)
//	int64   time, Unix microseconds, big endian
//	uvarint len | list name bytes
//	rest    resource key (kind byte + body)
//
// The Kafka record key is the resource key as well, so all changes of one
// resource land in one partition, in order.
package change

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/netwarden/netwarden/internal/resource"
)

// Op is add or remove.
type Op uint8

// Ops.
const (
	Add Op = 1
	Rem Op = 2
)

func (o Op) String() string {
	switch o {
	case Add:
		return "add"
	case Rem:
		return "rem"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// ParseOp parses "add" or "rem".
func ParseOp(s string) (Op, error) {
	switch s {
	case "add":
		return Add, nil
	case "rem":
		return Rem, nil
	}
	return 0, fmt.Errorf("unknown op %q", s)
}

// Change is one resource entering (Add) or leaving (Rem) one list.
//
// Partition and Offset locate the record on the changes topic that caused
// the change, once it has been consumed (history rows carry them, see
// package history). They are not part of the record encoding. Use
// NoPosition for a change whose position is unknown (history written
// before positions were stored, or not yet produced).
type Change struct {
	Time      time.Time
	Op        Op
	List      string
	Key       string // resource.Resource.Key()
	Partition int32
	Offset    int64
}

// NoPosition is the Partition and Offset of a change whose topic position
// is unknown.
const NoPosition = -1

// HasPosition reports whether c's topic position is known.
func (c Change) HasPosition() bool { return c.Partition >= 0 && c.Offset >= 0 }

// Resource decodes the change's key.
func (c Change) Resource() (resource.Resource, error) { return resource.FromKey(c.Key) }

// ErrBadRecord is wrapped by every decode error.
var ErrBadRecord = errors.New("bad change record")

const version = 1

// Append appends c's record encoding to b.
func Append(b []byte, c Change) []byte {
	b = append(b, version, byte(c.Op))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Time.UnixMicro()))
	b = binary.AppendUvarint(b, uint64(len(c.List)))
	b = append(b, c.List...)
	return append(b, c.Key...)
}

// Decoded is a change whose string fields alias the decoded buffer.
// Callers that keep List or Key past the buffer's life must copy them
// (or intern them, as the processor does).
type Decoded struct {
	Micros int64
	Op     Op
	List   []byte
	Key    []byte
}

// Decode decodes a record value without allocating.
func Decode(v []byte) (Decoded, error) {
	if len(v) < 11 {
		return Decoded{}, fmt.Errorf("%w: %d bytes", ErrBadRecord, len(v))
	}
	if v[0] != version {
		return Decoded{}, fmt.Errorf("%w: version %d", ErrBadRecord, v[0])
	}
	op := Op(v[1])
	if op != Add && op != Rem {
		return Decoded{}, fmt.Errorf("%w: op %d", ErrBadRecord, v[1])
	}
	us := int64(binary.BigEndian.Uint64(v[2:10]))
	n, w := binary.Uvarint(v[10:])
	if w <= 0 || n == 0 || uint64(len(v)-10-w) <= n {
		return Decoded{}, fmt.Errorf("%w: list name length", ErrBadRecord)
	}
	start := 10 + w
	list := v[start : start+int(n)]
	key := v[start+int(n):]
	switch key[0] {
	case 'i':
		if len(key) != resource.IPKeyLen || key[17] > 128 {
			return Decoded{}, fmt.Errorf("%w: ip key", ErrBadRecord)
		}
	case 'd', 'e':
		if len(key) < 2 {
			return Decoded{}, fmt.Errorf("%w: empty name", ErrBadRecord)
		}
	default:
		return Decoded{}, fmt.Errorf("%w: key kind %#x", ErrBadRecord, key[0])
	}
	return Decoded{Micros: us, Op: op, List: list, Key: key}, nil
}

// Change returns a copy of d that owns its strings, with an unknown
// topic position.
func (d Decoded) Change() Change {
	return Change{Time: time.UnixMicro(d.Micros).UTC(), Op: d.Op, List: string(d.List), Key: string(d.Key),
		Partition: NoPosition, Offset: NoPosition}
}

// Package wasmbin rewrites WebAssembly binaries in ways that keep their
// meaning and make them cheaper to instantiate.
package wasmbin

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
)

// MaxGap is the longest run of zero bytes MergeData fills in to join two
// data segments.
const MaxGap = 4096

type segment struct {
	offset uint32
	data   []byte
}

// MergeData joins the active data segments of b that lie close together
// into fewer, larger ones, filling the gaps with the zeros memory starts
// with. Go's linker emits tens of thousands of segments (it splits data at
// runs of zeros), and instantiation pays per segment. It returns b unchanged
// (and false) when the module has passive segments, a data count section,
// segments that overlap, or anything it does not parse;
// it never fails a module that is otherwise valid.
func MergeData(b []byte) ([]byte, bool) {
	out, err := mergeData(b)
	if err != nil || out == nil {
		return b, false
	}
	return out, true
}

var errSkip = errors.New("skip")

func mergeData(b []byte) ([]byte, error) {
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return nil, errSkip
	}
	var out bytes.Buffer
	out.Write(b[:8])
	p := 8
	changed := false
	for p < len(b) {
		id := b[p]
		size, n := uvarint(b[p+1:])
		if n <= 0 {
			return nil, errSkip
		}
		start := p + 1 + n
		end := start + int(size)
		if end > len(b) || end < start {
			return nil, errSkip
		}
		switch id {
		case 12: // data count: segment indices are used, keep them
			return nil, errSkip
		case 11:
			payload, err := mergeSection(b[start:end])
			if err != nil {
				return nil, err
			}
			out.WriteByte(11)
			out.Write(binary.AppendUvarint(nil, uint64(len(payload))))
			out.Write(payload)
			changed = true
		default:
			out.Write(b[p:end])
		}
		p = end
	}
	if !changed {
		return nil, nil
	}
	return out.Bytes(), nil
}

func mergeSection(s []byte) ([]byte, error) {
	count, n := uvarint(s)
	if n <= 0 {
		return nil, errSkip
	}
	p := n
	segs := make([]segment, 0, count)
	for range count {
		if p >= len(s) {
			return nil, errSkip
		}
		flags, n := uvarint(s[p:])
		if n <= 0 || flags != 0 {
			return nil, errSkip // passive or other memory: indices matter
		}
		p += n
		if p >= len(s) || s[p] != 0x41 { // i32.const
			return nil, errSkip
		}
		p++
		off, n := varint32(s[p:])
		if n <= 0 {
			return nil, errSkip
		}
		p += n
		if p >= len(s) || s[p] != 0x0b { // end
			return nil, errSkip
		}
		p++
		l, n := uvarint(s[p:])
		if n <= 0 {
			return nil, errSkip
		}
		p += n
		if p+int(l) > len(s) || int(l) < 0 {
			return nil, errSkip
		}
		segs = append(segs, segment{offset: uint32(off), data: s[p : p+int(l)]})
		p += int(l)
	}
	if p != len(s) {
		return nil, errSkip
	}
	// Segments that do not overlap can be applied in any order.
	slices.SortStableFunc(segs, func(a, b segment) int { return cmp.Compare(a.offset, b.offset) })
	var merged []segment
	for _, sg := range segs {
		if len(merged) > 0 {
			last := &merged[len(merged)-1]
			lastEnd := uint64(last.offset) + uint64(len(last.data))
			if uint64(sg.offset) < lastEnd {
				return nil, errSkip // overlap: the order of writes matters
			}
			if gap := uint64(sg.offset) - lastEnd; gap <= MaxGap {
				// last.data is our own copy: appending is amortised linear.
				last.data = append(last.data, make([]byte, gap)...)
				last.data = append(last.data, sg.data...)
				continue
			}
		}
		merged = append(merged, segment{offset: sg.offset, data: slices.Clone(sg.data)})
	}
	var out []byte
	out = binary.AppendUvarint(out, uint64(len(merged)))
	for _, sg := range merged {
		out = append(out, 0, 0x41)
		out = appendVarint32(out, int32(sg.offset))
		out = append(out, 0x0b)
		out = binary.AppendUvarint(out, uint64(len(sg.data)))
		out = append(out, sg.data...)
	}
	return out, nil
}

func uvarint(b []byte) (uint64, int) {
	v, n := binary.Uvarint(b)
	if n > 5 {
		return 0, -1
	}
	return v, n
}

// varint32 reads a signed LEB128 i32.
func varint32(b []byte) (int32, int) {
	var result int32
	var shift uint
	for i := 0; i < 5 && i < len(b); i++ {
		c := b[i]
		result |= int32(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 32 && c&0x40 != 0 {
				result |= -1 << shift
			}
			return result, i + 1
		}
	}
	return 0, -1
}

func appendVarint32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

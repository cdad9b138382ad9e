package wasmbin

import (
	"bytes"
	"testing"
)

func module(sections ...[]byte) []byte {
	b := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		b = append(b, s...)
	}
	return b
}

func section(id byte, payload []byte) []byte {
	return append([]byte{id, byte(len(payload))}, payload...)
}

func seg(off int32, data string) []byte {
	b := []byte{0, 0x41}
	b = appendVarint32(b, off)
	b = append(b, 0x0b, byte(len(data)))
	return append(b, data...)
}

func TestMergeData(t *testing.T) {
	mem := section(5, []byte{1, 0, 1})
	for _, tc := range []struct {
		name    string
		in      []byte
		changed bool
		want    []byte
	}{
		{"joins close segments", module(mem, section(11, append(append([]byte{2}, seg(8, "ab")...), seg(12, "cd")...))), true,
			module(mem, section(11, append([]byte{1}, seg(8, "ab\x00\x00cd")...)))},
		{"keeps far segments apart", module(mem, section(11, append(append([]byte{2}, seg(8, "ab")...), seg(8+2+MaxGap+1, "cd")...))), true,
			module(mem, section(11, append(append([]byte{2}, seg(8, "ab")...), seg(8+2+MaxGap+1, "cd")...)))},
		{"sorts segments that do not overlap", module(mem, section(11, append(append([]byte{2}, seg(12, "cd")...), seg(8, "ab")...))), true,
			module(mem, section(11, append([]byte{1}, seg(8, "ab\x00\x00cd")...)))},
		{"overlap is left alone", module(mem, section(11, append(append([]byte{2}, seg(8, "ab")...), seg(9, "cd")...))), false, nil},
		{"passive is left alone", module(mem, section(11, []byte{1, 1, 2, 'a', 'b'})), false, nil},
		{"data count is left alone", module(mem, section(12, []byte{1}), section(11, append([]byte{1}, seg(0, "x")...))), false, nil},
		{"no data", module(mem), false, nil},
		{"not wasm", []byte("hello world"), false, nil},
		{"truncated", module(mem, section(11, append([]byte{2}, seg(8, "ab")...)))[:20], false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := MergeData(tc.in)
			if changed != tc.changed {
				t.Fatalf("changed %v, want %v", changed, tc.changed)
			}
			want := tc.want
			if !changed {
				want = tc.in
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got  %x\nwant %x", got, want)
			}
		})
	}
}

func TestVarint32(t *testing.T) {
	for _, v := range []int32{0, 1, 63, 64, -1, -64, -65, 1 << 20, 1<<31 - 1, -1 << 31} {
		b := appendVarint32(nil, v)
		got, n := varint32(b)
		if got != v || n != len(b) {
			t.Errorf("%d: got %d (%d bytes of %d)", v, got, n, len(b))
		}
	}
}

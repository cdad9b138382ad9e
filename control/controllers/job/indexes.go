package job

import (
	"sort"
	"strconv"
	"strings"
)

// indexSet is a set of completion indexes.
type indexSet map[int]bool

// parseIndexes reads Kubernetes' completedIndexes form ("1,3-5,7"),
// keeping indexes below limit; malformed parts are skipped.
func parseIndexes(s string, limit int32) indexSet {
	out := indexSet{}
	if s == "" {
		return out
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				continue
			}
		}
		for i := a; i <= b && i < int(limit); i++ {
			out[i] = true
		}
	}
	return out
}

// String writes the set in Kubernetes' completedIndexes form: sorted,
// runs of three or more as ranges ("1,3-5,7"; "1,2" stays a list).
func (s indexSet) String() string {
	idx := make([]int, 0, len(s))
	for i := range s {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var b strings.Builder
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && idx[j+1] == idx[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		switch {
		case j == i:
			b.WriteString(strconv.Itoa(idx[i]))
		case j == i+1:
			b.WriteString(strconv.Itoa(idx[i]) + "," + strconv.Itoa(idx[j]))
		default:
			b.WriteString(strconv.Itoa(idx[i]) + "-" + strconv.Itoa(idx[j]))
		}
		i = j + 1
	}
	return b.String()
}

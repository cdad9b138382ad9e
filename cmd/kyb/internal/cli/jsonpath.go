package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// jsonPath is a parsed kubectl JSONPath template: text, {.field.paths},
// {range ...}{end} and {"literals"}. It covers what scripts use with
// `kubectl get -o jsonpath=`: fields, [N], [*], ['key'], .., [start:end]
// and [?(@.path==value)] filters (==, !=). Missing keys print nothing, as
// kubectl's get does (allowMissingKeys).
type jsonPath struct {
	nodes []jpNode
}

type jpNode struct {
	text  string   // literal text, when path is nil and body is nil
	path  []jpStep // a {path}
	isRng bool     // a {range path}...{end}
	body  []jpNode // the range's body
}

type jpStep struct {
	kind   byte   // 'f' field, 'i' index, 'w' wildcard, 'r' recursive field, 's' slice, '?' filter
	name   string // field name
	index  int    // index, or slice start
	end    int    // slice end (exclusive); -1 for none
	filter *jpFilter
}

type jpFilter struct {
	path  []jpStep
	op    string // "==", "!=", or "" (exists)
	value any
}

// parseJSONPath parses a template such as `{.items[*].metadata.name}` or
// `{range .items[*]}{.metadata.name}{"\n"}{end}`. A bare path without
// braces (`.metadata.name`) is taken as `{.metadata.name}`, as kubectl's
// --sort-by and custom-columns take it.
func parseJSONPath(tmpl string) (*jsonPath, error) {
	if !strings.Contains(tmpl, "{") {
		tmpl = "{" + tmpl + "}"
	}
	var stack [][]jpNode
	var cur []jpNode
	var ranges []string
	rest := tmpl
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			cur = append(cur, jpNode{text: rest})
			break
		}
		if open > 0 {
			cur = append(cur, jpNode{text: rest[:open]})
		}
		close := closingBrace(rest, open)
		if close < 0 {
			return nil, fmt.Errorf("jsonpath %q: unclosed {", tmpl)
		}
		expr := strings.TrimSpace(rest[open+1 : close])
		rest = rest[close+1:]
		switch {
		case expr == "end":
			if len(stack) == 0 {
				return nil, fmt.Errorf("jsonpath %q: {end} without {range}", tmpl)
			}
			body := cur
			cur = stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			path, err := parsePath(ranges[len(ranges)-1])
			if err != nil {
				return nil, fmt.Errorf("jsonpath %q: %w", tmpl, err)
			}
			ranges = ranges[:len(ranges)-1]
			cur = append(cur, jpNode{isRng: true, path: path, body: body})
		case strings.HasPrefix(expr, "range "):
			stack = append(stack, cur)
			ranges = append(ranges, strings.TrimSpace(strings.TrimPrefix(expr, "range ")))
			cur = nil
		case strings.HasPrefix(expr, `"`) || strings.HasPrefix(expr, "'"):
			s, err := unquote(expr)
			if err != nil {
				return nil, fmt.Errorf("jsonpath %q: %w", tmpl, err)
			}
			cur = append(cur, jpNode{text: s})
		default:
			path, err := parsePath(expr)
			if err != nil {
				return nil, fmt.Errorf("jsonpath %q: %w", tmpl, err)
			}
			cur = append(cur, jpNode{path: path})
		}
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("jsonpath %q: {range} without {end}", tmpl)
	}
	return &jsonPath{nodes: cur}, nil
}

// closingBrace returns the index of the } closing the { at s[open],
// skipping quoted strings.
func closingBrace(s string, open int) int {
	var quote byte
	for i := open + 1; i < len(s); i++ {
		switch c := s[i]; {
		case quote != 0 && c == '\\':
			i++
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case c == '"' || c == '\'':
			quote = c
		case c == '}':
			return i
		}
	}
	return -1
}

func unquote(s string) (string, error) {
	if strings.HasPrefix(s, "'") {
		if len(s) < 2 || !strings.HasSuffix(s, "'") {
			return "", fmt.Errorf("unterminated string %s", s)
		}
		return s[1 : len(s)-1], nil
	}
	u, err := strconv.Unquote(s)
	if err != nil {
		return "", fmt.Errorf("bad string %s: %w", s, err)
	}
	return u, nil
}

// parsePath parses `.a.b[0].c[*]`, `$.a`, `@.a`, `..name`, `['a.b']`.
func parsePath(p string) ([]jpStep, error) {
	orig := p
	p = strings.TrimPrefix(p, "$")
	p = strings.TrimPrefix(p, "@")
	var steps []jpStep
	for p != "" {
		switch {
		case strings.HasPrefix(p, ".."):
			p = p[2:]
			n := fieldLen(p)
			if n == 0 {
				return nil, fmt.Errorf("path %q: .. needs a field name", orig)
			}
			steps = append(steps, jpStep{kind: 'r', name: p[:n]})
			p = p[n:]
		case strings.HasPrefix(p, ".*"):
			steps = append(steps, jpStep{kind: 'w'})
			p = p[2:]
		case p[0] == '.':
			p = p[1:]
			n := fieldLen(p)
			if n == 0 {
				if p == "" && len(steps) == 0 {
					return steps, nil // {.} is the current object
				}
				return nil, fmt.Errorf("path %q: empty field name", orig)
			}
			steps = append(steps, jpStep{kind: 'f', name: p[:n]})
			p = p[n:]
		case p[0] == '[':
			end := closingBracket(p)
			if end < 0 {
				return nil, fmt.Errorf("path %q: unclosed [", orig)
			}
			st, err := parseBracket(strings.TrimSpace(p[1:end]))
			if err != nil {
				return nil, fmt.Errorf("path %q: %w", orig, err)
			}
			steps = append(steps, st)
			p = p[end+1:]
		default:
			return nil, fmt.Errorf("path %q: unexpected %q (paths start with a dot, as .metadata.name)", orig, p)
		}
	}
	return steps, nil
}

func fieldLen(p string) int {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c == '.' || c == '[' || c == ' ' {
			return i
		}
	}
	return len(p)
}

func closingBracket(p string) int {
	depth := 0
	var quote byte
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case c == '"' || c == '\'':
			quote = c
		case c == '[':
			depth++
		case c == ']':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func parseBracket(b string) (jpStep, error) {
	switch {
	case b == "*":
		return jpStep{kind: 'w'}, nil
	case strings.HasPrefix(b, "'") || strings.HasPrefix(b, `"`):
		s, err := unquote(b)
		return jpStep{kind: 'f', name: s}, err
	case strings.HasPrefix(b, "?(") && strings.HasSuffix(b, ")"):
		f, err := parseFilter(strings.TrimSpace(b[2 : len(b)-1]))
		return jpStep{kind: '?', filter: f}, err
	case strings.Contains(b, ":"):
		lo, hi, _ := strings.Cut(b, ":")
		st := jpStep{kind: 's', end: -1}
		var err error
		if lo = strings.TrimSpace(lo); lo != "" {
			if st.index, err = strconv.Atoi(lo); err != nil {
				return st, fmt.Errorf("bad slice start %q", lo)
			}
		}
		if hi = strings.TrimSpace(hi); hi != "" {
			if st.end, err = strconv.Atoi(hi); err != nil {
				return st, fmt.Errorf("bad slice end %q", hi)
			}
		}
		return st, nil
	}
	n, err := strconv.Atoi(b)
	if err != nil {
		return jpStep{}, fmt.Errorf("bad index [%s]", b)
	}
	return jpStep{kind: 'i', index: n}, nil
}

func parseFilter(f string) (*jpFilter, error) {
	for _, op := range []string{"==", "!="} {
		l, r, ok := strings.Cut(f, op)
		if !ok {
			continue
		}
		path, err := parsePath(strings.TrimSpace(l))
		if err != nil {
			return nil, err
		}
		r = strings.TrimSpace(r)
		var v any
		if strings.HasPrefix(r, "'") || strings.HasPrefix(r, `"`) {
			s, err := unquote(r)
			if err != nil {
				return nil, err
			}
			v = s
		} else if err := json.Unmarshal([]byte(r), &v); err != nil {
			return nil, fmt.Errorf("bad filter value %q", r)
		}
		return &jpFilter{path: path, op: op, value: v}, nil
	}
	path, err := parsePath(f)
	if err != nil {
		return nil, err
	}
	return &jpFilter{path: path}, nil
}

// execute writes the template applied to data (a value of encoding/json's
// generic form) to b.
func (j *jsonPath) execute(b *strings.Builder, data any) {
	execNodes(b, j.nodes, data)
}

func execNodes(b *strings.Builder, nodes []jpNode, data any) {
	for _, n := range nodes {
		switch {
		case n.isRng:
			for _, v := range evalPath(n.path, data) {
				execNodes(b, n.body, v)
			}
		case n.path != nil:
			for i, v := range evalPath(n.path, data) {
				if i > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(jpString(v))
			}
		default:
			b.WriteString(n.text)
		}
	}
}

// jpString formats a result as kubectl does: strings bare, the rest JSON.
func jpString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case nil:
		return ""
	}
	out, _ := json.Marshal(v)
	return string(out)
}

// evalPath returns every value path selects in data.
func evalPath(path []jpStep, data any) []any {
	vals := []any{data}
	for _, st := range path {
		var next []any
		for _, v := range vals {
			next = append(next, evalStep(st, v)...)
		}
		vals = next
	}
	return vals
}

func evalStep(st jpStep, v any) []any {
	switch st.kind {
	case 'f':
		if m, ok := v.(map[string]any); ok {
			if x, ok := m[st.name]; ok {
				return []any{x}
			}
		}
	case 'i':
		if a, ok := v.([]any); ok {
			i := st.index
			if i < 0 {
				i += len(a)
			}
			if i >= 0 && i < len(a) {
				return []any{a[i]}
			}
		}
	case 's':
		if a, ok := v.([]any); ok {
			lo, hi := st.index, st.end
			if lo < 0 {
				lo += len(a)
			}
			if hi < 0 && st.end != -1 {
				hi += len(a)
			}
			if st.end == -1 || hi > len(a) {
				hi = len(a)
			}
			lo = max(lo, 0)
			if lo < hi {
				return append([]any(nil), a[lo:hi]...)
			}
		}
	case 'w':
		switch t := v.(type) {
		case []any:
			return append([]any(nil), t...)
		case map[string]any:
			var out []any
			for _, k := range sortedKeys(t) {
				out = append(out, t[k])
			}
			return out
		}
	case 'r':
		var out []any
		var walk func(any)
		walk = func(x any) {
			switch t := x.(type) {
			case map[string]any:
				if y, ok := t[st.name]; ok {
					out = append(out, y)
				}
				for _, k := range sortedKeys(t) {
					walk(t[k])
				}
			case []any:
				for _, y := range t {
					walk(y)
				}
			}
		}
		walk(v)
		return out
	case '?':
		a, ok := v.([]any)
		if !ok {
			return nil
		}
		var out []any
		for _, x := range a {
			got := evalPath(st.filter.path, x)
			match := false
			switch st.filter.op {
			case "":
				match = len(got) > 0
			case "==":
				match = len(got) > 0 && jpEqual(got[0], st.filter.value)
			case "!=":
				match = len(got) == 0 || !jpEqual(got[0], st.filter.value)
			}
			if match {
				out = append(out, x)
			}
		}
		return out
	}
	return nil
}

func jpEqual(a, b any) bool {
	return jpString(a) == jpString(b)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// toGeneric converts v to encoding/json's generic form (maps, slices,
// float64, string, bool, nil), the form JSONPath walks.
func toGeneric(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode for jsonpath: %w", err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decode for jsonpath: %w", err)
	}
	return out, nil
}

package client

import (
	"encoding/json"
	"errors"
	"fmt"
)

var errSyntax = errors.New("malformed JSON")

// parseList splits a ListReply into its items without decoding them: one
// pass over the bytes instead of encoding/json's validate-then-decode of a
// reply that may hold tens of megabytes. Items alias data. Anything it does
// not understand falls back to encoding/json.
func parseList(data []byte) (*listPage, error) {
	p, err := scanList(data)
	if err == nil {
		return p, nil
	}
	var r struct {
		ResourceVersion string            `json:"resourceVersion"`
		Items           []json.RawMessage `json:"items"`
		Continue        string            `json:"continue"`
	}
	if jerr := json.Unmarshal(data, &r); jerr != nil {
		return nil, fmt.Errorf("decode list reply: %w", jerr)
	}
	return &listPage{rv: r.ResourceVersion, items: r.Items, cont: r.Continue}, nil
}

type listPage struct {
	rv    string
	items []json.RawMessage
	cont  string
}

func ws(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, nil
		}
	}
	return 0, errSyntax
}

// skipValue returns the index after the JSON value starting at b[i]. It
// checks structure (brackets, strings), not every token.
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errSyntax
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
		}
		return 0, errSyntax
	default:
		start := i
		for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\n' && b[i] != '\t' && b[i] != '\r' {
			i++
		}
		if i == start {
			return 0, errSyntax
		}
		return i, nil
	}
}

func scanList(b []byte) (*listPage, error) {
	p := &listPage{}
	i := ws(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, errSyntax
	}
	i = ws(b, i+1)
	if i < len(b) && b[i] == '}' {
		return p, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, errSyntax
		}
		end, err := skipString(b, i)
		if err != nil {
			return nil, err
		}
		var key string
		if err := json.Unmarshal(b[i:end], &key); err != nil {
			return nil, err
		}
		i = ws(b, end)
		if i >= len(b) || b[i] != ':' {
			return nil, errSyntax
		}
		i = ws(b, i+1)
		switch key {
		case "items":
			if i >= len(b) || (b[i] != '[' && b[i] != 'n') {
				return nil, errSyntax
			}
			if b[i] == 'n' {
				if i, err = skipValue(b, i); err != nil {
					return nil, err
				}
				break
			}
			i = ws(b, i+1)
			if i < len(b) && b[i] == ']' {
				i++
				break
			}
			for {
				end, err := skipValue(b, i)
				if err != nil {
					return nil, err
				}
				p.items = append(p.items, json.RawMessage(b[i:end:end]))
				i = ws(b, end)
				if i >= len(b) {
					return nil, errSyntax
				}
				if b[i] == ']' {
					i++
					break
				}
				if b[i] != ',' {
					return nil, errSyntax
				}
				i = ws(b, i+1)
			}
		default:
			end, err := skipValue(b, i)
			if err != nil {
				return nil, err
			}
			switch key {
			case "resourceVersion":
				err = json.Unmarshal(b[i:end], &p.rv)
			case "continue":
				err = json.Unmarshal(b[i:end], &p.cont)
			}
			if err != nil {
				return nil, err
			}
			i = end
		}
		i = ws(b, i)
		if i >= len(b) {
			return nil, errSyntax
		}
		if b[i] == '}' {
			return p, nil
		}
		if b[i] != ',' {
			return nil, errSyntax
		}
		i = ws(b, i+1)
	}
}

package dashboard

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// Text with line ends of any kind (an event message, a label) cannot start
// a field of the event stream: every line of it is a data line.
func TestSSEDataCannotInjectFields(t *testing.T) {
	for _, data := range []string{
		"<td>x</td>\revent: logout\rdata: y",
		"a\r\nid: 99\r\n\r\nevent: render",
		"a\n\nevent: logout\n",
	} {
		rec := httptest.NewRecorder()
		if err := newSSE(rec).send("render", []byte(data)); err != nil {
			t.Fatal(err)
		}
		out := rec.Body.String()
		if strings.Count(out, "\n\n") != 1 || !strings.HasSuffix(out, "\n\n") {
			t.Fatalf("%q was sent as more than one event: %q", data, out)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n\n"), "\n")
		if lines[0] != "event: render" {
			t.Fatalf("first line %q", lines[0])
		}
		for _, l := range lines[1:] {
			if !strings.HasPrefix(l, "data: ") || strings.Contains(l, "\r") {
				t.Fatalf("%q gave the stream line %q", data, l)
			}
		}
	}
}

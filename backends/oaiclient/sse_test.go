package oaiclient

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func readAll(t testing.TB, in string, maxLine int) ([]Event, error) {
	t.Helper()
	r := NewSSEReader(strings.NewReader(in), maxLine)
	var evs []Event
	for {
		ev, err := r.Next()
		if err != nil {
			if err == io.EOF {
				return evs, nil
			}
			return evs, err
		}
		evs = append(evs, ev)
	}
}

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Event
		wantErr error
	}{
		{"one event", "data: {\"a\":1}\n\n", []Event{{Data: `{"a":1}`}}, nil},
		{"crlf and no space", "data:x\r\n\r\n", []Event{{Data: "x"}}, nil},
		{"multi-line data", "data: a\ndata: b\n\n", []Event{{Data: "a\nb"}}, nil},
		{"comments and blank lines skipped", ": ping\n\n\ndata: x\n\n: bye\n", []Event{{Data: "x"}}, nil},
		{"event type", "event: error\ndata: {}\n\n", []Event{{Type: "error", Data: "{}"}}, nil},
		{"unknown fields ignored", "id: 7\nretry: 10\ndata: y\n\n", []Event{{Data: "y"}}, nil},
		{"empty data line", "data:\n\n", []Event{{Data: ""}}, nil},
		{"two events", "data: 1\n\ndata: 2\n\n", []Event{{Data: "1"}, {Data: "2"}}, nil},
		{"cut inside a line", "data: 1\n\ndata: {\"x", []Event{{Data: "1"}}, io.ErrUnexpectedEOF},
		{"cut after a line, before the blank line", "data: 1\n", nil, io.ErrUnexpectedEOF},
		{"line too long", "data: " + strings.Repeat("x", 2000) + "\n\n", nil, ErrLineTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAll(t, tt.in, 1024)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("events = %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("event %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestSSEReaderHugeLine feeds a 10 MB line through the default bound: an error naming the line, not a 10 MB buffer.
func TestSSEReaderHugeLine(t *testing.T) {
	huge := io.MultiReader(strings.NewReader("data: ok\n\ndata: "), &repeatReader{b: 'x', n: 10 << 20}, strings.NewReader("\n\n"))
	r := NewSSEReader(huge, 0)
	if ev, err := r.Next(); err != nil || ev.Data != "ok" {
		t.Fatalf("first event = %q, %v", ev, err)
	}
	_, err := r.Next()
	if !errors.Is(err, ErrLineTooLong) || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("err = %v, want ErrLineTooLong at line 3", err)
	}
}

// repeatReader yields n copies of b.
type repeatReader struct {
	b byte
	n int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := min(len(p), r.n)
	for i := range k {
		p[i] = r.b
	}
	r.n -= k
	return k, nil
}

func FuzzSSEReader(f *testing.F) {
	for _, s := range []string{
		"data: {\"choices\":[]}\n\n", "event: error\ndata: {}\n\n", ": c\r\n\r\ndata:x\r\n\r\n",
		"data: a\ndata: b\n\ndata: [DONE]\n\n", "data", "\n\n\n", "data: " + strings.Repeat("y", 300) + "\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r := NewSSEReader(strings.NewReader(in), 256)
		for i := 0; ; i++ {
			ev, err := r.Next()
			if err != nil {
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, ErrLineTooLong) {
					t.Fatalf("unexpected error kind %v", err)
				}
				return
			}
			if len(ev.Data) > len(in) {
				t.Fatalf("event data longer than the input")
			}
			if i > len(in) {
				t.Fatalf("more events than input bytes")
			}
		}
	})
}

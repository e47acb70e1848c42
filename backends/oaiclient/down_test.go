package oaiclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/snapeval/snapeval/llm"
)

// TestServerDyingMidStreamIsUnreachable: a request whose stream breaks off because the server went away is
// unreachable (the run stops), while the same break from a server that still accepts connections stays a
// request's own transient failure.
func TestServerDyingMidStreamIsUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name        string
		stayUp      bool
		unreachable bool
	}{
		{"server gone", false, true},
		{"server still up", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprint(w, "data: {\"choices\":[{\"index\":0,\"text\":\"4\",\"finish_reason\":null}]}\n\n")
				w.(http.Flusher).Flush()
				conn, _, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				if !tc.stayUp {
					srv.Listener.Close() // no new connections from now on
				}
				conn.Close() // the stream ends before [DONE]
			}))
			defer srv.Close()
			opts := DefaultOptions()
			opts.MaxRetries = 0
			c := New(srv.URL+"/v1", "", opts, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			prompt := "6*7="
			_, err := c.Complete(ctx, "/completions", CompletionRequest{Prompt: &prompt})
			if err == nil {
				t.Fatal("a broken stream gave no error")
			}
			if got := errors.Is(err, llm.ErrUnreachable); got != tc.unreachable {
				t.Fatalf("unreachable = %v, want %v: %v", got, tc.unreachable, err)
			}
		})
	}
}

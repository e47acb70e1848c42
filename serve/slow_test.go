package serve

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"testing"
	"time"
)

// startServe runs Serve with cfg on a local port and returns its address.
func startServe(t *testing.T, cfg Config) string {
	t.Helper()
	cfg.Backend, cfg.Model, cfg.Log = &wordBackend{}, "words", log.New(io.Discard, "", 0)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, time.Second) }()
	t.Cleanup(func() { cancel(); <-served })
	return ln.Addr().String()
}

// closedWithin trickles one byte of write every tick on conn (as a slow client does) and reports whether the
// server closed the connection (a read ends) before limit.
func closedWithin(conn net.Conn, tick, limit time.Duration, trickle string) bool {
	ended := make(chan struct{})
	go func() {
		io.Copy(io.Discard, conn) // returns when the server closes the connection
		close(ended)
	}()
	stop := time.After(limit)
	for i := 0; ; i++ {
		select {
		case <-ended:
			return true
		case <-stop:
			return false
		case <-time.After(tick):
			conn.Write([]byte{trickle[i%len(trickle)]})
		}
	}
}

// TestSlowClientsAreCut: a client that trickles its headers, or its body, or sits idle after a request, is
// disconnected by the timeouts; without them such connections stayed open for good.
func TestSlowClientsAreCut(t *testing.T) {
	addr := startServe(t, Config{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 400 * time.Millisecond,
		IdleTimeout: 300 * time.Millisecond})
	for _, tc := range []struct {
		name, start, trickle string
	}{
		{"headers", "POST /v1/completions HTTP/1.1\r\nHost: x\r\n", "X-Slow: aaaaaaaa\r\n"},
		{"body", "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", `{"prompt":"aaaaaaaaaaaaaa`},
		{"idle", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if tc.name == "idle" {
				fmt.Fprint(conn, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("health: %v", err)
				}
				io.Copy(io.Discard, resp.Body)
				ended := make(chan struct{})
				go func() { io.Copy(io.Discard, conn); close(ended) }()
				select {
				case <-ended:
				case <-time.After(10 * time.Second):
					t.Fatal("an idle keep-alive connection is still open after 10 s")
				}
				return
			}
			fmt.Fprint(conn, tc.start)
			if !closedWithin(conn, 50*time.Millisecond, 10*time.Second, tc.trickle) {
				t.Fatalf("a client trickling its %s one byte at a time is still connected after 10 s", tc.name)
			}
		})
	}
}

// TestConnectionCap: with MaxConnections open, a further connection waits to be served until one closes.
func TestConnectionCap(t *testing.T) {
	addr := startServe(t, Config{MaxConnections: 2})
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		fmt.Fprint(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n") // accepted and served: the connection is held open
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("health on held connection: %v", err)
		}
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 300 * time.Millisecond}
	if _, err := client.Get("http://" + addr + "/health"); err == nil {
		t.Fatal("a third connection was served while two were open")
	}
	held[0].Close()
	client.Timeout = 10 * time.Second
	resp, err := client.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatalf("after one connection closed: %v", err)
	}
	resp.Body.Close()
	for _, c := range held[1:] {
		c.Close()
	}
}

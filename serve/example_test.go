package serve_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/snapeval/snapeval/llm"
	"github.com/snapeval/snapeval/serve"
)

// upper is a minimal backend: it answers the prompt in upper case.
type upper struct{}

func (upper) Generate(ctx context.Context, req llm.Request) (llm.Output, error) {
	return llm.Output{Text: strings.ToUpper(req.Prompt), FinishReason: "stop", Cache: llm.CacheInfo{Policy: req.Policy}}, nil
}
func (upper) Identity() string              { return "upper" }
func (upper) CheckPolicy(spec string) error { return nil }
func (upper) Tokenizer() llm.Tokenizer      { return nil }
func (upper) Close() error                  { return nil }

func Example() {
	s, err := serve.New(serve.Config{Backend: upper{}, Model: "upper", Log: log.New(io.Discard, "", 0)})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/completions", "application/json",
		strings.NewReader(`{"prompt":"hello","snapeval_policy":"snapstream:budget=64"}`))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	fmt.Println(resp.StatusCode, strings.Contains(body, `"text":"HELLO"`), strings.Contains(body, `"policy":"snapstream:budget=64"`))
	// Output: 200 true true
}

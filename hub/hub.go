// Package hub downloads files from the Hugging Face Hub (datasets and models).
//
// URLs follow the Hub layout {endpoint}/{datasets/}{repo}/resolve/{revision}/{path}. Downloads are resumable
// (a Range request continues a ".incomplete" file), verified against a known size and sha256, and renamed into
// place atomically. 5xx answers, 429 and connection errors are retried a bounded number of times with
// exponential backoff; 401, 403 and 404 fail at once with an error that says what to do. The token
// (HF_TOKEN) is sent as "Authorization: Bearer" and never appears in logs or errors.
//
// Cache layout (a simplified form of huggingface_hub's, under the same root):
//
//	$HF_HOME/hub/{datasets|models|spaces}--{org}--{name}/snapshots/{revision}/{path}
//
// There is no blobs/ directory: each snapshot file is a plain file, written only after verification.
package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/snapeval/snapeval/internal/atomicfile"
)

// Repository types.
const (
	RepoModel   = "model"
	RepoDataset = "dataset"
	RepoSpace   = "space"
)

// DefaultEndpoint is the Hub used when HF_ENDPOINT is unset.
const DefaultEndpoint = "https://huggingface.co"

// FileSpec is what a caller knows about a file before downloading it.
// Size 0 and SHA256 "" mean unknown (not checked).
type FileSpec struct {
	Path   string
	Size   int64
	SHA256 string
}

// Result describes a downloaded (or already cached) file.
type Result struct {
	Path   string // local path
	Size   int64
	SHA256 string // hex digest of the local file
}

// Client downloads files from a Hub endpoint.
type Client struct {
	// Endpoint is the Hub base URL, without a trailing slash.
	Endpoint string
	// Token is sent as a Bearer token when non-empty. It is never logged nor put in errors.
	Token string
	// CacheDir is the hub cache root ($HF_HOME/hub).
	CacheDir string
	// HTTP is the client used for requests (redirects are followed; Go drops Authorization on cross-host redirects).
	HTTP *http.Client
	// Retries is the number of retries after a transient failure (5xx, 429, connection error).
	Retries int
	// Backoff is the first retry delay; it doubles on every retry.
	Backoff time.Duration
	// Progress, when set, is called as bytes arrive (done, total; total is -1 when unknown).
	Progress func(done, total int64)
}

// NewFromEnv builds a client from HF_ENDPOINT, HF_TOKEN and HF_HOME.
func NewFromEnv() *Client {
	endpoint := strings.TrimRight(os.Getenv("HF_ENDPOINT"), "/")
	if endpoint == "" {
		endpoint = DefaultEndpoint
	}
	home := os.Getenv("HF_HOME")
	if home == "" {
		if h, err := os.UserHomeDir(); err == nil {
			home = filepath.Join(h, ".cache", "huggingface")
		} else {
			home = filepath.Join(os.TempDir(), "huggingface")
		}
	}
	return &Client{
		Endpoint: endpoint,
		Token:    os.Getenv("HF_TOKEN"),
		CacheDir: filepath.Join(home, "hub"),
		HTTP:     &http.Client{},
		Retries:  5,
		Backoff:  time.Second,
	}
}

// URL returns the resolve URL of a file.
func (c *Client) URL(repoType, repo, revision, file string) (string, error) {
	if err := checkRepo(repoType, repo, revision, file); err != nil {
		return "", err
	}
	prefix := ""
	switch repoType {
	case RepoDataset:
		prefix = "datasets/"
	case RepoSpace:
		prefix = "spaces/"
	}
	segs := strings.Split(file, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return c.Endpoint + "/" + prefix + repo + "/resolve/" + url.PathEscape(revision) + "/" + strings.Join(segs, "/"), nil
}

// LocalPath returns where Download stores a file in the cache.
func (c *Client) LocalPath(repoType, repo, revision, file string) (string, error) {
	if err := checkRepo(repoType, repo, revision, file); err != nil {
		return "", err
	}
	dir := repoType + "s--" + strings.ReplaceAll(repo, "/", "--")
	// A branch such as refs/convert/parquet becomes one directory name.
	return filepath.Join(c.CacheDir, dir, "snapshots", strings.ReplaceAll(revision, "/", "--"), filepath.FromSlash(file)), nil
}

func checkRepo(repoType, repo, revision, file string) error {
	switch repoType {
	case RepoModel, RepoDataset, RepoSpace:
	default:
		return fmt.Errorf("hub: unknown repository type %q (want model, dataset or space)", repoType)
	}
	parts := strings.Split(repo, "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" || strings.ContainsAny(repo, `\ `) || strings.Contains(repo, "..") {
		return fmt.Errorf("hub: repository %q is not of the form org/name", repo)
	}
	if revision == "" || strings.ContainsAny(revision, `\ `) || strings.HasPrefix(revision, "/") || strings.HasSuffix(revision, "/") {
		return fmt.Errorf("hub: bad revision %q", revision)
	}
	for _, s := range strings.Split(revision, "/") {
		if s == "" || s == "." || s == ".." {
			return fmt.Errorf("hub: bad revision %q", revision)
		}
	}
	if file == "" || path.IsAbs(file) || strings.Contains(file, `\`) {
		return fmt.Errorf("hub: bad file path %q", file)
	}
	for _, s := range strings.Split(file, "/") {
		if s == "" || s == "." || s == ".." {
			return fmt.Errorf("hub: bad file path %q", file)
		}
	}
	return nil
}

// Download fetches one file of a repository into the cache and returns its local path.
// want.Path is ignored when empty (path is used); a file already in the cache is re-verified, not re-downloaded.
func (c *Client) Download(ctx context.Context, repoType, repo, revision, file string, want FileSpec) (string, error) {
	res, err := c.Fetch(ctx, repoType, repo, revision, file, want)
	return res.Path, err
}

// Fetch is Download returning the size and sha256 seen (useful when want has no hash).
func (c *Client) Fetch(ctx context.Context, repoType, repo, revision, file string, want FileSpec) (Result, error) {
	dest, err := c.LocalPath(repoType, repo, revision, file)
	if err != nil {
		return Result{}, err
	}
	u, err := c.URL(repoType, repo, revision, file)
	if err != nil {
		return Result{}, err
	}
	return c.FetchURL(ctx, u, dest, want)
}

// FetchURL downloads u to dest (through dest+".incomplete"), verifying want's size and sha256 when known.
// An existing dest is hashed and returned when it matches want (it is replaced when it does not).
func (c *Client) FetchURL(ctx context.Context, u, dest string, want FileSpec) (Result, error) {
	want.SHA256 = strings.ToLower(want.SHA256)
	if res, err := HashFile(dest); err == nil {
		if (want.Size <= 0 || res.Size == want.Size) && (want.SHA256 == "" || res.SHA256 == want.SHA256) {
			return res, nil
		}
		if err := os.Remove(dest); err != nil {
			return Result{}, fmt.Errorf("hub: remove stale %s: %w", dest, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return Result{}, fmt.Errorf("hub: %w", err)
	}
	part := dest + ".incomplete"
	var lastErr error
	delay := c.Backoff
	for attempt := 0; attempt <= c.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return Result{}, ctx.Err()
			case <-time.After(delay):
			}
			delay *= 2
		}
		err := c.fetchOnce(ctx, u, part, want)
		if err == nil {
			lastErr = nil
			break
		}
		lastErr = err
		var te *transientError
		if !errors.As(err, &te) || ctx.Err() != nil {
			return Result{}, c.scrub(err)
		}
	}
	if lastErr != nil {
		return Result{}, c.scrub(fmt.Errorf("%w (gave up after %d retries)", lastErr, c.Retries))
	}
	res, err := HashFile(part)
	if err != nil {
		return Result{}, err
	}
	if want.Size > 0 && res.Size != want.Size {
		os.Remove(part)
		return Result{}, fmt.Errorf("hub: %s: size %d, want %d (partial file removed)", redactURL(u), res.Size, want.Size)
	}
	if want.SHA256 != "" && res.SHA256 != want.SHA256 {
		os.Remove(part)
		return Result{}, fmt.Errorf("hub: %s: sha256 %s, want %s (file removed)", redactURL(u), res.SHA256, want.SHA256)
	}
	if err := atomicfile.Rename(part, dest); err != nil {
		return Result{}, fmt.Errorf("hub: %w", err)
	}
	res.Path = dest
	return res, nil
}

// transientError marks a failure worth retrying.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// fetchOnce makes one request, appending to part from its current length.
func (c *Client) fetchOnce(ctx context.Context, u, part string, want FileSpec) error {
	var have int64
	if st, err := os.Stat(part); err == nil {
		have = st.Size()
	}
	if want.Size > 0 && have > want.Size {
		os.Remove(part)
		have = 0
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	req.Header.Set("User-Agent", "snapeval")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &transientError{fmt.Errorf("hub: GET %s: %w", redactURL(u), unwrapURLError(err))}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		have = 0 // the server ignored the range: start over
	case resp.StatusCode == http.StatusPartialContent:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			os.Remove(part)
			return &transientError{fmt.Errorf("hub: GET %s: unexpected Content-Range %q for offset %d",
				redactURL(u), resp.Header.Get("Content-Range"), have)}
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
		// Either the partial file is complete, or it is garbage: let verification decide; if the size
		// is unknown we cannot tell, so trust a 416 only with a known size.
		if want.Size > 0 && have == want.Size {
			return nil
		}
		os.Remove(part)
		return &transientError{fmt.Errorf("hub: GET %s: range not satisfiable at offset %d", redactURL(u), have)}
	default:
		return statusError(resp, u, c.Token != "")
	}
	flags := os.O_CREATE | os.O_WRONLY
	if have == 0 {
		flags |= os.O_TRUNC
	} else {
		flags |= os.O_APPEND
	}
	f, err := os.OpenFile(part, flags, 0o644)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	total := int64(-1)
	if resp.ContentLength >= 0 {
		total = have + resp.ContentLength
	}
	var w io.Writer = f
	if c.Progress != nil {
		w = &progressWriter{w: f, done: have, total: total, fn: c.Progress}
	}
	n, copyErr := io.Copy(w, resp.Body)
	closeErr := f.Close()
	if copyErr != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &transientError{fmt.Errorf("hub: GET %s: transfer broke after %d bytes: %w", redactURL(u), have+n, copyErr)}
	}
	if closeErr != nil {
		return fmt.Errorf("hub: %w", closeErr)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return &transientError{fmt.Errorf("hub: GET %s: got %d of %d bytes", redactURL(u), n, resp.ContentLength)}
	}
	return nil
}

type progressWriter struct {
	w           io.Writer
	done, total int64
	fn          func(done, total int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.done += int64(n)
	p.fn(p.done, p.total)
	return n, err
}

func contentRangeStart(h string) (int64, bool) {
	// "bytes START-END/TOTAL"
	h = strings.TrimSpace(h)
	if !strings.HasPrefix(h, "bytes ") {
		return 0, false
	}
	rest := strings.TrimPrefix(h, "bytes ")
	dash := strings.IndexByte(rest, '-')
	if dash <= 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(rest[:dash], 10, 64)
	return n, err == nil
}

// statusError turns an HTTP failure into an error that says what to do.
func statusError(resp *http.Response, u string, hasToken bool) error {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	msg := resp.Header.Get("X-Error-Message")
	code := resp.Header.Get("X-Error-Code")
	detail := ""
	if code != "" || msg != "" {
		detail = fmt.Sprintf(" [%s %s]", code, msg)
	}
	ru := redactURL(u)
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		if hasToken {
			return fmt.Errorf("hub: GET %s: 401 Unauthorized%s: HF_TOKEN was rejected, or the repository is private or gated and this account has no access", ru, detail)
		}
		return fmt.Errorf("hub: GET %s: 401 Unauthorized%s: the repository is private or gated; set HF_TOKEN to a token with access", ru, detail)
	case http.StatusForbidden:
		return fmt.Errorf("hub: GET %s: 403 Forbidden%s: gated repository; request access on its Hub page, then set HF_TOKEN", ru, detail)
	case http.StatusNotFound:
		return fmt.Errorf("hub: GET %s: 404 Not Found%s: no such repository, revision or file", ru, detail)
	}
	err := fmt.Errorf("hub: GET %s: %s%s", ru, resp.Status, detail)
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout {
		return &transientError{err}
	}
	return err
}

// scrub removes the token from an error's text, as a last line of defence.
func (c *Client) scrub(err error) error {
	if err == nil || c.Token == "" || !strings.Contains(err.Error(), c.Token) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), c.Token, "[REDACTED]"))
}

// redactURL drops user info and query strings (signed CDN URLs) from a URL for messages.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(bad url)"
	}
	p.User = nil
	p.RawQuery = ""
	p.Fragment = ""
	return p.String()
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		var ne net.Error
		if errors.As(ue.Err, &ne) {
			return ne
		}
		return ue.Err
	}
	return err
}

// HashFile returns the size and sha256 of a local file.
func HashFile(p string) (Result, error) {
	f, err := os.Open(p)
	if err != nil {
		return Result{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Result{}, fmt.Errorf("hub: hash %s: %w", p, err)
	}
	return Result{Path: p, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

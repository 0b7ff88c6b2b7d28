package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"time"
)

// Per-call deadlines. Long transfers (blobs, outputs) get their own.
const (
	callTimeout     = 30 * time.Second
	transferTimeout = 30 * time.Minute
)

// Backoff between retries of a call the server did not answer.
const (
	backoffMin = 100 * time.Millisecond
	backoffMax = 2 * time.Second
)

// errFenced is returned for a 409: the attempt is no longer the run's live
// attempt and must be stopped and forgotten.
var errFenced = errors.New("attempt fenced by the server (409)")

// errBadBlob is returned when a downloaded blob does not match its digest.
var errBadBlob = errors.New("blob content does not match its digest")

// statusError is an HTTP answer the call could not use.
type statusError struct {
	op   string
	code int
	body string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s: server answered %d %s: %s", e.op, e.code, http.StatusText(e.code), e.body)
}

// temporary reports whether asking again may succeed.
func (e *statusError) temporary() bool {
	return e.code >= 500 || e.code == http.StatusTooManyRequests || e.code == http.StatusRequestTimeout
}

// retryable reports whether err may go away by itself: network errors and
// temporary statuses. 409 and other 4xx are final.
func retryable(err error) bool {
	if err == nil || errors.Is(err, errFenced) || errors.Is(err, errBadBlob) {
		return false
	}
	if se, ok := errors.AsType[*statusError](err); ok {
		return se.temporary()
	}
	return true
}

// permanent reports whether err is a final refusal other than fencing.
func permanent(err error) bool {
	if se, ok := errors.AsType[*statusError](err); ok {
		return !se.temporary()
	}
	return false
}

// body makes a request body; it is called once per try.
type body func() (r io.Reader, contentType string, err error)

func jsonBody(v any) body {
	b, err := json.Marshal(v)
	return func() (io.Reader, string, error) {
		return bytes.NewReader(b), "application/json", err
	}
}

func rawBody(b []byte, contentType string) body {
	return func() (io.Reader, string, error) { return bytes.NewReader(b), contentType, nil }
}

// call is do for callers that do not care about the success status.
func (a *Agent) call(ctx context.Context, op, method, path string, query string, b body, out any, timeout time.Duration) error {
	_, err := a.do(ctx, op, method, path, query, b, out, timeout)
	return err
}

// do makes one request to the agent API. It returns the status on 2xx
// (decoding a JSON answer into out unless it is nil or the status is 204),
// errFenced on 409 and a *statusError otherwise.
func (a *Agent) do(ctx context.Context, op, method, path, query string, b body, out any, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := a.send(ctx, op, method, path, query, b)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			// A garbled answer is treated like no answer: retried.
			return resp.StatusCode, fmt.Errorf("%s: decode answer: %w", op, err)
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, nil
}

// send makes one request and returns a 2xx response, whose body the caller
// must close; otherwise errFenced on 409 or a *statusError.
func (a *Agent) send(ctx context.Context, op, method, path, query string, b body) (*http.Response, error) {
	u := a.base + path
	if query != "" {
		u += "?" + query
	}
	var (
		r  io.Reader
		ct string
	)
	if b != nil {
		var err error
		if r, ct, err = b(); err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		if c, ok := r.(io.Closer); ok {
			c.Close()
		}
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if f, ok := r.(*os.File); ok {
		if fi, err := f.Stat(); err == nil {
			req.ContentLength = fi.Size()
		}
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if a.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.cfg.Token)
	}
	resp, err := a.hc.Do(req) // closes the request body
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return resp, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusConflict {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("%s: %w", op, errFenced)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2<<10))
	return nil, &statusError{op: op, code: resp.StatusCode, body: string(bytes.TrimSpace(msg))}
}

// retry calls f until it succeeds, fails for good (409, other 4xx), or ctx
// ends, sleeping with capped exponential backoff in between.
func (a *Agent) retry(ctx context.Context, f func(ctx context.Context) error) error {
	var b backoff
	for {
		err := f(ctx)
		if !retryable(err) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w (gave up: %v)", err, context.Cause(ctx))
		}
		d := b.next()
		if b.n == 1 || b.n%20 == 0 {
			a.log.WarnContext(ctx, "server call failed; retrying", keyErr, err, "tries", b.n, "retry_in", d)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %v)", err, context.Cause(ctx))
		case <-a.clock.After(d):
		}
	}
}

// backoff yields growing delays from backoffMin to backoffMax with ±20%
// jitter. The zero value is ready.
type backoff struct{ n int }

func (b *backoff) next() time.Duration {
	b.n++
	d := backoffMin << min(b.n-1, 8)
	d = min(d, backoffMax)
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) * 2
	return d - d/5 + jitter
}

func (b *backoff) reset() { b.n = 0 }

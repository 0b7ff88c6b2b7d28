// Package client is the Go client of Hangar's REST API (/api/v1). It speaks
// only the wire types of package api: every method maps to one route, takes a
// context first, and returns a *api.Error (with Status set) when the server
// answers with a non-2xx status. A server that cannot be reached at all gives
// an *UnreachableError.
//
// A Client is safe for concurrent use.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/hangar-ml/hangar/api"
)

// DefaultWorkspace is the workspace used when none is given.
const DefaultWorkspace = "default"

// Client calls one Hangar server as one identity in one workspace.
type Client struct {
	base      string // scheme://host[:port][/prefix], without /api/v1 and without a trailing slash
	token     string
	workspace string
	http      *http.Client
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithWorkspace sets the workspace of workspace-scoped routes. An empty name
// keeps DefaultWorkspace.
func WithWorkspace(ws string) Option {
	return func(c *Client) {
		if ws != "" {
			c.workspace = ws
		}
	}
}

// WithHTTPClient sets the HTTP client used for every request. The default is
// a client without an overall timeout, so that followed logs can stream for
// as long as the context allows.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) {
		if h != nil {
			c.http = h
		}
	}
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a client of the server at baseURL (for example
// "http://127.0.0.1:8265"; a trailing "/api/v1" is accepted) that sends token
// as a bearer token. An empty token sends no Authorization header. New does
// no I/O.
func New(baseURL, token string, opts ...Option) *Client {
	base := strings.TrimRight(baseURL, "/")
	base = strings.TrimSuffix(base, "/api/"+api.Version)
	c := &Client{
		base:      base,
		token:     token,
		workspace: DefaultWorkspace,
		http:      &http.Client{},
		userAgent: "hangar-go-client",
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// BaseURL is the server URL the client was made with (without /api/v1).
func (c *Client) BaseURL() string { return c.base }

// Workspace is the workspace of workspace-scoped calls.
func (c *Client) Workspace() string { return c.workspace }

// UnreachableError means no HTTP answer came back: the connection was
// refused, the host is unknown, or the network failed before a response.
type UnreachableError struct {
	URL string // the server's base URL
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the Hangar server at %s: %v", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// IsNotFound reports whether err is an API error with status 404.
func IsNotFound(err error) bool {
	var ae *api.Error
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// request describes one call.
type request struct {
	method string
	path   string // under /api/v1, starting with '/'
	query  url.Values
	body   any       // JSON-encoded when non-nil
	raw    io.Reader // sent as application/octet-stream when non-nil
}

// ws returns the path of a workspace-scoped route.
func (c *Client) ws(parts ...string) string {
	var b strings.Builder
	b.WriteString("/workspaces/")
	b.WriteString(url.PathEscape(c.workspace))
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(p))
	}
	return b.String()
}

// do sends r and returns the response when its status is 2xx. Otherwise it
// closes the body and returns the decoded *api.Error.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	u := c.base + "/api/" + api.Version + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	var length int64 = -1
	contentType := ""
	switch {
	case r.body != nil:
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, fmt.Errorf("encode %s %s: %w", r.method, r.path, err)
		}
		body, length, contentType = bytes.NewReader(b), int64(len(b)), "application/json"
	case r.raw != nil:
		body, length, contentType = r.raw, sizeOf(r.raw), "application/octet-stream"
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	if length >= 0 {
		req.ContentLength = length
		if length == 0 {
			req.Body = http.NoBody
		}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &UnreachableError{URL: c.base, Err: unwrapURLError(err)}
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeError(resp)
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// sizeOf returns the length of r when it is known without reading it, else -1.
func sizeOf(r io.Reader) int64 {
	switch v := r.(type) {
	case interface{ Len() int }:
		return int64(v.Len())
	case *os.File:
		fi, err := v.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return -1
		}
		off, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return -1
		}
		return fi.Size() - off
	}
	return -1
}

// decodeError turns a non-2xx response into an *api.Error.
func decodeError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var eb api.ErrorBody
	if err := json.Unmarshal(data, &eb); err == nil && (eb.Error.Message != "" || eb.Error.Code != "") {
		e := eb.Error
		e.Status = resp.StatusCode
		return &e
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	text := fmt.Sprintf("server answered %s", resp.Status)
	if msg != "" && resp.Request != nil && resp.Request.Method != http.MethodHead {
		text += ": " + msg
	}
	return &api.Error{Code: codeFor(resp.StatusCode), Message: text, Status: resp.StatusCode}
}

// codeFor gives the API code for a status, for error bodies that are not ours
// (a proxy's page, an empty HEAD answer).
func codeFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "BadRequest"
	case http.StatusUnauthorized:
		return "Unauthorized"
	case http.StatusForbidden:
		return "Forbidden"
	case http.StatusNotFound:
		return "NotFound"
	case http.StatusConflict:
		return "Conflict"
	case http.StatusRequestEntityTooLarge:
		return "TooLarge"
	case http.StatusUnsupportedMediaType:
		return "UnsupportedMediaType"
	case http.StatusUnprocessableEntity:
		return "Unprocessable"
	case http.StatusTooManyRequests:
		return "TooManyRequests"
	}
	return "ServerError"
}

// call sends r and decodes a JSON answer into out (when out is non-nil).
func (c *Client) call(ctx context.Context, r request, out any) error {
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("decode answer of %s %s: %w", r.method, r.path, err)
	}
	return nil
}

// list sends a GET and unwraps an api.List[T]. It never returns a nil slice
// without an error, so that `-o json` prints [] rather than null.
func list[T any](ctx context.Context, c *Client, path string, q url.Values) ([]T, error) {
	var l api.List[T]
	if err := c.call(ctx, request{method: http.MethodGet, path: path, query: q}, &l); err != nil {
		return nil, err
	}
	if l.Value == nil {
		l.Value = []T{}
	}
	return l.Value, nil
}

// Health is GET /health; it needs no token.
func (c *Client) Health(ctx context.Context) (*api.Health, error) {
	var h api.Health
	if err := c.call(ctx, request{method: http.MethodGet, path: "/health"}, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// Version is GET /version: the server's version string.
func (c *Client) Version(ctx context.Context) (string, error) {
	var v struct {
		Version string `json:"version"`
	}
	if err := c.call(ctx, request{method: http.MethodGet, path: "/version"}, &v); err != nil {
		return "", err
	}
	return v.Version, nil
}

// VMSizes is GET /vm-sizes: the catalog of VM sizes.
func (c *Client) VMSizes(ctx context.Context) ([]api.VMSize, error) {
	return list[api.VMSize](ctx, c, "/vm-sizes", nil)
}

// ComputeCreate is POST /computes. Only the fields set in spec are sent, so
// the server applies its defaults to the rest. The compute comes back in its
// first provisioning state (usually Creating); poll ComputeGet to follow it.
func (c *Client) ComputeCreate(ctx context.Context, spec api.ComputeSpec) (*api.Compute, error) {
	var out api.Compute
	if err := c.call(ctx, request{method: http.MethodPost, path: c.ws("computes"), body: spec}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ComputeGet is GET /computes/{name}.
func (c *Client) ComputeGet(ctx context.Context, name string) (*api.Compute, error) {
	var out api.Compute
	if err := c.call(ctx, request{method: http.MethodGet, path: c.ws("computes", name)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ComputeList is GET /computes.
func (c *Client) ComputeList(ctx context.Context) ([]api.Compute, error) {
	return list[api.Compute](ctx, c, c.ws("computes"), nil)
}

// ComputeUpdate is PATCH /computes/{name}; nil fields of u are kept.
func (c *Client) ComputeUpdate(ctx context.Context, name string, u api.ComputeUpdate) (*api.Compute, error) {
	var out api.Compute
	if err := c.call(ctx, request{method: http.MethodPatch, path: c.ws("computes", name), body: u}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ComputeDelete is DELETE /computes/{name}. Without force the server refuses
// while runs are queued or running on the compute; with force it cancels
// them first. Deletion is asynchronous: the compute stays visible (Deleting)
// until ComputeGet answers 404.
func (c *Client) ComputeDelete(ctx context.Context, name string, force bool) error {
	var q url.Values
	if force {
		q = url.Values{"force": {"true"}}
	}
	return c.call(ctx, request{method: http.MethodDelete, path: c.ws("computes", name), query: q}, nil)
}

// ComputeNodes is GET /computes/{name}/nodes.
func (c *Client) ComputeNodes(ctx context.Context, name string) ([]api.Node, error) {
	return list[api.Node](ctx, c, c.ws("computes", name, "nodes"), nil)
}

// ComputePreempt is POST /computes/{name}/preempt (admin): it evicts node, or
// a running node of the server's choice when node is "". It returns the node
// the server preempted, when the server says which.
func (c *Client) ComputePreempt(ctx context.Context, name, node string) (*api.Node, error) {
	var out api.Node
	if err := c.call(ctx, request{method: http.MethodPost, path: c.ws("computes", name, "preempt"), body: api.PreemptRequest{Node: node}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// QuotaList is GET /quotas.
func (c *Client) QuotaList(ctx context.Context) ([]api.Quota, error) {
	return list[api.Quota](ctx, c, c.ws("quotas"), nil)
}

// QuotaSet is PUT /quotas.
func (c *Client) QuotaSet(ctx context.Context, q api.QuotaSet) (*api.Quota, error) {
	var out api.Quota
	if err := c.call(ctx, request{method: http.MethodPut, path: c.ws("quotas"), body: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// BlobHas is HEAD /blobs/{digest}: whether the server already stores it.
func (c *Client) BlobHas(ctx context.Context, digest string) (bool, error) {
	resp, err := c.do(ctx, request{method: http.MethodHead, path: c.ws("blobs", digest)})
	if err != nil {
		if IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	resp.Body.Close()
	return true, nil
}

// BlobUpload is POST /blobs: it streams r to the server, which stores it by
// content and answers with its digest. Uploading a stored blob again is
// harmless.
func (c *Client) BlobUpload(ctx context.Context, r io.Reader) (*api.Blob, error) {
	if r == nil {
		r = http.NoBody
	}
	var out api.Blob
	if err := c.call(ctx, request{method: http.MethodPost, path: c.ws("blobs"), raw: r}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RunSubmit is POST /runs. The snapshot and inputs must be uploaded first.
func (c *Client) RunSubmit(ctx context.Context, s api.RunSubmit) (*api.Run, error) {
	var out api.Run
	if err := c.call(ctx, request{method: http.MethodPost, path: c.ws("runs"), body: s}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RunGet is GET /runs/{id}.
func (c *Client) RunGet(ctx context.Context, id string) (*api.Run, error) {
	var out api.Run
	if err := c.call(ctx, request{method: http.MethodGet, path: c.ws("runs", id)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RunFilter narrows RunList; empty fields do not filter.
type RunFilter struct {
	Experiment string
	Compute    string
	Status     string
}

// RunList is GET /runs.
func (c *Client) RunList(ctx context.Context, f RunFilter) ([]api.Run, error) {
	q := url.Values{}
	if f.Experiment != "" {
		q.Set("experiment", f.Experiment)
	}
	if f.Compute != "" {
		q.Set("compute", f.Compute)
	}
	if f.Status != "" {
		q.Set("status", f.Status)
	}
	return list[api.Run](ctx, c, c.ws("runs"), q)
}

// RunCancel is POST /runs/{id}/cancel. Cancel may be called for a run that
// already ended; the server answers with the run as it is.
func (c *Client) RunCancel(ctx context.Context, id string) (*api.Run, error) {
	var out api.Run
	if err := c.call(ctx, request{method: http.MethodPost, path: c.ws("runs", id, "cancel")}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RunLogs is GET /runs/{id}/logs: the run's log from byte offset. With
// follow the body streams until the run ends (or ctx is done). The caller
// closes the reader.
func (c *Client) RunLogs(ctx context.Context, id string, offset int64, follow bool) (io.ReadCloser, error) {
	q := url.Values{}
	if offset > 0 {
		q.Set("offset", strconv.FormatInt(offset, 10))
	}
	if follow {
		q.Set("follow", "true")
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: c.ws("runs", id, "logs"), query: q})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// RunFiles is GET /runs/{id}/files: a tar.gz of the run's outputs/ and logs/.
// The caller closes the reader.
func (c *Client) RunFiles(ctx context.Context, id string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: c.ws("runs", id, "files")})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// RunMetrics is GET /runs/{id}/metrics.
func (c *Client) RunMetrics(ctx context.Context, id string) ([]api.Metric, error) {
	return list[api.Metric](ctx, c, c.ws("runs", id, "metrics"), nil)
}

// MetricPost is POST /runs/{id}/metrics: one metric or a batch.
func (c *Client) MetricPost(ctx context.Context, id string, m api.MetricsPost) error {
	return c.call(ctx, request{method: http.MethodPost, path: c.ws("runs", id, "metrics"), body: m}, nil)
}

// Events is GET /events: recent events, newest last, of one compute when
// compute is not empty. A limit <= 0 lets the server choose.
func (c *Client) Events(ctx context.Context, compute string, limit int) ([]api.Event, error) {
	q := url.Values{}
	if compute != "" {
		q.Set("compute", compute)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return list[api.Event](ctx, c, c.ws("events"), q)
}

// EnvironmentCreate is POST /environments: it registers a new version of the
// named environment.
func (c *Client) EnvironmentCreate(ctx context.Context, spec api.EnvironmentSpec) (*api.Environment, error) {
	var out api.Environment
	if err := c.call(ctx, request{method: http.MethodPost, path: c.ws("environments"), body: spec}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EnvironmentGet is GET /environments/{name}; version <= 0 means the latest.
func (c *Client) EnvironmentGet(ctx context.Context, name string, version int) (*api.Environment, error) {
	var q url.Values
	if version > 0 {
		q = url.Values{"version": {strconv.Itoa(version)}}
	}
	var out api.Environment
	if err := c.call(ctx, request{method: http.MethodGet, path: c.ws("environments", name), query: q}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// EnvironmentList is GET /environments.
func (c *Client) EnvironmentList(ctx context.Context) ([]api.Environment, error) {
	return list[api.Environment](ctx, c, c.ws("environments"), nil)
}

// ModelRegister is POST /models: it registers the next version of a model,
// from a file or folder among a run's files (RunID and Path) or from an
// uploaded tar.gz (Digest and Path, the base name of what it holds).
func (c *Client) ModelRegister(ctx context.Context, m api.ModelRegister) (*api.Model, error) {
	var out api.Model
	if err := c.call(ctx, request{method: http.MethodPost, path: c.ws("models"), body: m}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ModelList is GET /models: every version of the named model, or of every
// model when name is "", newest first.
func (c *Client) ModelList(ctx context.Context, name string) ([]api.Model, error) {
	var q url.Values
	if name != "" {
		q = url.Values{"name": {name}}
	}
	return list[api.Model](ctx, c, c.ws("models"), q)
}

// ModelGet is GET /models/{name}/versions/{version}, or GET /models/{name}
// (the latest version) when version <= 0.
func (c *Client) ModelGet(ctx context.Context, name string, version int) (*api.Model, error) {
	p := c.ws("models", name)
	if version > 0 {
		p = c.ws("models", name, "versions", strconv.Itoa(version))
	}
	var out api.Model
	if err := c.call(ctx, request{method: http.MethodGet, path: p}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ModelFiles is GET /models/{name}/versions/{version}/files: the tar.gz of
// the model's file or folder, under its own name. The caller closes the
// reader.
func (c *Client) ModelFiles(ctx context.Context, name string, version int) (io.ReadCloser, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: c.ws("models", name, "versions", strconv.Itoa(version), "files")})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ModelDelete is DELETE /models/{name}/versions/{version}; the server
// refuses (409) while a service uses the version, naming the services.
func (c *Client) ModelDelete(ctx context.Context, name string, version int) error {
	return c.call(ctx, request{method: http.MethodDelete, path: c.ws("models", name, "versions", strconv.Itoa(version))}, nil)
}

// ServiceDeploy is POST /services. The source snapshot must be uploaded
// first. The service comes back Transitioning; poll ServiceGet until
// ObservedGeneration reaches Generation to know how the deployment went.
func (c *Client) ServiceDeploy(ctx context.Context, d api.ServiceDeploy) (*api.Service, error) {
	var out api.Service
	if err := c.call(ctx, request{method: http.MethodPost, path: c.ws("services"), body: d}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ServiceGet is GET /services/{name}.
func (c *Client) ServiceGet(ctx context.Context, name string) (*api.Service, error) {
	var out api.Service
	if err := c.call(ctx, request{method: http.MethodGet, path: c.ws("services", name)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ServiceList is GET /services.
func (c *Client) ServiceList(ctx context.Context) ([]api.Service, error) {
	return list[api.Service](ctx, c, c.ws("services"), nil)
}

// ServiceUpdate is PATCH /services/{name}; absent fields of u are kept. Like
// a deploy it is asynchronous: the new generation is live once
// ObservedGeneration reaches Generation.
func (c *Client) ServiceUpdate(ctx context.Context, name string, u api.ServiceUpdate) (*api.Service, error) {
	var out api.Service
	if err := c.call(ctx, request{method: http.MethodPatch, path: c.ws("services", name), body: u}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ServiceDelete is DELETE /services/{name}. Deletion is asynchronous: the
// service stays visible (delete_requested) until ServiceGet answers 404.
func (c *Client) ServiceDelete(ctx context.Context, name string) error {
	return c.call(ctx, request{method: http.MethodDelete, path: c.ws("services", name)}, nil)
}

// ServiceLogs is GET /services/{name}/logs from byte offset; with follow
// the body streams until the service is gone (or ctx is done). The caller
// closes the reader.
func (c *Client) ServiceLogs(ctx context.Context, name string, offset int64, follow bool) (io.ReadCloser, error) {
	q := url.Values{}
	if offset > 0 {
		q.Set("offset", strconv.FormatInt(offset, 10))
	}
	if follow {
		q.Set("follow", "true")
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: c.ws("services", name, "logs"), query: q})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ServiceKeys is GET /services/{name}/keys.
func (c *Client) ServiceKeys(ctx context.Context, name string) (*api.ServiceKeys, error) {
	var out api.ServiceKeys
	if err := c.call(ctx, request{method: http.MethodGet, path: c.ws("services", name, "keys")}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ServiceRegenKey is POST /services/{name}/regen-key: it replaces the
// "primary" or "secondary" key and returns both.
func (c *Client) ServiceRegenKey(ctx context.Context, name, key string) (*api.ServiceKeys, error) {
	var out api.ServiceKeys
	if err := c.call(ctx, request{method: http.MethodPost, path: c.ws("services", name, "regen-key"), body: api.RegenKey{Key: key}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// maxScoreResponse bounds the response body Score reads.
const maxScoreResponse = 256 << 20

// Score POSTs body (JSON) to a service's scoring URI, with key as a bearer
// token unless it is "", and returns the status and the response body
// whatever the status. err is set only when no answer came back (or the
// answer could not be read); a 4xx or 5xx is for the caller to judge.
func (c *Client) Score(ctx context.Context, scoringURI, key string, body []byte) (status int, respBody []byte, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, scoringURI, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("score %s: %w", scoringURI, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		return 0, nil, fmt.Errorf("score %s: %w", scoringURI, unwrapURLError(err))
	}
	defer resp.Body.Close()
	respBody, err = io.ReadAll(io.LimitReader(resp.Body, maxScoreResponse))
	if err != nil {
		return resp.StatusCode, respBody, fmt.Errorf("score %s: read answer: %w", scoringURI, err)
	}
	return resp.StatusCode, respBody, nil
}

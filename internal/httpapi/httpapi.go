// Package httpapi is Hangar's REST API (/api/v1) and the server side of the
// node agent protocol. Handlers return errors; one mapper (writeError)
// turns *problem.Error into a 4xx with code, field and message, and any
// other error into a 500 whose cause is logged with the request id, never
// sent.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/internal/blob"
	"github.com/hangar-ml/hangar/internal/clock"
	"github.com/hangar-ml/hangar/internal/compute"
	"github.com/hangar-ml/hangar/internal/controller"
	"github.com/hangar-ml/hangar/internal/ids"
	"github.com/hangar-ml/hangar/internal/model"
	"github.com/hangar-ml/hangar/internal/node"
	"github.com/hangar-ml/hangar/internal/problem"
	"github.com/hangar-ml/hangar/internal/run"
	"github.com/hangar-ml/hangar/internal/service"
	"github.com/hangar-ml/hangar/internal/store"
	"github.com/hangar-ml/hangar/internal/vmsize"
)

// Config wires the API.
type Config struct {
	Store     store.Store
	Ctl       *controller.Controller
	Blobs     *blob.Store
	Catalog   *vmsize.Catalog
	Providers map[string]bool // provider name → has GPUs
	Clock     clock.Clock
	Logger    *slog.Logger
	Registry  *prometheus.Registry
	Version   string
	// MaxBlobBytes caps one upload (default 300 MB plus tar overhead).
	MaxBlobBytes int64
	// Services is the service manager; nil leaves services as the API
	// writes them (Transitioning until something writes their status).
	Services ServiceHooks
}

// API serves the REST routes.
type API struct {
	cfg     Config
	log     *slog.Logger
	latency *prometheus.HistogramVec

	// tokMu guards the short-lived caches of token and workspace lookups,
	// which keep the store out of the hot path of every request.
	tokMu      sync.Mutex
	tokens     map[string]cachedToken
	workspaces map[string]time.Time

	snapFiles snapshotFiles
}

type cachedToken struct {
	tok     store.Token
	fetched time.Time
}

// New returns the API; it starts nothing.
func New(cfg Config) *API {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.MaxBlobBytes == 0 {
		cfg.MaxBlobBytes = 320 << 20
	}
	a := &API{cfg: cfg, log: cfg.Logger.With("component", "api"), tokens: map[string]cachedToken{}, workspaces: map[string]time.Time{},
		snapFiles: snapshotFiles{files: map[string]map[string]bool{}}}
	a.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "hangar_api_request_duration_seconds",
		Help:    "API request latency by route, method and status code.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"route", "method", "code"})
	if cfg.Registry != nil {
		cfg.Registry.MustRegister(a.latency)
	}
	return a
}

// principal is who is calling.
type principal struct {
	token store.Token
}

func (p principal) admin() bool { return p.token.Scope == "admin" }

// runScope returns the run id a run token is limited to ("" for others).
func (p principal) runScope() string {
	if id, ok := strings.CutPrefix(p.token.Scope, "run:"); ok {
		return id
	}
	return ""
}

func (p principal) nodeScope() string {
	if id, ok := strings.CutPrefix(p.token.Scope, "node:"); ok {
		return id
	}
	return ""
}

type ctxKey int

const principalKey ctxKey = 1

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handler returns the routes.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	const v = "/api/v1"
	open := func(pattern string, h handlerFunc) { mux.Handle(pattern, a.wrap(h, authNone)) }
	user := func(pattern string, h handlerFunc) { mux.Handle(pattern, a.wrap(h, authUser)) }
	agent := func(pattern string, h handlerFunc) { mux.Handle(pattern, a.wrap(h, authNode)) }

	open("GET "+v+"/health", a.health)
	open("GET /.well-known/hangar", a.wellKnown)
	user("GET "+v+"/version", a.version)
	user("GET "+v+"/vm-sizes", a.vmSizes)

	ws := v + "/workspaces/{ws}"
	user("GET "+ws+"/computes", a.computeList)
	user("POST "+ws+"/computes", a.computeCreate)
	user("GET "+ws+"/computes/{name}", a.computeGet)
	user("PATCH "+ws+"/computes/{name}", a.computeUpdate)
	user("DELETE "+ws+"/computes/{name}", a.computeDelete)
	user("GET "+ws+"/computes/{name}/nodes", a.computeNodes)
	user("POST "+ws+"/computes/{name}/preempt", a.computePreempt)
	user("GET "+ws+"/quotas", a.quotaList)
	user("PUT "+ws+"/quotas", a.quotaSet)
	user("POST "+ws+"/blobs", a.blobUpload)
	user("HEAD "+ws+"/blobs/{digest}", a.blobHead)
	user("GET "+ws+"/runs", a.runList)
	user("POST "+ws+"/runs", a.runSubmit)
	user("GET "+ws+"/runs/{id}", a.runGet)
	user("POST "+ws+"/runs/{id}/cancel", a.runCancel)
	user("GET "+ws+"/runs/{id}/logs", a.runLogs)
	user("GET "+ws+"/runs/{id}/files", a.runFiles)
	user("GET "+ws+"/runs/{id}/metrics", a.metricList)
	user("POST "+ws+"/runs/{id}/metrics", a.metricPost)
	user("GET "+ws+"/events", a.eventList)
	user("GET "+ws+"/environments", a.environmentList)
	user("POST "+ws+"/environments", a.environmentCreate)
	user("GET "+ws+"/environments/{name}", a.environmentGet)
	user("GET "+ws+"/models", a.modelList)
	user("POST "+ws+"/models", a.modelRegister)
	user("GET "+ws+"/models/{name}", a.modelGet)
	user("GET "+ws+"/models/{name}/versions/{v}", a.modelGet)
	user("GET "+ws+"/models/{name}/versions/{v}/files", a.modelFiles)
	user("DELETE "+ws+"/models/{name}/versions/{v}", a.modelDelete)
	user("GET "+ws+"/services", a.serviceList)
	user("POST "+ws+"/services", a.serviceDeploy)
	user("GET "+ws+"/services/{name}", a.serviceGet)
	user("PATCH "+ws+"/services/{name}", a.serviceUpdate)
	user("DELETE "+ws+"/services/{name}", a.serviceDelete)
	user("GET "+ws+"/services/{name}/logs", a.serviceLogs)
	user("GET "+ws+"/services/{name}/keys", a.serviceKeys)
	user("POST "+ws+"/services/{name}/regen-key", a.serviceRegenKey)

	ag := v + "/agent"
	agent("POST "+ag+"/heartbeat", a.agentHeartbeat)
	agent("GET "+ag+"/work", a.agentWork)
	agent("GET "+ag+"/blobs/{digest}", a.agentBlob)
	agent("POST "+ag+"/attempts/{id}/start", a.agentStart)
	agent("POST "+ag+"/attempts/{id}/logs", a.agentLogs)
	agent("PUT "+ag+"/attempts/{id}/files", a.agentFiles)
	agent("POST "+ag+"/attempts/{id}/finish", a.agentFinish)

	if a.cfg.Registry != nil {
		// Prometheus scrapes with a bearer token (authorization.credentials_file);
		// only health and /.well-known are open.
		prom := promhttp.HandlerFor(a.cfg.Registry, promhttp.HandlerOpts{})
		user("GET /metrics", func(w http.ResponseWriter, r *http.Request) error {
			if err := requireUser(r); err != nil {
				return err
			}
			prom.ServeHTTP(w, r)
			return nil
		})
	}
	mux.Handle("/", a.wrap(func(w http.ResponseWriter, r *http.Request) error {
		return problem.New(problem.NotFound, "no route %s %s", r.Method, r.URL.Path).WithHint("see docs/ARCHITECTURE.md for the API routes")
	}, authNone))
	return mux
}

type authMode int

const (
	authNone authMode = iota
	authUser
	authNode
)

// statusRecorder remembers the status for metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (a *API) wrap(h handlerFunc, mode authMode) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		reqID := ids.New("req")
		rec.Header().Set("X-Request-Id", reqID)
		err := a.authenticate(r, mode)
		if err == nil {
			if p, ok := r.Context().Value(principalKey).(principal); ok && mode == authUser && p.nodeScope() != "" {
				err = problem.New(problem.Forbidden, "a node token cannot call the user API")
			} else if ok && mode == authUser && p.runScope() != "" && r.PathValue("id") != p.runScope() {
				// A run's HANGAR_TOKEN serves only its own run's routes: it must
				// not list other runs, whose variables may hold secrets.
				err = problem.New(problem.Forbidden, "this run token is only valid for run %s", p.runScope())
			}
		}
		if err == nil {
			err = h(rec, r)
		}
		if err != nil {
			a.writeError(rec, r, reqID, err)
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		a.latency.WithLabelValues(route, r.Method, strconv.Itoa(max(rec.status, 200))).Observe(time.Since(start).Seconds())
	})
}

func (a *API) authenticate(r *http.Request, mode authMode) error {
	if mode == authNone {
		return nil
	}
	h := r.Header.Get("Authorization")
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || secret == "" {
		return problem.New(problem.Unauthorized, "missing bearer token").WithHint("set HANGAR_TOKEN or run: hangar login --url URL --token-file DATA_DIR/admin-token")
	}
	tok, err := a.lookupToken(r.Context(), ids.Hash(secret))
	if err != nil {
		return err
	}
	now := a.cfg.Clock.Now()
	if !tok.RevokedAt.IsZero() || (!tok.ExpiresAt.IsZero() && now.After(tok.ExpiresAt)) {
		return problem.New(problem.Unauthorized, "token is expired or revoked")
	}
	p := principal{token: tok}
	if mode == authNode && p.nodeScope() == "" {
		return problem.New(problem.Forbidden, "this route is for node agents")
	}
	*r = *r.WithContext(context.WithValue(r.Context(), principalKey, p))
	return nil
}

func (a *API) lookupToken(ctx context.Context, hash string) (store.Token, error) {
	now := time.Now()
	a.tokMu.Lock()
	c, ok := a.tokens[hash]
	a.tokMu.Unlock()
	if ok && now.Sub(c.fetched) < 5*time.Second {
		return c.tok, nil
	}
	tok, err := a.cfg.Store.TokenGetByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return tok, problem.New(problem.Unauthorized, "unknown token").WithHint("check HANGAR_TOKEN or run hangar login again")
	}
	if err != nil {
		return tok, err
	}
	a.tokMu.Lock()
	if len(a.tokens) > 10000 {
		a.tokens = map[string]cachedToken{}
	}
	a.tokens[hash] = cachedToken{tok: tok, fetched: now}
	a.tokMu.Unlock()
	return tok, nil
}

func principalOf(r *http.Request) principal {
	p, _ := r.Context().Value(principalKey).(principal)
	return p
}

// workspace resolves {ws} and checks the caller may use it.
func (a *API) workspace(r *http.Request) (string, error) {
	ws := r.PathValue("ws")
	p := principalOf(r)
	if p.token.Workspace != "" && p.token.Workspace != ws {
		return "", problem.New(problem.Forbidden, "token is not valid for workspace %q", ws)
	}
	a.tokMu.Lock()
	seen, ok := a.workspaces[ws]
	a.tokMu.Unlock()
	if ok && time.Since(seen) < 5*time.Second {
		return ws, nil
	}
	if _, err := a.cfg.Store.WorkspaceGet(r.Context(), ws); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", problem.New(problem.NotFound, "workspace %q not found", ws).WithField("workspace").WithHint("the default workspace is \"default\"; set HANGAR_WORKSPACE")
		}
		return "", err
	}
	a.tokMu.Lock()
	a.workspaces[ws] = time.Now()
	a.tokMu.Unlock()
	return ws, nil
}

// requireUser refuses run-scoped tokens on routes that are not about their run.
func requireUser(r *http.Request) error {
	if principalOf(r).runScope() != "" {
		return problem.New(problem.Forbidden, "a run token may only post metrics of its run")
	}
	return nil
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, reqID string, err error) {
	p, ok := problem.As(err)
	if !ok {
		switch {
		case errors.Is(err, compute.ErrNotFound):
			p = problem.New(problem.NotFound, "compute not found")
		case errors.Is(err, run.ErrNotFound):
			p = problem.New(problem.NotFound, "run not found")
		case errors.Is(err, node.ErrNotFound):
			p = problem.New(problem.NotFound, "node not found")
		case errors.Is(err, model.ErrNotFound):
			p = problem.New(problem.NotFound, "model not found")
		case errors.Is(err, service.ErrNotFound):
			p = problem.New(problem.NotFound, "service not found")
		case errors.Is(err, controller.ErrFenced):
			p = problem.New(problem.Conflict, "attempt is no longer current (fenced)")
		case errors.Is(err, context.Canceled):
			return
		default:
			a.log.ErrorContext(r.Context(), "internal error", "request_id", reqID, "method", r.Method, "path", r.URL.Path, "err", err)
			writeJSON(w, http.StatusInternalServerError, api.ErrorBody{Error: api.Error{Code: "Internal", Message: "internal error (request id " + reqID + "); see the server log"}})
			return
		}
	}
	writeJSON(w, statusOf(p.Code), api.ErrorBody{Error: toAPIError(p)})
}

func toAPIError(p *problem.Error) api.Error {
	e := api.Error{Code: string(p.Code), Field: p.Field, Message: p.Message, Hint: p.Hint}
	for _, d := range p.Details {
		de := toAPIError(d)
		e.Details = append(e.Details, &de)
	}
	return e
}

func statusOf(c problem.Code) int {
	switch c {
	case problem.InvalidField, problem.BadRequest:
		return http.StatusBadRequest
	case problem.Unauthorized:
		return http.StatusUnauthorized
	case problem.Forbidden:
		return http.StatusForbidden
	case problem.NotFound:
		return http.StatusNotFound
	case problem.Conflict:
		return http.StatusConflict
	case problem.TooLarge:
		return http.StatusRequestEntityTooLarge
	case problem.Unsupported:
		return http.StatusUnsupportedMediaType
	case problem.Unprocessable:
		return http.StatusUnprocessableEntity
	case problem.TooMany:
		return http.StatusTooManyRequests
	}
	return http.StatusBadRequest
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// decode reads a JSON body strictly: unknown fields are refused, naming them.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return problem.New(problem.Unsupported, "Content-Type must be application/json, not %q", ct)
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 4<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := err.Error()
		if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			f = strings.Trim(f, `"`)
			return problem.Field(f, "unknown field; it is not part of this request (check the spelling)")
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return problem.Field(te.Field, "must be a %s, not a JSON %s", te.Type.String(), te.Value)
		}
		if errors.Is(err, io.EOF) {
			return problem.New(problem.BadRequest, "request body is empty; send a JSON object")
		}
		return problem.New(problem.BadRequest, "request body is not valid JSON: %v", err)
	}
	if dec.More() {
		return problem.New(problem.BadRequest, "request body has data after the JSON object")
	}
	return nil
}

func (a *API) health(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, api.Health{Status: "ok", Version: a.cfg.Version})
	return nil
}

func (a *API) wellKnown(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"api": "/api/v1", "version": a.cfg.Version})
	return nil
}

func (a *API) version(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, api.Health{Status: "ok", Version: a.cfg.Version})
	return nil
}

func (a *API) vmSizes(w http.ResponseWriter, r *http.Request) error {
	var out []api.VMSize
	for _, s := range a.cfg.Catalog.All() {
		out = append(out, toAPISize(s))
	}
	writeJSON(w, http.StatusOK, api.List[api.VMSize]{Value: out})
	return nil
}

func toAPISize(s vmsize.Size) api.VMSize {
	return api.VMSize{Name: s.Name, Family: s.Family, VCPUs: s.VCPUs, MemoryGB: s.MemoryGB, GPUs: s.GPUs, PricePerHour: s.PricePerHour, LowPriorityPricePerHour: s.LowPriorityPricePerHour}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// queryInt parses an optional integer query parameter.
func queryInt(r *http.Request, name string, def int64) (int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, problem.Field(name, "must be a non-negative integer, not %q", s)
	}
	return v, nil
}

func queryBool(r *http.Request, name string) bool {
	switch strings.ToLower(r.URL.Query().Get(name)) {
	case "1", "true", "yes":
		return true
	}
	return false
}

package serving

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Header values shared by every response; net/http only reads them.
var (
	contentTypeJSON = []string{"application/json"}
	contentTypeText = []string{"text/plain; charset=utf-8"}
	allowPost       = []string{"POST"}
	allowGet        = []string{"GET, HEAD"}
	retryAfterOne   = []string{"1"}
	bearerChallenge = []string{`Bearer realm="hangar"`}
	noStore         = []string{"no-store"}
)

// maxPooledBuffer is the largest buffer kept for reuse.
const maxPooledBuffer = 1 << 20

// ServeHTTP routes the service's endpoints.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := requestID(r)
	h := w.Header()
	h["X-Request-Id"] = []string{id}
	switch r.URL.Path {
	case "/score":
		s.score(w, r, id)
	case "/":
		if !isGet(r) {
			h["Allow"] = allowGet
			s.writeError(w, id, &httpError{status: http.StatusMethodNotAllowed, code: "MethodNotAllowed", msg: "use GET /"})
			return
		}
		h["Content-Type"] = contentTypeText
		_, _ = io.WriteString(w, "Healthy\n")
	case "/ready":
		if !isGet(r) {
			h["Allow"] = allowGet
			s.writeError(w, id, &httpError{status: http.StatusMethodNotAllowed, code: "MethodNotAllowed", msg: "use GET /ready"})
			return
		}
		if herr := s.readiness(); herr != nil {
			s.writeError(w, id, herr)
			return
		}
		h["Content-Type"] = contentTypeText
		_, _ = io.WriteString(w, "Ready\n")
	case "/swagger.json":
		if !isGet(r) {
			h["Allow"] = allowGet
			s.writeError(w, id, &httpError{status: http.StatusMethodNotAllowed, code: "MethodNotAllowed", msg: "use GET /swagger.json"})
			return
		}
		doc := s.swaggerOff
		if s.keys.Load().enabled {
			doc = s.swaggerOn
		}
		h["Content-Type"] = contentTypeJSON
		_, _ = w.Write(doc)
	default:
		s.writeError(w, id, &httpError{status: http.StatusNotFound, code: "NotFound",
			msg: fmt.Sprintf("no route %s; the service answers POST /score, GET /, GET /ready and GET /swagger.json", r.URL.Path)})
	}
}

func isGet(r *http.Request) bool { return r.Method == http.MethodGet || r.Method == http.MethodHead }

// score answers POST /score: checks, then one round trip to a worker.
func (s *Service) score(w http.ResponseWriter, r *http.Request, id string) {
	arrival := s.clock.Now()
	if r.Method != http.MethodPost {
		w.Header()["Allow"] = allowPost
		s.fail(w, id, &httpError{status: http.StatusMethodNotAllowed, code: "MethodNotAllowed", msg: "score with POST /score"})
		return
	}
	if herr := s.authorize(r); herr != nil {
		s.fail(w, id, herr)
		return
	}
	isJSON, ok := classifyContentType(r.Header["Content-Type"])
	if !ok {
		s.fail(w, id, unsupportedType(r.Header.Get("Content-Type")))
		return
	}
	if r.ContentLength > s.maxBody {
		s.fail(w, id, s.tooLarge())
		return
	}
	if s.cur.Load() == nil {
		s.fail(w, id, s.notReady())
		return
	}

	c := s.getCall()
	buf, n, herr := s.readBody(r, c.buf)
	c.buf = buf
	if herr != nil {
		s.putCall(c)
		s.fail(w, id, herr)
		return
	}
	if isJSON && !json.Valid(buf[frameHeader:frameHeader+n]) {
		herr := malformedJSON(buf[frameHeader : frameHeader+n])
		s.putCall(c)
		s.fail(w, id, herr)
		return
	}

	c.n = n
	c.arrival = arrival.UnixNano()
	p, herr := s.dispatch(r.Context(), c)
	if herr == nil && c.err != nil {
		herr = s.callFailed(p, id, c.err)
	}
	if herr != nil {
		s.putCall(c)
		s.fail(w, id, herr)
		return
	}
	if c.kind == kindUserError {
		se := decodeScriptError(c.out, "run")
		s.putCall(c)
		p.logScriptError(id, se)
		s.fail(w, id, &httpError{status: http.StatusInternalServerError, code: "RunFailed",
			msg:       fmt.Sprintf("%s (request id %s)", se.Error(), id),
			hint:      fmt.Sprintf("the traceback is in the service log: hangar service logs %s", s.name),
			excType:   se.Type,
			excDetail: se.Message,
		})
		return
	}
	w.Header()["Content-Type"] = contentTypeJSON
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(c.out)
	s.putCall(c)
	s.m.ok.Add(1)
}

// callFailed explains a call whose worker died or timed out.
func (s *Service) callFailed(p *pool, id string, err error) *httpError {
	if err == errTimeout {
		timeout := s.requestTimeout()
		p.event("request %s: run() did not return within %s; its worker was killed", id, timeout)
		return &httpError{status: http.StatusGatewayTimeout, code: "Timeout",
			msg: fmt.Sprintf("run() did not return within %s; the worker was killed and is restarting", timeout)}
	}
	p.event("request %s failed: %v", id, err)
	s.logger.Warn("worker failed a request", slog.String(keyRequest, id), slog.String(keyErr, err.Error()))
	s.m.died.Add(1)
	return &httpError{status: http.StatusServiceUnavailable, code: "WorkerDied", retry: true,
		msg: "the worker running this request exited; it is restarting, retry the request"}
}

// readBody reads the request body into buf[frameHeader:], growing it.
func (s *Service) readBody(r *http.Request, buf []byte) ([]byte, int, *httpError) {
	if cl := r.ContentLength; cl >= 0 {
		need := frameHeader + int(cl)
		if cap(buf) < need {
			buf = make([]byte, need)
		}
		buf = buf[:need]
		if _, err := io.ReadFull(r.Body, buf[frameHeader:]); err != nil {
			return buf, 0, &httpError{status: http.StatusBadRequest, code: "BadRequest", msg: "reading the body: " + err.Error()}
		}
		return buf, int(cl), nil
	}
	buf = buf[:cap(buf)]
	if len(buf) < frameHeader+512 {
		buf = make([]byte, frameHeader+4096)
	}
	n := 0
	for {
		if frameHeader+n == len(buf) {
			if int64(n) > s.maxBody {
				return buf, 0, s.tooLarge()
			}
			buf = append(buf, make([]byte, len(buf))...)
			buf = buf[:cap(buf)]
		}
		m, err := r.Body.Read(buf[frameHeader+n:])
		n += m
		if int64(n) > s.maxBody {
			return buf, 0, s.tooLarge()
		}
		if err == io.EOF {
			return buf, n, nil
		}
		if err != nil {
			return buf, 0, &httpError{status: http.StatusBadRequest, code: "BadRequest", msg: "reading the body: " + err.Error()}
		}
	}
}

func (s *Service) getCall() *call {
	if c, ok := s.calls.Get().(*call); ok {
		return c
	}
	return &call{buf: make([]byte, 0, 4096), out: make([]byte, 0, 4096), done: make(chan struct{}, 1)}
}

// putCall keeps c for reuse, unless its buffer grew large.
func (s *Service) putCall(c *call) {
	if cap(c.buf) > maxPooledBuffer {
		c.buf = make([]byte, 0, 4096)
	}
	if cap(c.out) > maxPooledBuffer {
		c.out = make([]byte, 0, 4096)
	}
	c.buf, c.out, c.n, c.arrival, c.started, c.kind, c.err, c.timedOut, c.sendTo = c.buf[:0], c.out[:0], 0, 0, 0, 0, nil, false, nil
	s.calls.Put(c)
}

// keySet is the auth setting; replaced whole by SetKeys.
type keySet struct {
	enabled            bool
	primary, secondary string
}

// authorize checks the bearer key in constant time (per key length).
func (s *Service) authorize(r *http.Request) *httpError {
	k := s.keys.Load()
	if !k.enabled {
		return nil
	}
	hint := "get a key with: hangar service keys " + s.name
	v := r.Header["Authorization"]
	if len(v) == 0 || v[0] == "" {
		return &httpError{status: http.StatusUnauthorized, code: "Unauthorized", hint: hint,
			msg: "this service requires a key: send Authorization: Bearer <key>; " + hint}
	}
	const scheme = "Bearer "
	tok := v[0]
	if len(tok) < len(scheme) || !strings.EqualFold(tok[:len(scheme)], scheme) {
		return &httpError{status: http.StatusUnauthorized, code: "Unauthorized", hint: hint,
			msg: "the Authorization header must be: Bearer <key>; " + hint}
	}
	tok = strings.TrimSpace(tok[len(scheme):])
	p, q := keyEqual(tok, k.primary), keyEqual(tok, k.secondary)
	if p|q == 0 {
		return &httpError{status: http.StatusUnauthorized, code: "Unauthorized", hint: hint,
			msg: "the key is not valid for this service; " + hint}
	}
	return nil
}

// keyEqual is 1 when got equals a non-empty want, in time that depends only
// on the lengths.
func keyEqual(got, want string) int {
	if want == "" || len(got) != len(want) {
		return 0
	}
	var v byte
	for i := 0; i < len(want); i++ {
		v |= got[i] ^ want[i]
	}
	return subtle.ConstantTimeByteEq(v, 0)
}

// classifyContentType accepts JSON (application/json, */*+json, or no
// Content-Type) and text/plain.
func classifyContentType(v []string) (isJSON, ok bool) {
	if len(v) == 0 {
		return true, true
	}
	ct := v[0]
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	switch {
	case ct == "", strings.EqualFold(ct, "application/json"):
		return true, true
	case strings.EqualFold(ct, "text/plain"):
		return false, true
	case len(ct) > len("+json") && strings.EqualFold(ct[len(ct)-len("+json"):], "+json") && strings.Contains(ct, "/"):
		return true, true
	}
	return false, false
}

func unsupportedType(ct string) *httpError {
	hint := "send Content-Type: application/json"
	if strings.HasPrefix(strings.ToLower(ct), "application/x-www-form-urlencoded") {
		hint = "curl -d sends application/x-www-form-urlencoded; add -H 'Content-Type: application/json'"
	}
	return &httpError{status: http.StatusUnsupportedMediaType, code: "UnsupportedMediaType", hint: hint,
		msg: fmt.Sprintf("Content-Type %q is not supported: send application/json (validated) or text/plain (passed as is)", ct)}
}

func (s *Service) tooLarge() *httpError {
	return &httpError{status: http.StatusRequestEntityTooLarge, code: "PayloadTooLarge",
		msg: fmt.Sprintf("the body is over the limit of %d bytes", s.maxBody)}
}

// readiness is nil when a pool serves and at least one of its workers is
// up (GET /ready answers 200), else the 503 to answer.
func (s *Service) readiness() *httpError {
	p := s.cur.Load()
	if p == nil {
		return s.notReady()
	}
	p.mu.Lock()
	up := p.up
	p.mu.Unlock()
	if up == 0 {
		return &httpError{status: http.StatusServiceUnavailable, code: "NoWorker", retry: true,
			msg: "no worker is running: they are restarting, or their restarts fail (see hangar service show " + s.name + ")"}
	}
	return nil
}

func (s *Service) notReady() *httpError {
	msg := "the service is starting: init() has not returned in every worker yet"
	st := s.Status()
	if st.State == Failed {
		msg = "the service failed to start; see hangar service show " + s.name
	}
	return &httpError{status: http.StatusServiceUnavailable, code: "NotReady", msg: msg, retry: true}
}

// JSONPosition locates a syntax error in body: the byte offset of the
// offending byte (len(body) when the input ends too early) and its 1-based
// line and column (in characters).
type JSONPosition struct {
	Offset       int
	Line, Column int
	Reason       string
}

// locateJSONError explains why body is not valid JSON.
func locateJSONError(body []byte) JSONPosition {
	var v struct{}
	err := json.Unmarshal(body, &v)
	var se *json.SyntaxError
	pos := JSONPosition{Offset: len(body), Reason: "invalid JSON"}
	if errors.As(err, &se) {
		pos.Reason = se.Error()
		pos.Offset = int(se.Offset) - 1
		if strings.HasPrefix(se.Error(), "unexpected end") {
			pos.Offset = len(body)
		}
	}
	pos.Offset = max(0, min(pos.Offset, len(body)))
	before := body[:pos.Offset]
	pos.Line = bytes.Count(before, []byte{'\n'}) + 1
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	pos.Column = utf8.RuneCount(before[lineStart:]) + 1
	return pos
}

func malformedJSON(body []byte) *httpError {
	pos := locateJSONError(body)
	return &httpError{status: http.StatusBadRequest, code: "MalformedJSON",
		msg:  fmt.Sprintf("the body is not valid JSON: %s at line %d, column %d (byte offset %d)", pos.Reason, pos.Line, pos.Column, pos.Offset),
		hint: "send a JSON document, or Content-Type: text/plain to pass the body to run() unchecked",
		pos:  &pos}
}

// httpError is an error answer.
type httpError struct {
	status    int
	code      string
	msg       string
	hint      string
	retry     bool          // 503: add Retry-After
	pos       *JSONPosition // MalformedJSON
	excType   string        // RunFailed
	excDetail string
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Hint      string `json:"hint,omitempty"`
	RequestID string `json:"request_id"`
	// MalformedJSON
	Offset *int `json:"offset,omitempty"`
	Line   int  `json:"line,omitempty"`
	Column int  `json:"column,omitempty"`
	// RunFailed
	ExceptionType    string `json:"exception_type,omitempty"`
	ExceptionMessage string `json:"exception_message,omitempty"`
}

// fail answers a /score request with an error and counts it.
func (s *Service) fail(w http.ResponseWriter, id string, e *httpError) {
	switch {
	case e.status < 500:
		s.m.clientErrors.Add(1)
	case e.status == http.StatusInternalServerError:
		s.m.runErrors.Add(1)
	case e.status == http.StatusGatewayTimeout:
		s.m.timeouts.Add(1)
	default:
		s.m.unavailable.Add(1)
	}
	if e.status == 499 {
		return // nobody to answer
	}
	s.writeError(w, id, e)
}

func (s *Service) writeError(w http.ResponseWriter, id string, e *httpError) {
	d := errorDetail{Code: e.code, Message: e.msg, Hint: e.hint, RequestID: id,
		ExceptionType: e.excType, ExceptionMessage: e.excDetail}
	if e.pos != nil {
		d.Offset, d.Line, d.Column = &e.pos.Offset, e.pos.Line, e.pos.Column
	}
	body, _ := json.Marshal(errorBody{Error: d})
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["Cache-Control"] = noStore
	if e.retry {
		h["Retry-After"] = retryAfterOne
	}
	if e.status == http.StatusUnauthorized {
		h["Www-Authenticate"] = bearerChallenge
	}
	w.WriteHeader(e.status)
	_, _ = w.Write(append(body, '\n'))
}

// requestID is the client's X-Request-Id when it is 1–128 printable ASCII
// characters, else a new random UUID.
func requestID(r *http.Request) string {
	if v := r.Header["X-Request-Id"]; len(v) > 0 && validRequestID(v[0]) {
		return v[0]
	}
	return newUUID()
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	const hex = "0123456789abcdef"
	var b [16]byte
	a, c := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		b[i] = byte(a >> (8 * i))
		b[8+i] = byte(c >> (8 * i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	j := 0
	for i, x := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j], out[j+1] = hex[x>>4], hex[x&0xf]
		j += 2
	}
	return string(out[:])
}

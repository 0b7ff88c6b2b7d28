// Package providertest is the conformance suite every node provider passes:
// create is idempotent per node id, Alive follows the node's life, and Delete
// and Preempt stop a node and tolerate one that is already gone.
//
// The suite is about the node's process lifecycle. It gives every node the
// URL of a stub server that speaks just enough of the agent protocol
// (heartbeats, empty long-polls) to keep a real `hangar agent` idle, so the
// same suite runs against the real agent and against a stand-in. The local
// provider's own test uses a stand-in (the real binary, cmd/hangar, is built
// elsewhere); the end-to-end tests exercise the real agent.
package providertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hangar-ml/hangar/internal/agentproto"
	"github.com/hangar-ml/hangar/internal/provider"
)

// Grace is the grace period the suite passes to Delete and Preempt.
const Grace = 5 * time.Second

// Run runs the suite. newProvider returns a fresh provider value for one
// subtest (it may register cleanups on t); all values it returns must share
// their backing state (a data directory, a Docker engine), like one server
// restarted, because the suite checks that a second provider value re-adopts
// a node the first one created. agentExecutable is the agent binary the
// provider starts; the suite fails at once if it does not exist, so a broken
// build step reads as what it is rather than as a provider bug. Pass "" for
// providers that start no local executable.
func Run(t *testing.T, newProvider func(t *testing.T) provider.Provider, agentExecutable string) {
	t.Helper()
	if agentExecutable != "" {
		if _, err := os.Stat(agentExecutable); err != nil {
			t.Fatalf("agent executable: %v", err)
		}
	}
	srv := newStubServer(t)

	t.Run("Name", func(t *testing.T) {
		t.Parallel()
		p := newProvider(t)
		if p.Name() == "" {
			t.Error("Name() is empty")
		}
	})

	t.Run("CreateIsIdempotent", func(t *testing.T) {
		t.Parallel()
		p := newProvider(t)
		spec := srv.spec(t)
		h1 := create(t, p, spec)
		h2 := create(t, p, spec)
		if h1 != h2 {
			t.Errorf("second Create returned %q, first %q: want the same node", h2, h1)
		}
		wantAlive(t, p, h1, true)
	})

	t.Run("ConcurrentCreateStartsOneNode", func(t *testing.T) {
		t.Parallel()
		p := newProvider(t)
		spec := srv.spec(t)
		const n = 4
		handles := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { handles[i], errs[i] = p.Create(t.Context(), spec) })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("Create #%d: %v", i, errs[i])
			}
			cleanupDelete(t, p, handles[i])
		}
		for i := 1; i < n; i++ {
			if handles[i] != handles[0] {
				t.Errorf("Create #%d returned %q, #0 %q: want one node", i, handles[i], handles[0])
			}
		}
	})

	t.Run("NodesAreIndependent", func(t *testing.T) {
		t.Parallel()
		p := newProvider(t)
		a := create(t, p, srv.spec(t))
		b := create(t, p, srv.spec(t))
		if a == b {
			t.Fatalf("two nodes share handle %q", a)
		}
		if err := p.Delete(t.Context(), a, Grace); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		wantAlive(t, p, a, false)
		wantAlive(t, p, b, true)
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		p := newProvider(t)
		h := create(t, p, srv.spec(t))
		if err := p.Delete(t.Context(), h, Grace); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		wantAlive(t, p, h, false)
		if err := p.Delete(t.Context(), h, Grace); err != nil {
			t.Errorf("Delete of a deleted node: %v, want nil", err)
		}
		if err := p.Preempt(t.Context(), h, Grace); err != nil {
			t.Errorf("Preempt of a deleted node: %v, want nil", err)
		}
	})

	t.Run("Preempt", func(t *testing.T) {
		t.Parallel()
		p := newProvider(t)
		spec := srv.spec(t)
		h := create(t, p, spec)
		if err := p.Preempt(t.Context(), h, Grace); err != nil {
			t.Fatalf("Preempt: %v", err)
		}
		wantAlive(t, p, h, false)
		if err := p.Preempt(t.Context(), h, Grace); err != nil {
			t.Errorf("Preempt of a preempted node: %v, want nil", err)
		}
		// The node id can be created again after an eviction.
		h2 := create(t, p, spec)
		wantAlive(t, p, h2, true)
		if err := p.Delete(t.Context(), h, Grace); err != nil {
			t.Errorf("Delete of the preempted node's handle: %v, want nil", err)
		}
	})

	t.Run("DeleteAfterProviderRestart", func(t *testing.T) {
		t.Parallel()
		// A restarted server builds a new provider and re-adopts nodes from
		// their persisted handles.
		spec := srv.spec(t)
		h := create(t, newProvider(t), spec)
		p2 := newProvider(t)
		wantAlive(t, p2, h, true)
		if h2 := create(t, p2, spec); h2 != h {
			t.Errorf("Create after restart returned %q, want the running node %q", h2, h)
		}
		if err := p2.Delete(t.Context(), h, Grace); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		wantAlive(t, p2, h, false)
	})
}

func create(t *testing.T, p provider.Provider, spec provider.Spec) string {
	t.Helper()
	h, err := p.Create(t.Context(), spec)
	if err != nil {
		t.Fatalf("Create(%s): %v", spec.NodeID, err)
	}
	cleanupDelete(t, p, h)
	return h
}

func cleanupDelete(t *testing.T, p provider.Provider, h string) {
	t.Cleanup(func() {
		if err := p.Delete(context.Background(), h, Grace); err != nil {
			t.Errorf("cleanup Delete: %v", err)
		}
	})
}

func wantAlive(t *testing.T, p provider.Provider, h string, want bool) {
	t.Helper()
	got, err := p.Alive(t.Context(), h)
	if err != nil {
		t.Fatalf("Alive: %v", err)
	}
	if got != want {
		t.Errorf("Alive = %v, want %v", got, want)
	}
}

// stubServer answers the agent protocol's heartbeat and work routes so a
// real agent stays up and idle; everything else is 404.
type stubServer struct {
	url string
}

func newStubServer(t *testing.T) *stubServer {
	done := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+agentproto.Prefix+"/heartbeat", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"interval_ms":1000}`))
	})
	mux.HandleFunc("GET "+agentproto.Prefix+"/work", func(w http.ResponseWriter, r *http.Request) {
		wait, _ := strconv.Atoi(r.URL.Query().Get("wait"))
		timer := time.NewTimer(time.Duration(wait) * time.Second)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
		case <-done:
		}
		w.WriteHeader(http.StatusNoContent)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		close(done)
		srv.Close()
	})
	return &stubServer{url: srv.URL}
}

func (s *stubServer) spec(t *testing.T) provider.Spec {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return provider.Spec{
		NodeID:    "pt-" + hex.EncodeToString(b),
		Workspace: "default",
		Compute:   "conformance",
		ServerURL: s.url,
		Token:     "hangar_node_secret_for_tests",
		Slots:     1,
		VCPUs:     1,
		MemoryGB:  1,
	}
}

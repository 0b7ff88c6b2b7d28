package storetest_test

import (
	"math"
	"testing"
	"time"

	"github.com/hangar-ml/hangar/internal/compute"
	"github.com/hangar-ml/hangar/internal/node"
	"github.com/hangar-ml/hangar/internal/store"
	"github.com/hangar-ml/hangar/internal/store/storetest"
)

// newCompute returns a compute with every field set.
func newCompute(ws, id, name string) compute.Compute {
	return compute.Compute{
		ID:                         id,
		Workspace:                  ws,
		Name:                       name,
		Kind:                       compute.KindCluster,
		Description:                "training cluster",
		Tags:                       map[string]string{"team": "vision", "cost-center": "42"},
		VMSize:                     "STANDARD_D2_V2",
		VMPriority:                 compute.LowPriority,
		MinNodes:                   1,
		MaxNodes:                   4,
		IdleSecondsBeforeScaledown: 120,
		Provider:                   "local",
		Python:                     "/usr/bin/python3",
		ProvisioningState:          compute.StateSucceeded,
		ProvisioningErrors:         []compute.ProvisioningError{{Code: "QuotaExceeded", Message: "no cores left"}},
		CreatedBy:                  "alice",
		CreatedAt:                  t0,
		ModifiedAt:                 at(time.Minute),
		NodeSeq:                    7,
	}
}

func TestCompute(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		get := mustGet[compute.Compute](t)
		list := mustGet[[]compute.Compute](t)

		cpu := newCompute("ws", "c-1", "CPU-Cluster")
		must(t, s.ComputeCreate(ctx, cpu))
		for _, name := range []string{"CPU-Cluster", "cpu-cluster", "CPU-CLUSTER"} {
			wantDiff(t, "ComputeGet "+name, cpu, get(s.ComputeGet(ctx, "ws", name)))
		}
		wantDiff(t, "ComputeGetByID", cpu, get(s.ComputeGetByID(ctx, "c-1")))

		// Names are unique per workspace, ignoring case; ids are unique.
		wantErr(t, s.ComputeCreate(ctx, newCompute("ws", "c-2", "cpu-CLUSTER")), store.ErrConflict)
		wantErr(t, s.ComputeCreate(ctx, newCompute("other", "c-1", "x")), store.ErrConflict)
		other := newCompute("other", "c-3", "cpu-cluster")
		must(t, s.ComputeCreate(ctx, other))

		// nil and empty collections come back as they went in.
		bare := compute.Compute{ID: "c-4", Workspace: "ws", Name: "bare", Kind: compute.KindLocal}
		must(t, s.ComputeCreate(ctx, bare))
		wantDiff(t, "bare compute", bare, get(s.ComputeGetByID(ctx, "c-4")))
		empty := newCompute("ws", "c-5", "a-empty")
		empty.Tags, empty.ProvisioningErrors = map[string]string{}, []compute.ProvisioningError{}
		must(t, s.ComputeCreate(ctx, empty))
		wantDiff(t, "empty collections", empty, get(s.ComputeGetByID(ctx, "c-5")))

		wantDiff(t, "ComputeList", []compute.Compute{empty, bare, cpu}, list(s.ComputeList(ctx, "ws")))
		wantDiff(t, "ComputeListAll", []compute.Compute{other, empty, bare, cpu}, list(s.ComputeListAll(ctx)))

		_, err := s.ComputeGet(ctx, "ws", "gpu")
		wantErr(t, err, compute.ErrNotFound)
		_, err = s.ComputeGet(ctx, "nope", "cpu-cluster")
		wantErr(t, err, compute.ErrNotFound)
		_, err = s.ComputeGetByID(ctx, "c-9")
		wantErr(t, err, compute.ErrNotFound)
	})
}

func TestComputeUpdate(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		c := newCompute("ws", "c-1", "cpu")
		must(t, s.ComputeCreate(ctx, c))

		u := compute.Compute{
			ID: "c-1",
			// Immutable: ignored by ComputeUpdate.
			Workspace: "elsewhere", Name: "renamed", Kind: compute.KindLocal, CreatedBy: "mallory",
			CreatedAt: at(time.Hour), NodeSeq: 1000,
			// Mutable.
			Description: "", Tags: map[string]string{"team": "nlp"}, VMSize: "STANDARD_D4_V2",
			VMPriority: compute.Dedicated, MinNodes: 0, MaxNodes: 8, IdleSecondsBeforeScaledown: 0,
			Provider: "docker", Python: "", ProvisioningState: compute.StateUpdating, ProvisioningErrors: nil,
			ModifiedAt: at(2 * time.Hour),
		}
		must(t, s.ComputeUpdate(ctx, u))

		want := u
		want.Workspace, want.Name, want.Kind, want.CreatedBy, want.CreatedAt, want.NodeSeq =
			c.Workspace, c.Name, c.Kind, c.CreatedBy, c.CreatedAt, c.NodeSeq
		wantDiff(t, "updated compute", want, mustGet[compute.Compute](t)(s.ComputeGet(ctx, "ws", "CPU")))
		wantErr(t, s.ComputeUpdate(ctx, newCompute("ws", "c-9", "x")), compute.ErrNotFound)
	})
}

func TestComputeNextNodeSeq(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		c := newCompute("ws", "c-1", "cpu")
		c.NodeSeq = 0
		must(t, s.ComputeCreate(ctx, c))
		for want := int64(1); want <= 3; want++ {
			if got := mustGet[int64](t)(s.ComputeNextNodeSeq(ctx, "c-1")); got != want {
				t.Fatalf("ComputeNextNodeSeq = %d, want %d", got, want)
			}
		}
		if got := mustGet[compute.Compute](t)(s.ComputeGetByID(ctx, "c-1")).NodeSeq; got != 3 {
			t.Errorf("NodeSeq = %d, want 3", got)
		}
		_, err := s.ComputeNextNodeSeq(ctx, "c-9")
		wantErr(t, err, compute.ErrNotFound)
	})
}

func TestComputeDelete(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, s.ComputeCreate(ctx, newCompute("ws", "c-1", "cpu")))
		must(t, s.ComputeCreate(ctx, newCompute("ws", "c-2", "gpu")))
		must(t, s.ComputeDelete(ctx, "c-1"))

		_, err := s.ComputeGetByID(ctx, "c-1")
		wantErr(t, err, compute.ErrNotFound)
		_, err = s.ComputeGet(ctx, "ws", "cpu")
		wantErr(t, err, compute.ErrNotFound)
		wantErr(t, s.ComputeDelete(ctx, "c-1"), compute.ErrNotFound)
		if got := mustGet[[]compute.Compute](t)(s.ComputeList(ctx, "ws")); len(got) != 1 || got[0].ID != "c-2" {
			t.Errorf("ComputeList after delete = %v, want only c-2", got)
		}
		// The name is free again.
		must(t, s.ComputeCreate(ctx, newCompute("ws", "c-3", "CPU")))
	})
}

// newNode returns a live node with every field set but IdleSince, ReadyAt
// and EndedAt.
func newNode(id, computeID string, created time.Time) node.Node {
	return node.Node{
		ID:             id,
		Workspace:      "ws",
		ComputeID:      computeID,
		State:          node.Preparing,
		Reason:         "scale-up: 2 runs waiting",
		Provider:       "local",
		Priority:       "dedicated",
		VMSize:         "STANDARD_D2_V2",
		Slots:          1,
		Handle:         `{"pid":42}`,
		TokenHash:      "hash-" + id,
		CreatedAt:      created,
		StateChangedAt: created,
		LastHeartbeat:  created.Add(time.Second),
	}
}

func TestNode(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		get := mustGet[node.Node](t)
		list := mustGet[[]node.Node](t)

		full := newNode("cpu-n1", "c-1", t0)
		full.State, full.IdleSince, full.ReadyAt = node.Idle, at(time.Minute), at(30*time.Second)
		n2 := newNode("cpu-n2", "c-1", at(time.Hour))
		n3 := newNode("gpu-n1", "c-2", at(time.Minute))
		for _, n := range []node.Node{n2, full, n3} {
			must(t, s.NodeCreate(ctx, n))
		}
		wantDiff(t, "NodeGet", full, get(s.NodeGet(ctx, "cpu-n1")))
		wantErr(t, s.NodeCreate(ctx, newNode("cpu-n1", "c-9", t0)), store.ErrConflict)

		wantDiff(t, "NodeListByCompute", []node.Node{full, n2}, list(s.NodeListByCompute(ctx, "c-1")))
		wantDiff(t, "NodeListAll", []node.Node{full, n3, n2}, list(s.NodeListAll(ctx)))

		must(t, s.NodeSetHandle(ctx, "cpu-n2", `{"pid":43}`))
		n2.Handle = `{"pid":43}`

		// The first heartbeat also marks the node ready.
		must(t, s.NodeHeartbeat(ctx, "cpu-n2", at(2*time.Hour)))
		must(t, s.NodeHeartbeat(ctx, "cpu-n2", at(3*time.Hour)))
		n2.ReadyAt, n2.LastHeartbeat = at(2*time.Hour), at(3*time.Hour)
		wantDiff(t, "after heartbeats", n2, get(s.NodeGet(ctx, "cpu-n2")))

		// An ended node leaves the lists but stays readable; ending it again
		// keeps the first time.
		must(t, s.NodeEnd(ctx, "cpu-n1", at(4*time.Hour)))
		must(t, s.NodeEnd(ctx, "cpu-n1", at(5*time.Hour)))
		full.EndedAt = at(4 * time.Hour)
		wantDiff(t, "ended node", full, get(s.NodeGet(ctx, "cpu-n1")))
		wantDiff(t, "NodeListByCompute after end", []node.Node{n2}, list(s.NodeListByCompute(ctx, "c-1")))
		wantDiff(t, "NodeListAll after end", []node.Node{n3, n2}, list(s.NodeListAll(ctx)))
		if got := list(s.NodeListByCompute(ctx, "c-9")); len(got) != 0 {
			t.Errorf("NodeListByCompute of unknown compute = %v", got)
		}

		_, err := s.NodeGet(ctx, "nope")
		wantErr(t, err, node.ErrNotFound)
		wantErr(t, s.NodeSetHandle(ctx, "nope", "h"), node.ErrNotFound)
		wantErr(t, s.NodeHeartbeat(ctx, "nope", t0), node.ErrNotFound)
		wantErr(t, s.NodeEnd(ctx, "nope", t0), node.ErrNotFound)
	})
}

func TestNodeSetStateIf(t *testing.T) {
	t.Parallel()
	// Steps apply in order to one node created preparing at t0.
	steps := []struct {
		name       string
		from       []node.State
		to         node.State
		now        time.Time
		wantOK     bool
		wantState  node.State
		wantReason string
		wantIdle   time.Time
		wantChange time.Time
	}{
		{"ready", []node.State{node.Preparing}, node.Idle, at(1 * time.Minute), true, node.Idle, "ready", at(time.Minute), at(time.Minute)},
		{"lost race", []node.State{node.Preparing}, node.Running, at(2 * time.Minute), false, node.Idle, "ready", at(time.Minute), at(time.Minute)},
		{"idle again keeps times", []node.State{node.Idle}, node.Idle, at(3 * time.Minute), true, node.Idle, "idle again keeps times", at(time.Minute), at(time.Minute)},
		{"assigned", []node.State{node.Idle, node.Running}, node.Running, at(4 * time.Minute), true, node.Running, "assigned", time.Time{}, at(4 * time.Minute)},
		{"done", []node.State{node.Running}, node.Idle, at(5 * time.Minute), true, node.Idle, "done", at(5 * time.Minute), at(5 * time.Minute)},
		{"scale down", []node.State{node.Idle}, node.Leaving, at(6 * time.Minute), true, node.Leaving, "scale down", time.Time{}, at(6 * time.Minute)},
		{"too late", []node.State{node.Idle, node.Running}, node.Running, at(7 * time.Minute), false, node.Leaving, "scale down", time.Time{}, at(6 * time.Minute)},
	}
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		n := newNode("n1", "c-1", t0)
		must(t, s.NodeCreate(ctx, n))
		for _, st := range steps {
			ok, err := s.NodeSetStateIf(ctx, store.NodeSetStateIfParams{ID: "n1", From: st.from, To: st.to, Reason: st.name, Now: st.now})
			wantCAS(t, st.name, st.wantOK, ok, err)
			want := n
			want.State, want.Reason, want.IdleSince, want.StateChangedAt = st.wantState, st.wantReason, st.wantIdle, st.wantChange
			wantDiff(t, st.name, want, mustGet[node.Node](t)(s.NodeGet(ctx, "n1")))
		}

		_, err := s.NodeSetStateIf(ctx, store.NodeSetStateIfParams{ID: "nope", From: []node.State{node.Idle}, To: node.Running, Now: t0})
		wantErr(t, err, node.ErrNotFound)
		if _, err := s.NodeSetStateIf(ctx, store.NodeSetStateIfParams{ID: "n1", To: node.Running, Now: t0}); err == nil {
			t.Error("NodeSetStateIf with no From states: no error")
		}
	})
}

func TestNodeHoursByCompute(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for _, n := range []struct {
			id, compute    string
			created, ended time.Duration
		}{
			{"a", "c-1", 0, 2 * time.Hour},                   // 2 h, ended
			{"b", "c-1", time.Hour, -1},                      // 2 h, live until now
			{"c", "c-1", 0, 30 * time.Minute},                // 0.5 h
			{"d", "c-2", 0, -1},                              // another compute
			{"e", "c-1", 150 * time.Minute, -1},              // 0.5 h, live
			{"f", "c-1", 10 * time.Minute, time.Minute * 70}, // 1 h
		} {
			nd := newNode(n.id, n.compute, at(n.created))
			must(t, s.NodeCreate(ctx, nd))
			if n.ended >= 0 {
				must(t, s.NodeEnd(ctx, n.id, at(n.ended)))
			}
		}
		now := at(3 * time.Hour)
		for _, tt := range []struct {
			compute string
			want    float64
		}{{"c-1", 6}, {"c-2", 3}, {"c-9", 0}} {
			got := mustGet[float64](t)(s.NodeHoursByCompute(ctx, tt.compute, now))
			if math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("NodeHoursByCompute(%s) = %v, want %v", tt.compute, got, tt.want)
			}
		}
	})
}

package storetest_test

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hangar-ml/hangar/internal/compute"
	"github.com/hangar-ml/hangar/internal/run"
	"github.com/hangar-ml/hangar/internal/store"
	"github.com/hangar-ml/hangar/internal/store/storetest"
)

func TestWorkspace(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		beta := store.Workspace{Name: "beta", CreatedAt: t0}
		alpha := store.Workspace{Name: "alpha", CreatedAt: at(time.Second)}
		must(t, s.WorkspaceCreate(ctx, beta))
		must(t, s.WorkspaceCreate(ctx, alpha))

		wantDiff(t, "WorkspaceGet", beta, mustGet[store.Workspace](t)(s.WorkspaceGet(ctx, "beta")))
		wantDiff(t, "WorkspaceList", []store.Workspace{alpha, beta}, mustGet[[]store.Workspace](t)(s.WorkspaceList(ctx)))

		wantErr(t, s.WorkspaceCreate(ctx, store.Workspace{Name: "beta", CreatedAt: t0}), store.ErrConflict)
		_, err := s.WorkspaceGet(ctx, "gamma")
		wantErr(t, err, store.ErrNotFound)
	})
}

// TestTimes checks the time contract on one record: UTC, microseconds, and
// the zero time.Time as zero.
func TestTimes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		in, want  time.Time
		wantIsUTC bool
	}{
		{name: "zero", in: time.Time{}, want: time.Time{}},
		{name: "micros", in: t0, want: t0, wantIsUTC: true},
		{name: "nanos truncated", in: t0.Add(789 * time.Nanosecond), want: t0, wantIsUTC: true},
		{name: "other zone", in: t0.In(time.FixedZone("X", -7*3600)), want: t0, wantIsUTC: true},
		{name: "epoch", in: time.Unix(0, 0), want: time.Unix(0, 0), wantIsUTC: true},
		{name: "before epoch", in: time.Date(1969, 7, 20, 20, 17, 40, 5000, time.UTC), want: time.Date(1969, 7, 20, 20, 17, 40, 5000, time.UTC), wantIsUTC: true},
		{name: "far future", in: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), want: time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC), wantIsUTC: true},
	}
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				must(t, s.WorkspaceCreate(ctx, store.Workspace{Name: tt.name, CreatedAt: tt.in}))
				got := mustGet[store.Workspace](t)(s.WorkspaceGet(ctx, tt.name)).CreatedAt
				if !got.Equal(tt.want) || got.IsZero() != tt.want.IsZero() {
					t.Errorf("CreatedAt = %v, want %v", got, tt.want)
				}
				if tt.wantIsUTC && got.Location() != time.UTC {
					t.Errorf("CreatedAt location = %v, want UTC", got.Location())
				}
			})
		}
	})
}

func TestToken(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		admin := store.Token{ID: "tok-1", Hash: "h1", Name: "admin", Scope: "admin", CreatedAt: t0}
		agent := store.Token{ID: "tok-2", Hash: "h2", Name: "agent", Workspace: "ws", Scope: "node:n1",
			CreatedAt: at(time.Minute), ExpiresAt: at(time.Hour)}
		must(t, s.TokenCreate(ctx, admin))
		must(t, s.TokenCreate(ctx, agent))

		wantDiff(t, "admin", admin, mustGet[store.Token](t)(s.TokenGetByHash(ctx, "h1")))
		wantDiff(t, "agent", agent, mustGet[store.Token](t)(s.TokenGetByHash(ctx, "h2")))

		wantErr(t, s.TokenCreate(ctx, store.Token{ID: "tok-1", Hash: "other"}), store.ErrConflict)
		wantErr(t, s.TokenCreate(ctx, store.Token{ID: "tok-3", Hash: "h1"}), store.ErrConflict)
		_, err := s.TokenGetByHash(ctx, "nope")
		wantErr(t, err, store.ErrNotFound)

		must(t, s.TokenRevoke(ctx, "tok-2", at(2*time.Hour)))
		must(t, s.TokenRevoke(ctx, "tok-2", at(3*time.Hour))) // keeps the first time
		agent.RevokedAt = at(2 * time.Hour)
		wantDiff(t, "revoked agent", agent, mustGet[store.Token](t)(s.TokenGetByHash(ctx, "h2")))
		wantDiff(t, "admin after revoking agent", admin, mustGet[store.Token](t)(s.TokenGetByHash(ctx, "h1")))
		wantErr(t, s.TokenRevoke(ctx, "tok-9", t0), store.ErrNotFound)
	})
}

func TestQuota(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		if got := mustGet[[]store.Quota](t)(s.QuotaList(ctx, "ws")); len(got) != 0 {
			t.Fatalf("QuotaList of a new store = %v, want none", got)
		}
		must(t, s.QuotaSet(ctx, store.Quota{Workspace: "ws", Family: "standardDv2Family", Priority: compute.LowPriority, VCPUs: 4}))
		must(t, s.QuotaSet(ctx, store.Quota{Workspace: "ws", Family: "standardDv2Family", Priority: compute.Dedicated, VCPUs: 10}))
		must(t, s.QuotaSet(ctx, store.Quota{Workspace: "ws", Family: "standardDv2Family", Priority: compute.Dedicated, VCPUs: 20}))
		must(t, s.QuotaSet(ctx, store.Quota{Workspace: "ws", Family: "standardNCFamily", Priority: compute.Dedicated, VCPUs: 0}))
		must(t, s.QuotaSet(ctx, store.Quota{Workspace: "other", Family: "standardDv2Family", Priority: compute.Dedicated, VCPUs: 1}))

		want := []store.Quota{
			{Workspace: "ws", Family: "standardDv2Family", Priority: compute.Dedicated, VCPUs: 20},
			{Workspace: "ws", Family: "standardDv2Family", Priority: compute.LowPriority, VCPUs: 4},
			{Workspace: "ws", Family: "standardNCFamily", Priority: compute.Dedicated, VCPUs: 0},
		}
		wantDiff(t, "QuotaList", want, mustGet[[]store.Quota](t)(s.QuotaList(ctx, "ws")))
	})
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		create := func(ws, name, spec string, wantVersion int) store.Environment {
			t.Helper()
			in := store.Environment{Workspace: ws, Name: name, Version: 99, Spec: []byte(spec), CreatedAt: at(time.Duration(wantVersion) * time.Minute)}
			got := mustGet[store.Environment](t)(s.EnvironmentCreate(ctx, in))
			in.Version = wantVersion
			wantDiff(t, "EnvironmentCreate", in, got)
			return got
		}
		torch1 := create("ws", "torch", `{"python":"3.11"}`, 1)
		torch2 := create("ws", "torch", `{"python":"3.12"}`, 2)
		sk1 := create("ws", "sklearn", `{}`, 1)
		create("other", "torch", `{}`, 1)

		wantDiff(t, "get torch:1", torch1, mustGet[store.Environment](t)(s.EnvironmentGet(ctx, "ws", "torch", 1)))
		wantDiff(t, "get torch:2", torch2, mustGet[store.Environment](t)(s.EnvironmentGet(ctx, "ws", "torch", 2)))
		wantDiff(t, "get torch latest", torch2, mustGet[store.Environment](t)(s.EnvironmentGet(ctx, "ws", "torch", 0)))
		for _, v := range []int{3, -1} {
			name := "torch"
			if v < 0 {
				name = "nope"
			}
			_, err := s.EnvironmentGet(ctx, "ws", name, max(v, 0))
			wantErr(t, err, store.ErrNotFound)
		}
		wantDiff(t, "EnvironmentList", []store.Environment{sk1, torch1, torch2}, mustGet[[]store.Environment](t)(s.EnvironmentList(ctx, "ws")))
	})
}

func TestEnvironmentCreateConcurrent(t *testing.T) {
	t.Parallel()
	const creators = 8
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		wantDistinctVersions(t, creators, func() (int, error) {
			e, err := s.EnvironmentCreate(ctx, store.Environment{Workspace: "ws", Name: "torch", Spec: []byte("{}"), CreatedAt: t0})
			return e.Version, err
		})
	})
}

func TestEvent(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		ev := func(ws, compute string, d time.Duration, typ string) store.Event {
			return store.Event{Workspace: ws, Kind: "compute", Object: compute, Compute: compute, Type: typ,
				Message: typ + " of " + compute, Time: at(d)}
		}
		e1 := ev("a", "CPU", 0, "ScaleUp")
		e2 := ev("a", "gpu", time.Minute, "ScaleUp")
		e3 := store.Event{Workspace: "a", Kind: "run", Object: "run-1", Type: "Queued", Message: "waiting", Time: at(2 * time.Minute)}
		e4 := ev("a", "cpu", 2*time.Minute, "ScaleDown") // same time as e3, added later
		e5 := ev("b", "cpu", 0, "ScaleUp")
		for _, e := range []store.Event{e1, e2, e3, e4, e5} {
			must(t, s.EventAdd(ctx, e))
		}

		ignoreID := cmpopts.IgnoreFields(store.Event{}, "ID")
		tests := []struct {
			name, ws, compute string
			limit             int
			want              []store.Event
		}{
			{name: "all", ws: "a", want: []store.Event{e4, e3, e2, e1}},
			{name: "compute ignoring case", ws: "a", compute: "Cpu", want: []store.Event{e4, e1}},
			{name: "limit", ws: "a", limit: 2, want: []store.Event{e4, e3}},
			{name: "compute and limit", ws: "a", compute: "CPU", limit: 1, want: []store.Event{e4}},
			{name: "other workspace", ws: "b", want: []store.Event{e5}},
			{name: "none", ws: "c", want: nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := mustGet[[]store.Event](t)(s.EventList(ctx, tt.ws, tt.compute, tt.limit))
				wantDiff(t, "EventList", tt.want, got, ignoreID, cmpopts.EquateEmpty())
			})
		}

		all := mustGet[[]store.Event](t)(s.EventList(ctx, "a", "", 0))
		seen := map[int64]bool{}
		for _, e := range all {
			if e.ID == 0 || seen[e.ID] {
				t.Errorf("event IDs must be assigned and distinct, got %d in %v", e.ID, all)
			}
			seen[e.ID] = true
		}

		// Free text from processes is stored the same on both engines.
		must(t, s.EventAdd(ctx, store.Event{Workspace: "bin", Message: "a\x00b\xffc", Time: t0}))
		got := mustGet[[]store.Event](t)(s.EventList(ctx, "bin", "", 0))
		if len(got) != 1 || got[0].Message != "a\uFFFDb\uFFFDc" {
			t.Errorf("message with NUL and invalid UTF-8: got %+v, want message %q", got, "a\uFFFDb\uFFFDc")
		}
	})
}

func TestMetric(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		must(t, s.RunCreate(ctx, newRun("ws", "run-1", at(0))))
		must(t, s.RunCreate(ctx, newRun("ws", "run-2", at(0))))
		ms := []store.Metric{
			{RunID: "run-1", Name: "loss", Value: 0.25, Step: 1, Time: at(time.Second)},
			{RunID: "run-1", Name: "loss", Value: math.NaN(), Step: 2, Time: at(2 * time.Second)},
			{RunID: "run-1", Name: "acc", Value: math.Inf(1), Step: 2, Time: at(2 * time.Second)},
			{RunID: "run-1", Name: "delta", Value: math.Inf(-1), Step: -1},
			{RunID: "run-1", Name: "note", Text: "converged", Time: at(3 * time.Second)},
			{RunID: "run-1", Name: "loss", Value: -1e-300, Step: 1 << 40, Time: at(4 * time.Second)},
		}
		for _, m := range ms {
			must(t, s.MetricAdd(ctx, m))
		}
		must(t, s.MetricAdd(ctx, store.Metric{RunID: "run-2", Name: "loss", Value: 1}))

		wantDiff(t, "MetricList", ms, mustGet[[]store.Metric](t)(s.MetricList(ctx, "run-1")), cmpopts.EquateNaNs())
		if got := mustGet[[]store.Metric](t)(s.MetricList(ctx, "run-9")); len(got) != 0 {
			t.Errorf("MetricList of an unknown run = %v, want none", got)
		}
		wantErr(t, s.MetricAdd(ctx, store.Metric{RunID: "run-9", Name: "loss"}), run.ErrNotFound)
	})
}

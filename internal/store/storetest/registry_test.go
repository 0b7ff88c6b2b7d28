package storetest_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hangar-ml/hangar/internal/model"
	"github.com/hangar-ml/hangar/internal/service"
	"github.com/hangar-ml/hangar/internal/store"
	"github.com/hangar-ml/hangar/internal/store/storetest"
)

func newModel(ws, name string, created time.Time) model.Model {
	return model.Model{
		Workspace:   ws,
		Name:        name,
		Version:     99, // ignored by ModelCreate
		Description: "digits classifier",
		Tags:        map[string]string{"team": "ml"},
		Properties:  map[string]string{"accuracy": "0.97"},
		RunID:       "run-1",
		Path:        "outputs/model.pkl",
		Digest:      "sha256:abc",
		Size:        1234,
		CreatedBy:   "alice",
		CreatedAt:   created,
	}
}

func TestModel(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		get := mustGet[model.Model](t)
		create := func(m model.Model, wantVersion int) model.Model {
			t.Helper()
			got := get(s.ModelCreate(ctx, m))
			m.Version = wantVersion
			wantDiff(t, "ModelCreate", m, got)
			return got
		}
		d1 := create(newModel("ws", "digits", at(time.Minute)), 1)
		d2 := create(newModel("ws", "digits", at(2*time.Minute)), 2)
		bare := create(model.Model{Workspace: "ws", Name: "bare", CreatedAt: at(3 * time.Minute)}, 1)
		empty := newModel("ws", "empty", at(4*time.Minute))
		empty.Tags, empty.Properties, empty.Description = map[string]string{}, map[string]string{}, "nul\x00byte"
		e1 := get(s.ModelCreate(ctx, empty))
		create(newModel("other", "digits", at(time.Minute)), 1)

		wantDiff(t, "get digits:1", d1, get(s.ModelGet(ctx, "ws", "digits", 1)))
		wantDiff(t, "get digits latest", d2, get(s.ModelGet(ctx, "ws", "digits", 0)))
		wantDiff(t, "get bare (nil maps)", bare, get(s.ModelGet(ctx, "ws", "bare", 0)))
		gotEmpty := get(s.ModelGet(ctx, "ws", "empty", 1))
		if gotEmpty.Description != "nul\uFFFDbyte" || gotEmpty.Tags == nil || len(gotEmpty.Tags) != 0 {
			t.Errorf("empty model = %+v, want the NUL replaced and empty (not nil) tags", gotEmpty)
		}
		e1.Description = gotEmpty.Description
		wantDiff(t, "get empty", e1, gotEmpty)
		for _, tc := range []struct {
			ws, name string
			version  int
		}{{"ws", "digits", 3}, {"ws", "nope", 0}, {"nope", "digits", 1}} {
			_, err := s.ModelGet(ctx, tc.ws, tc.name, tc.version)
			wantErr(t, err, model.ErrNotFound)
		}

		wantDiff(t, "ModelList ws", []model.Model{e1, bare, d2, d1}, mustGet[[]model.Model](t)(s.ModelList(ctx, "ws", "")))
		wantDiff(t, "ModelList digits", []model.Model{d2, d1}, mustGet[[]model.Model](t)(s.ModelList(ctx, "ws", "digits")))
		if got := mustGet[[]model.Model](t)(s.ModelList(ctx, "ws", "nope")); len(got) != 0 {
			t.Errorf("ModelList of an unknown name = %+v", got)
		}

		must(t, s.ModelDelete(ctx, "ws", "digits", 2))
		wantErr(t, s.ModelDelete(ctx, "ws", "digits", 2), model.ErrNotFound)
		wantErr(t, s.ModelDelete(ctx, "ws", "digits", 7), model.ErrNotFound)
		wantDiff(t, "latest after delete", d1, get(s.ModelGet(ctx, "ws", "digits", 0)))
		// A deleted version's number is never reused (as in Azure ML).
		d3 := create(newModel("ws", "digits", at(5*time.Minute)), 3)
		_, err := s.ModelGet(ctx, "ws", "digits", 2)
		wantErr(t, err, model.ErrNotFound)
		wantDiff(t, "latest after re-create", d3, get(s.ModelGet(ctx, "ws", "digits", 0)))
		// Other workspaces are untouched.
		get(s.ModelGet(ctx, "other", "digits", 1))
	})
}

func TestModelCreateConcurrent(t *testing.T) {
	t.Parallel()
	const creators = 8
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		wantDistinctVersions(t, creators, func() (int, error) {
			m, err := s.ModelCreate(ctx, newModel("ws", "digits", t0))
			return m.Version, err
		})
	})
}

// newService returns a service with every field set.
func newService(ws, name string, port int) service.Service {
	return service.Service{
		Workspace:            ws,
		Name:                 name,
		Target:               "local",
		Models:               []service.ModelRef{{Name: "digits", Version: 2}, {Name: "scaler", Version: 1}},
		EntryScript:          "score.py",
		SourceDigest:         "sha256:src",
		Python:               "/usr/bin/python3",
		Environment:          "sklearn:1",
		EnvVars:              map[string]string{"OMP_NUM_THREADS": "2", "MODE": "fast"},
		EnvironmentVariables: map[string]string{"OMP_NUM_THREADS": "1"},
		Requirements:         []string{"scikit-learn"},
		Port:                 port,
		Workers:              2,
		AuthEnabled:          true,
		PrimaryKey:           "hsk_primary",
		SecondaryKey:         "hsk_secondary",
		RequestTimeout:       90 * time.Second,
		Generation:           1,
		State:                service.Transitioning,
		CreatedBy:            "alice",
		CreatedAt:            t0,
		UpdatedAt:            t0,
	}
}

func TestService(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		get := mustGet[service.Service](t)
		list := mustGet[[]service.Service](t)

		full := newService("ws", "digits", 40001)
		must(t, s.ServiceCreate(ctx, full))
		wantDiff(t, "ServiceGet", full, get(s.ServiceGet(ctx, "ws", "digits")))

		bare := service.Service{Workspace: "ws", Name: "bare"}
		must(t, s.ServiceCreate(ctx, bare))
		wantDiff(t, "bare service", bare, get(s.ServiceGet(ctx, "ws", "bare")))
		other := newService("other", "digits", 40002)
		must(t, s.ServiceCreate(ctx, other))

		// The name is unique in a workspace; a port among all services.
		wantErr(t, s.ServiceCreate(ctx, newService("ws", "digits", 40003)), store.ErrConflict)
		wantErr(t, s.ServiceCreate(ctx, newService("ws", "taken-port", 40002)), store.ErrConflict)
		must(t, s.ServiceCreate(ctx, service.Service{Workspace: "other", Name: "no-port"}))
		_, err := s.ServiceGet(ctx, "ws", "nope")
		wantErr(t, err, service.ErrNotFound)
		_, err = s.ServiceGet(ctx, "nope", "digits")
		wantErr(t, err, service.ErrNotFound)

		wantDiff(t, "ServiceList", []service.Service{bare, full}, list(s.ServiceList(ctx, "ws")))
		all := list(s.ServiceListAll(ctx))
		var names []string
		for _, x := range all {
			names = append(names, x.Workspace+"/"+x.Name)
		}
		wantDiff(t, "ServiceListAll", []string{"other/digits", "other/no-port", "ws/bare", "ws/digits"}, names)

		// The manager's status write touches only the observed fields.
		must(t, s.ServiceSetStatus(ctx, "ws", "digits", 1, service.Healthy, "", at(time.Minute)))
		want := full
		want.ObservedGeneration, want.State, want.UpdatedAt = 1, service.Healthy, at(time.Minute)
		wantDiff(t, "after ServiceSetStatus", want, get(s.ServiceGet(ctx, "ws", "digits")))
		wantErr(t, s.ServiceSetStatus(ctx, "ws", "nope", 1, service.Healthy, "", t0), service.ErrNotFound)

		// An update overwrites the desired fields and leaves the observed
		// ones and the creation stamp alone.
		up := newService("ws", "digits", 40004)
		up.Models = []service.ModelRef{{Name: "digits", Version: 3}}
		up.EntryScript, up.SourceDigest, up.Python, up.Environment = "app/score.py", "sha256:src2", "python3.12", "inline"
		up.EnvVars, up.EnvironmentVariables, up.Requirements = map[string]string{}, nil, []string{}
		up.Workers, up.AuthEnabled, up.PrimaryKey, up.SecondaryKey = 4, false, "hsk_p2", "hsk_s2"
		up.RequestTimeout, up.Generation, up.DeleteRequested, up.Target = 1500*time.Millisecond, 2, true, "local"
		up.State, up.ObservedGeneration, up.Error = service.Failed, 9, "ignored" // observed: not written
		up.CreatedBy, up.CreatedAt, up.UpdatedAt = "mallory", at(time.Hour), at(2*time.Minute)
		must(t, s.ServiceUpdate(ctx, up))
		want = up
		want.State, want.ObservedGeneration, want.Error = service.Healthy, 1, ""
		want.CreatedBy, want.CreatedAt = full.CreatedBy, full.CreatedAt
		wantDiff(t, "after ServiceUpdate", want, get(s.ServiceGet(ctx, "ws", "digits")))
		// The old port is free again, the taken one is refused.
		must(t, s.ServiceCreate(ctx, newService("ws", "reuse-port", 40001)))
		conflict := want
		conflict.Port = 40002
		wantErr(t, s.ServiceUpdate(ctx, conflict), store.ErrConflict)
		wantErr(t, s.ServiceUpdate(ctx, service.Service{Workspace: "ws", Name: "nope"}), service.ErrNotFound)

		// A failure message from a process is stored whatever its bytes.
		must(t, s.ServiceSetStatus(ctx, "ws", "digits", 2, service.Failed, "init() raised\x00 ValueError", at(3*time.Minute)))
		if got := get(s.ServiceGet(ctx, "ws", "digits")); got.Error != "init() raised\uFFFD ValueError" || got.State != service.Failed || got.ObservedGeneration != 2 {
			t.Errorf("after failure: state %s observed %d error %q", got.State, got.ObservedGeneration, got.Error)
		}

		must(t, s.ServiceDelete(ctx, "ws", "digits"))
		wantErr(t, s.ServiceDelete(ctx, "ws", "digits"), service.ErrNotFound)
		_, err = s.ServiceGet(ctx, "ws", "digits")
		wantErr(t, err, service.ErrNotFound)
		// Its port is free for another service.
		must(t, s.ServiceCreate(ctx, newService("ws", "digits", 40004)))
	})
}

func TestServiceInTx(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		boom := fmt.Errorf("boom")
		err := s.InTx(ctx, func(tx store.Store) error {
			if err := tx.ServiceCreate(ctx, newService("ws", "digits", 40010)); err != nil {
				return err
			}
			if _, err := tx.ModelCreate(ctx, newModel("ws", "digits", t0)); err != nil {
				return err
			}
			return boom
		})
		wantErr(t, err, boom)
		_, err = s.ServiceGet(ctx, "ws", "digits")
		wantErr(t, err, service.ErrNotFound)
		_, err = s.ModelGet(ctx, "ws", "digits", 0)
		wantErr(t, err, model.ErrNotFound)
	})
}

package storetest_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hangar-ml/hangar/internal/compute"
	"github.com/hangar-ml/hangar/internal/run"
	"github.com/hangar-ml/hangar/internal/store"
	"github.com/hangar-ml/hangar/internal/store/storetest"
)

var errBoom = errors.New("boom")

func wantWorkspace(t *testing.T, s store.Store, name string, want bool) {
	t.Helper()
	_, err := s.WorkspaceGet(t.Context(), name)
	switch {
	case want && err != nil:
		t.Errorf("workspace %q: %v, want it stored", name, err)
	case !want && !errors.Is(err, store.ErrNotFound):
		t.Errorf("workspace %q: err = %v, want ErrNotFound (rolled back)", name, err)
	}
}

func TestInTx(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		// Warm the statement cache so the transaction runs both cached
		// and uncached statements.
		must(t, s.WorkspaceCreate(ctx, store.Workspace{Name: "warm"}))
		must(t, s.RunCreate(ctx, newRun("ws", "run-1", t0)))

		t.Run("commit", func(t *testing.T) {
			err := s.InTx(ctx, func(tx store.Store) error {
				if err := tx.WorkspaceCreate(ctx, store.Workspace{Name: "committed"}); err != nil {
					return err
				}
				// Reads inside see the transaction's writes.
				if _, err := tx.WorkspaceGet(ctx, "committed"); err != nil {
					return err
				}
				if err := tx.ComputeCreate(ctx, newCompute("committed", "c-1", "cpu")); err != nil {
					return err
				}
				ok, err := tx.RunSetStatusIf(ctx, store.RunSetStatusIfParams{ID: "run-1", From: []run.Status{run.Queued}, To: run.Preparing, Now: t0})
				if !ok || err != nil {
					return fmt.Errorf("RunSetStatusIf in tx = %v, %v", ok, err)
				}
				return nil
			})
			must(t, err)
			wantWorkspace(t, s, "committed", true)
			if _, err := s.ComputeGet(ctx, "committed", "CPU"); err != nil {
				t.Error(err)
			}
			if r := mustGet[run.Run](t)(s.RunGet(ctx, "ws", "run-1")); r.Status != run.Preparing {
				t.Errorf("run status = %s, want Preparing", r.Status)
			}
		})

		t.Run("rollback on error", func(t *testing.T) {
			err := s.InTx(ctx, func(tx store.Store) error {
				must(t, tx.WorkspaceCreate(ctx, store.Workspace{Name: "rolled"}))
				must(t, tx.ComputeCreate(ctx, newCompute("rolled", "c-2", "gpu")))
				return errBoom
			})
			wantErr(t, err, errBoom)
			wantWorkspace(t, s, "rolled", false)
			_, err = s.ComputeGetByID(ctx, "c-2")
			wantErr(t, err, compute.ErrNotFound)
		})

		t.Run("rollback after a failed statement", func(t *testing.T) {
			err := s.InTx(ctx, func(tx store.Store) error {
				must(t, tx.WorkspaceCreate(ctx, store.Workspace{Name: "conflicted"}))
				return tx.ComputeCreate(ctx, newCompute("committed", "c-3", "CPU"))
			})
			wantErr(t, err, store.ErrConflict)
			wantWorkspace(t, s, "conflicted", false)
		})

		t.Run("nested joins the outer transaction", func(t *testing.T) {
			err := s.InTx(ctx, func(tx store.Store) error {
				err := tx.InTx(ctx, func(inner store.Store) error {
					return inner.WorkspaceCreate(ctx, store.Workspace{Name: "nested"})
				})
				must(t, err)
				if _, err := tx.WorkspaceGet(ctx, "nested"); err != nil {
					t.Errorf("outer tx does not see the inner write: %v", err)
				}
				return errBoom
			})
			wantErr(t, err, errBoom)
			wantWorkspace(t, s, "nested", false)

			must(t, s.InTx(ctx, func(tx store.Store) error {
				return tx.InTx(ctx, func(inner store.Store) error {
					return inner.WorkspaceCreate(ctx, store.Workspace{Name: "nested-ok"})
				})
			}))
			wantWorkspace(t, s, "nested-ok", true)
		})

		t.Run("panic rolls back", func(t *testing.T) {
			func() {
				defer func() {
					if r := recover(); r != errBoom {
						t.Errorf("recovered %v, want the panic value", r)
					}
				}()
				s.InTx(ctx, func(tx store.Store) error {
					must(t, tx.WorkspaceCreate(ctx, store.Workspace{Name: "panicked"}))
					panic(errBoom)
				})
			}()
			wantWorkspace(t, s, "panicked", false)
			// The connection went back to the pool: writes still work.
			must(t, s.WorkspaceCreate(ctx, store.Workspace{Name: "after-panic"}))
		})
	})
}

// TestConcurrentWriters submits runs from many goroutines at once, as the
// API does: none may fail (no SQLITE_BUSY), none may be lost.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	const writers, each = 8, 40
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					id := fmt.Sprintf("run-%d-%d", w, i)
					now := at(time.Duration(w*each+i) * time.Millisecond)
					if err := s.RunCreate(ctx, newRun("ws", id, now)); err != nil {
						errs <- err
						return
					}
					if err := s.EventAdd(ctx, store.Event{Workspace: "ws", Kind: "run", Object: id, Type: "Queued", Time: now}); err != nil {
						errs <- err
						return
					}
					if i%10 == 0 {
						// Reads and transactions interleave with the writes.
						if _, err := s.RunListActive(ctx); err != nil {
							errs <- err
						}
						err := s.InTx(ctx, func(tx store.Store) error {
							_, err := tx.RunSetStatusIf(ctx, store.RunSetStatusIfParams{ID: id, From: []run.Status{run.Queued}, To: run.Preparing, Now: now})
							return err
						})
						if err != nil {
							errs <- err
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if got := len(mustGet[[]run.Run](t)(s.RunList(ctx, store.RunFilter{Workspace: "ws"}))); got != writers*each {
			t.Errorf("%d runs stored, want %d", got, writers*each)
		}
		if got := len(mustGet[[]store.Event](t)(s.EventList(ctx, "ws", "", 0))); got != writers*each {
			t.Errorf("%d events stored, want %d", got, writers*each)
		}
	})
}

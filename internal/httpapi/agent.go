package httpapi

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/hangar-ml/hangar/internal/agentproto"
	"github.com/hangar-ml/hangar/internal/blob"
	"github.com/hangar-ml/hangar/internal/problem"
	"github.com/hangar-ml/hangar/internal/store"
)

// The node agent protocol (see internal/agentproto). The node is the one
// the bearer token belongs to; a node can only act on its own attempts.

func (a *API) agentHeartbeat(w http.ResponseWriter, r *http.Request) error {
	var hb agentproto.Heartbeat
	if err := decode(r, &hb); err != nil {
		return err
	}
	nodeID := principalOf(r).nodeScope()
	if hb.NodeID != "" && hb.NodeID != nodeID {
		return problem.Field("node_id", "%q does not match this node's token", hb.NodeID)
	}
	reply, err := a.cfg.Ctl.Heartbeat(r.Context(), nodeID, hb)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, reply)
	return nil
}

func (a *API) agentWork(w http.ResponseWriter, r *http.Request) error {
	wait, err := queryInt(r, "wait", 20)
	if err != nil {
		return err
	}
	if wait > 60 {
		wait = 60
	}
	work, err := a.cfg.Ctl.Work(r.Context(), principalOf(r).nodeScope(), time.Duration(wait)*time.Second)
	if err != nil {
		return err
	}
	if len(work.Assignments) == 0 && len(work.Cancel) == 0 && !work.Shutdown {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeJSON(w, http.StatusOK, work)
	return nil
}

func (a *API) agentBlob(w http.ResponseWriter, r *http.Request) error {
	rc, err := a.cfg.Blobs.Open(r.PathValue("digest"))
	if errors.Is(err, blob.ErrNotFound) {
		return problem.New(problem.NotFound, "blob %s not found", r.PathValue("digest"))
	}
	if err != nil {
		return problem.Field("digest", "%v", err)
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, rc)
	return nil
}

func (a *API) agentStart(w http.ResponseWriter, r *http.Request) error {
	if err := a.cfg.Ctl.AttemptStart(r.Context(), principalOf(r).nodeScope(), r.PathValue("id")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

func (a *API) agentLogs(w http.ResponseWriter, r *http.Request) error {
	offset, err := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
	if err != nil || offset < 0 {
		return problem.Field("offset", "must be a non-negative integer")
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return err
	}
	stored, err := a.cfg.Ctl.AttemptLogs(r.Context(), principalOf(r).nodeScope(), r.PathValue("id"), offset, data)
	if err != nil && !errorsIsConflictWithLength(err) {
		return err
	}
	writeJSON(w, http.StatusOK, agentproto.LogAck{Stored: stored})
	return nil
}

func (a *API) agentFiles(w http.ResponseWriter, r *http.Request) error {
	body := http.MaxBytesReader(w, r.Body, 10<<30)
	if err := a.cfg.Ctl.AttemptFiles(r.Context(), principalOf(r).nodeScope(), r.PathValue("id"), body); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

func (a *API) agentFinish(w http.ResponseWriter, r *http.Request) error {
	var fin agentproto.Finish
	if err := decode(r, &fin); err != nil {
		return err
	}
	if err := a.cfg.Ctl.AttemptFinish(r.Context(), principalOf(r).nodeScope(), r.PathValue("id"), fin); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	return nil
}

// errorsIsConflictWithLength reports a log gap: the answer then carries the
// stored length so the agent resends from there.
func errorsIsConflictWithLength(err error) bool { return errors.Is(err, store.ErrConflict) }

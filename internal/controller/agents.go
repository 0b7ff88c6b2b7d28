package controller

// The controller's answers to node agents (internal/agentproto). Every call
// about an attempt is fenced: only the run's current, live attempt on the
// calling node is accepted.

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"time"

	"github.com/hangar-ml/hangar/internal/agentproto"
	"github.com/hangar-ml/hangar/internal/node"
	"github.com/hangar-ml/hangar/internal/run"
	"github.com/hangar-ml/hangar/internal/snapshot"
	"github.com/hangar-ml/hangar/internal/store"
)

// Heartbeat records that a node's agent is alive.
func (c *Controller) Heartbeat(ctx context.Context, nodeID string, hb agentproto.Heartbeat) (agentproto.HeartbeatReply, error) {
	now := c.cfg.Clock.Now()
	reply := agentproto.HeartbeatReply{IntervalMillis: 2000}
	n, err := c.cfg.Store.NodeGet(ctx, nodeID)
	if err != nil {
		return reply, err
	}
	if n.State.Terminal() || n.State == node.Leaving || !n.EndedAt.IsZero() {
		reply.Shutdown = true
		return reply, nil
	}
	if err := c.cfg.Store.NodeHeartbeat(ctx, nodeID, now); err != nil {
		return reply, err
	}
	if n.State == node.Preparing {
		ok, err := c.cfg.Store.NodeSetStateIf(ctx, store.NodeSetStateIfParams{ID: nodeID, From: []node.State{node.Preparing}, To: node.Idle, Reason: "agent ready", Now: now})
		if err != nil {
			return reply, err
		}
		if ok {
			cp, _ := c.cfg.Store.ComputeGetByID(ctx, n.ComputeID)
			c.event(ctx, n.Workspace, "node", n.ID, cp.Name, "NodeReady", fmt.Sprintf("node %s is ready", n.ID), now)
			c.Wake()
		}
	}
	c.mu.Lock()
	for id := range c.cancels[nodeID] {
		reply.Cancel = append(reply.Cancel, id)
	}
	c.mu.Unlock()
	sort.Strings(reply.Cancel)
	return reply, nil
}

// Work returns the node's new assignments and cancels, waiting up to wait
// for some to arrive.
func (c *Controller) Work(ctx context.Context, nodeID string, wait time.Duration) (agentproto.Work, error) {
	n, err := c.cfg.Store.NodeGet(ctx, nodeID)
	if err != nil {
		return agentproto.Work{}, err
	}
	if n.State.Terminal() || !n.EndedAt.IsZero() {
		return agentproto.Work{Shutdown: true}, nil
	}
	mb := c.mailbox(nodeID)
	deadline := c.cfg.Clock.After(wait)
	for {
		now := c.cfg.Clock.Now()
		c.mu.Lock()
		var w agentproto.Work
		for _, o := range c.pending[nodeID] {
			if o.sentAt.IsZero() || now.Sub(o.sentAt) >= redeliverAfter {
				o.sentAt = now
				w.Assignments = append(w.Assignments, o.assignment)
			}
		}
		for id, o := range c.cancels[nodeID] {
			if o.sentAt.IsZero() || now.Sub(o.sentAt) >= redeliverAfter {
				o.sentAt = now
				w.Cancel = append(w.Cancel, id)
			}
		}
		c.mu.Unlock()
		if len(w.Assignments) > 0 || len(w.Cancel) > 0 {
			sort.Slice(w.Assignments, func(i, j int) bool { return w.Assignments[i].AttemptID < w.Assignments[j].AttemptID })
			sort.Strings(w.Cancel)
			return w, nil
		}
		select {
		case <-mb:
		case <-c.cfg.Clock.After(redeliverAfter):
		case <-deadline:
			return agentproto.Work{}, nil
		case <-ctx.Done():
			return agentproto.Work{}, ctx.Err()
		}
	}
}

// liveAttemptOn returns the attempt if it is live, on nodeID and current.
func (c *Controller) liveAttemptOn(ctx context.Context, nodeID, attemptID string) (run.Attempt, error) {
	a, err := c.cfg.Store.AttemptGet(ctx, attemptID)
	if err != nil {
		return a, ErrFenced
	}
	if a.NodeID != nodeID || a.State == run.AttemptEnded {
		return a, ErrFenced
	}
	return a, nil
}

// AttemptStart lets the agent start an attempt's process.
func (c *Controller) AttemptStart(ctx context.Context, nodeID, attemptID string) error {
	now := c.cfg.Clock.Now()
	a, err := c.liveAttemptOn(ctx, nodeID, attemptID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if p := c.pending[nodeID]; p != nil {
		delete(p, attemptID)
	}
	c.mu.Unlock()
	if a.State == run.AttemptRunning {
		return nil // a retried start
	}
	ok, err := c.cfg.Store.AttemptStartIf(ctx, attemptID, now)
	if err != nil {
		return err
	}
	if !ok {
		return ErrFenced
	}
	if _, err := c.cfg.Store.RunSetStatusIf(ctx, store.RunSetStatusIfParams{ID: a.RunID, From: []run.Status{run.Preparing}, To: run.Running, Reason: "running on node " + nodeID, Now: now}); err != nil {
		return err
	}
	n, _ := c.cfg.Store.NodeGet(ctx, nodeID)
	cp, _ := c.cfg.Store.ComputeGetByID(ctx, n.ComputeID)
	c.event(ctx, n.Workspace, "run", a.RunID, cp.Name, "Started", fmt.Sprintf("run %s attempt %d started on node %s", a.RunID, a.Number, nodeID), now)
	return nil
}

// AttemptLogs stores a piece of an attempt's log. An attempt's log is kept
// up to MaxLogBytes; the rest is dropped after a marker line, and the answer
// tells the agent everything is stored (agentproto.LogAck) so it stops
// sending a log nobody keeps.
func (c *Controller) AttemptLogs(ctx context.Context, nodeID, attemptID string, offset int64, data []byte) (int64, error) {
	if _, err := c.liveAttemptOn(ctx, nodeID, attemptID); err != nil {
		return 0, err
	}
	marker := fmt.Sprintf("\n[hangar: this attempt's log passed %d MiB; the rest is not kept]\n", c.cfg.MaxLogBytes>>20)
	dataLimit := c.cfg.MaxLogBytes - int64(len(marker)) // room for the marker
	if offset+int64(len(data)) <= dataLimit {
		return c.cfg.Store.LogAppend(ctx, attemptID, offset, data)
	}
	if offset <= dataLimit {
		// The piece that crosses the limit: what fits, then the marker. A
		// retry at the same offset builds the same piece, so it stays a no-op.
		piece := append(append([]byte{}, data[:dataLimit-offset]...), marker...)
		if _, err := c.cfg.Store.LogAppend(ctx, attemptID, offset, piece); err != nil {
			return 0, err
		}
	}
	return math.MaxInt64, nil
}

// AttemptFiles merges an upload of outputs/ and logs/ into the run's files.
func (c *Controller) AttemptFiles(ctx context.Context, nodeID, attemptID string, body io.Reader) error {
	a, err := c.liveAttemptOn(ctx, nodeID, attemptID)
	if err != nil {
		return err
	}
	dir := c.RunFilesDir(a.RunID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return snapshot.MergeTree(body, dir)
}

// AttemptFinish ends an attempt with its process's outcome. A retried
// finish of an attempt that this report already ended is accepted.
func (c *Controller) AttemptFinish(ctx context.Context, nodeID, attemptID string, fin agentproto.Finish) error {
	now := c.cfg.Clock.Now()
	a, err := c.cfg.Store.AttemptGet(ctx, attemptID)
	if err != nil || a.NodeID != nodeID {
		return ErrFenced
	}
	if a.State == run.AttemptEnded {
		if a.ExitCode != nil && *a.ExitCode == fin.ExitCode {
			return nil
		}
		return ErrFenced
	}
	reason := fin.Reason
	if reason == "" {
		if fin.ExitCode == 0 {
			reason = run.ReasonCompleted
		} else {
			reason = run.ReasonFailed
		}
	}
	code := fin.ExitCode
	if err := c.endAttempt(ctx, a, &code, reason, fin.ErrorTail, now); err != nil {
		return err
	}
	// The node is free again when nothing else runs on it.
	live, err := c.cfg.Store.AttemptListLive(ctx)
	if err != nil {
		return err
	}
	others := 0
	for _, o := range live {
		if o.NodeID == nodeID {
			others++
		}
	}
	if others == 0 {
		if _, err := c.cfg.Store.NodeSetStateIf(ctx, store.NodeSetStateIfParams{ID: nodeID, From: []node.State{node.Running}, To: node.Idle, Reason: "finished " + a.RunID, Now: now}); err != nil {
			return err
		}
	}
	c.Wake()
	return nil
}

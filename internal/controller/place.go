package controller

// Placement and the end of attempts: where queued runs go, and what a run
// does next when its attempt ends.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hangar-ml/hangar/internal/agentproto"
	"github.com/hangar-ml/hangar/internal/compute"
	"github.com/hangar-ml/hangar/internal/ids"
	"github.com/hangar-ml/hangar/internal/node"
	"github.com/hangar-ml/hangar/internal/run"
	"github.com/hangar-ml/hangar/internal/sched"
	"github.com/hangar-ml/hangar/internal/store"
)

// place assigns queued runs to free nodes.
func (c *Controller) place(ctx context.Context, st snapshotState, now time.Time) error {
	computeByID := map[string]compute.Compute{}
	computeKey := map[string]compute.Compute{}
	for _, cp := range st.computes {
		if cp.ProvisioningState != compute.StateSucceeded {
			continue
		}
		computeByID[cp.ID] = cp
		computeKey[cp.Workspace+"/"+strings.ToLower(cp.Name)] = cp
	}
	busy := map[string]int{}
	for _, a := range st.attempts {
		busy[a.NodeID]++
	}
	var free []sched.FreeNode
	nodesByID := map[string]node.Node{}
	for _, n := range st.nodes {
		if n.State != node.Idle && n.State != node.Running {
			continue
		}
		if _, ok := computeByID[n.ComputeID]; !ok {
			continue
		}
		nodesByID[n.ID] = n
		if slots := n.Slots - busy[n.ID]; slots > 0 {
			free = append(free, sched.FreeNode{ID: n.ID, Compute: n.ComputeID, FreeSlots: slots})
		}
	}
	if len(free) == 0 {
		return nil
	}
	var queue []sched.QueuedRun
	runsByID := map[string]run.Run{}
	for _, r := range st.runs {
		if r.Status != run.Queued {
			continue
		}
		cp, ok := computeKey[r.Workspace+"/"+strings.ToLower(r.ComputeName)]
		if !ok {
			continue
		}
		runsByID[r.ID] = r
		queue = append(queue, sched.QueuedRun{ID: r.ID, Compute: cp.ID, NodeCount: max(r.NodeCount, 1)})
	}
	plan := sched.Place(queue, free)
	for _, asg := range plan.Assignments {
		r := runsByID[asg.RunID]
		if err := c.commitPlacement(ctx, r, asg.NodeIDs, nodesByID, now); err != nil {
			c.log.ErrorContext(ctx, "place run", "run", r.ID, "err", err)
		}
	}
	return nil
}

// commitPlacement creates the attempt and moves run and node in one
// transaction, then offers the assignment to the node.
func (c *Controller) commitPlacement(ctx context.Context, r run.Run, nodeIDs []string, nodes map[string]node.Node, now time.Time) error {
	if len(nodeIDs) == 0 {
		return nil
	}
	// Multi-node runs are the subject of a later issue: the first node runs the attempt.
	nodeID := nodeIDs[0]
	n := r.Attempt + 1
	a := run.Attempt{ID: run.AttemptID(r.ID, n), RunID: r.ID, Number: n, NodeID: nodeID, State: run.AttemptAssigned, CreatedAt: now}
	placed := false
	err := c.cfg.Store.InTx(ctx, func(tx store.Store) error {
		ok, err := tx.RunSetStatusIf(ctx, store.RunSetStatusIfParams{ID: r.ID, From: []run.Status{run.Queued}, To: run.Preparing, Reason: "assigned to node " + nodeID, Now: now})
		if err != nil || !ok {
			return err
		}
		if err := tx.AttemptCreate(ctx, a); err != nil {
			return err
		}
		r.Attempt = n
		if err := tx.RunUpdateCounters(ctx, r); err != nil {
			return err
		}
		ok, err = tx.NodeSetStateIf(ctx, store.NodeSetStateIfParams{ID: nodeID, From: []node.State{node.Idle, node.Running}, To: node.Running, Reason: "running " + r.ID, Now: now})
		if err != nil {
			return err
		}
		if !ok {
			return errNodeTaken // roll back: the node left or was lost meanwhile
		}
		placed = true
		return nil
	})
	if errors.Is(err, errNodeTaken) {
		c.Wake()
		return nil
	}
	if err != nil || !placed {
		return err
	}
	c.mu.Lock()
	delete(c.reasons, r.ID)
	c.mu.Unlock()
	asg, err := c.assignment(ctx, r, a)
	if err != nil {
		return err
	}
	c.addPending(nodeID, asg)
	return nil
}

// assignment builds what the agent needs to run an attempt.
func (c *Controller) assignment(ctx context.Context, r run.Run, a run.Attempt) (agentproto.Assignment, error) {
	// The run's token only posts metrics of this run, and only while the run
	// is live (the API checks). A rebuilt assignment gets a fresh token.
	token := ids.Secret("hrun")
	if err := c.cfg.Store.TokenCreate(ctx, store.Token{ID: ids.New("tok"), Hash: ids.Hash(token), Name: "run " + r.ID, Workspace: r.Workspace, Scope: "run:" + r.ID, CreatedAt: c.cfg.Clock.Now()}); err != nil {
		return agentproto.Assignment{}, err
	}
	env := map[string]string{}
	for k, v := range r.Env {
		env[k] = v
	}
	env["HANGAR_URL"] = c.cfg.ServerURL()
	env["HANGAR_WORKSPACE"] = r.Workspace
	env["HANGAR_RUN_ID"] = r.ID
	env["HANGAR_EXPERIMENT"] = r.Experiment
	env["HANGAR_ATTEMPT"] = fmt.Sprint(a.Number)
	env["HANGAR_TOKEN"] = token
	env["AZUREML_RUN_ID"] = r.ID
	var inputs []agentproto.Input
	for _, in := range r.Inputs {
		fileName := in.FileName
		if fileName == "" {
			fileName = in.Name
		}
		inputs = append(inputs, agentproto.Input{Name: in.Name, Digest: in.Digest, Dir: in.Dir, FileName: fileName})
	}
	return agentproto.Assignment{
		AttemptID:              a.ID,
		RunID:                  r.ID,
		Number:                 a.Number,
		Workspace:              r.Workspace,
		Script:                 r.Script,
		Command:                r.Command,
		Args:                   r.Args,
		Python:                 r.Python,
		Requirements:           r.Requirements,
		Env:                    env,
		SnapshotDigest:         r.SnapshotDigest,
		Inputs:                 inputs,
		MaxDurationSeconds:     r.MaxDurationSeconds,
		OutputsIntervalSeconds: 5,
	}, nil
}

// endAttempt ends a live attempt and decides the run's next status.
// exitCode is nil when the process never reported (node lost, preempted).
func (c *Controller) endAttempt(ctx context.Context, a run.Attempt, exitCode *int, reason, tail string, now time.Time) error {
	// One transaction: a crash can never leave the attempt ended and its
	// run still waiting for it.
	err := c.cfg.Store.InTx(ctx, func(tx store.Store) error {
		return c.endAttemptTx(ctx, tx, a, exitCode, reason, tail, now)
	})
	if err == nil {
		c.forgetAttempt(a.NodeID, a.ID)
	}
	return err
}

// endAttemptTx is endAttempt inside tx; it uses only tx.
func (c *Controller) endAttemptTx(ctx context.Context, tx store.Store, a run.Attempt, exitCode *int, reason, tail string, now time.Time) error {
	ok, err := tx.AttemptEndIf(ctx, a.ID, exitCode, reason, now)
	if err != nil || !ok {
		return err
	}
	r, err := tx.RunGet(ctx, "", a.RunID)
	if err != nil {
		return err
	}
	if r.Attempt != a.Number || r.Status.Terminal() {
		return nil
	}
	from := []run.Status{run.Preparing, run.Running, run.Finalizing, run.CancelRequested}
	event := func(typ, msg string) error {
		return tx.EventAdd(ctx, store.Event{Workspace: r.Workspace, Kind: "run", Object: r.ID, Compute: r.ComputeName, Type: typ, Message: msg, Time: now})
	}
	set := func(to run.Status, why string, rerr *run.Error) error {
		ok, err := tx.RunSetStatusIf(ctx, store.RunSetStatusIfParams{ID: r.ID, From: from, To: to, Reason: why, Error: rerr, Now: now})
		if err != nil || !ok || !to.Terminal() {
			return err
		}
		msg := fmt.Sprintf("run %s %s: %s", r.ID, strings.ToLower(string(to)), why)
		if rerr != nil {
			msg = fmt.Sprintf("run %s %s: %s", r.ID, strings.ToLower(string(to)), rerr.Message)
		}
		return event(string(to), msg)
	}
	switch {
	case r.Status == run.CancelRequested:
		why := "canceled by user"
		if r.StatusReason == run.ReasonComputeDeleted {
			why = run.ReasonComputeDeleted
		}
		return set(run.Canceled, why, nil)
	case reason == run.ReasonPreempted || reason == run.ReasonNodeLost:
		if r.PreemptionRetries >= r.MaxPreemptionRetries {
			return set(run.Failed, reason, &run.Error{Code: "NodeLost", Message: fmt.Sprintf("attempt %d ended: %s; no preemption retries left (max_preemption_retries=%d)", a.Number, reason, r.MaxPreemptionRetries)})
		}
		r.PreemptionRetries++
		if err := tx.RunUpdateCounters(ctx, r); err != nil {
			return err
		}
		why := fmt.Sprintf("requeued: attempt %d on node %s ended (%s); preemption retry %d of %d", a.Number, a.NodeID, reason, r.PreemptionRetries, r.MaxPreemptionRetries)
		if err := event("Requeued", why); err != nil {
			return err
		}
		return set(run.Queued, why, nil)
	case reason == run.ReasonTimeout:
		return set(run.Failed, reason, &run.Error{Code: "RunTimeout", Message: fmt.Sprintf("run exceeded max_run_duration_seconds (%d) and was stopped", r.MaxDurationSeconds), Details: tail})
	case reason == run.ReasonCanceled:
		return set(run.Canceled, "canceled", nil)
	case reason == run.ReasonSetupFailed:
		msg := "the node could not set up the run"
		for _, line := range strings.Split(tail, "\n") {
			if m, ok := strings.CutPrefix(line, "hangar: setup failed: "); ok {
				msg = m
			}
		}
		return set(run.Failed, "setup failed", &run.Error{Code: "SetupFailed", Message: msg, Details: tail})
	case exitCode != nil && *exitCode == 0:
		return set(run.Completed, "completed", nil)
	default:
		code := -1
		if exitCode != nil {
			code = *exitCode
		}
		msg := fmt.Sprintf("user script exited with code %d", code)
		if reason != "" && reason != run.ReasonFailed {
			msg = fmt.Sprintf("%s (%s)", msg, reason)
		}
		if r.Retries < r.MaxRetries {
			r.Retries++
			if err := tx.RunUpdateCounters(ctx, r); err != nil {
				return err
			}
			why := fmt.Sprintf("requeued: %s; retry %d of %d", msg, r.Retries, r.MaxRetries)
			if err := event("Retry", why); err != nil {
				return err
			}
			return set(run.Queued, why, nil)
		}
		return set(run.Failed, msg, &run.Error{Code: "UserError", Message: msg, Details: tail})
	}
}

// Package controller moves the world toward what the store says it should be.
//
// One level-triggered loop (Run) re-reads everything on each pass
// (runOnce): computes, live nodes, live attempts and active runs. Per cluster
// it asks autoscale.Decide what to create or remove and applies it through
// the node provider; then it asks sched.Place which queued runs go to which
// free node and commits each placement in one transaction. A pass never
// branches on what woke it, and every write is compare-and-set, so running a
// pass twice, or after a crash, is safe.
//
// The controller also answers the node agents (Heartbeat, Work,
// AttemptStart, AttemptLogs, AttemptFiles, AttemptFinish). Those calls are
// fenced by attempt: only the run's current live attempt on that node is
// accepted, so a stale attempt can never report a result.
package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hangar-ml/hangar/internal/agentproto"
	"github.com/hangar-ml/hangar/internal/autoscale"
	"github.com/hangar-ml/hangar/internal/clock"
	"github.com/hangar-ml/hangar/internal/compute"
	"github.com/hangar-ml/hangar/internal/ids"
	"github.com/hangar-ml/hangar/internal/node"
	"github.com/hangar-ml/hangar/internal/provider"
	"github.com/hangar-ml/hangar/internal/run"
	"github.com/hangar-ml/hangar/internal/store"
	"github.com/hangar-ml/hangar/internal/vmsize"
)

// ErrFenced is returned to an agent reporting on an attempt that is no
// longer the run's current live attempt on that node.
var ErrFenced = errors.New("attempt is no longer current")

// Config wires the controller. Zero durations take the documented defaults.
type Config struct {
	Store     store.Store
	Catalog   *vmsize.Catalog
	Providers map[string]provider.Provider
	Clock     clock.Clock
	Logger    *slog.Logger
	// DataDir holds run files under runs/<id>/files.
	DataDir string
	// ServerURL returns the URL agents dial (known only once the server listens).
	ServerURL func() string
	Metrics   *Metrics
	// HeartbeatTimeout marks a silent node unusable (default 20 s).
	HeartbeatTimeout time.Duration
	// PrepareTimeout marks a node that never checked in unusable (default 60 s).
	PrepareTimeout time.Duration
	// DeleteGrace is how long a removed node gets to stop (default 10 s).
	DeleteGrace time.Duration
	// PreemptGrace is the eviction notice of a preempted node (default 3 s).
	PreemptGrace time.Duration
	// LocalSlots is how many runs the built-in local compute runs at once.
	LocalSlots int
	// DefaultQuota is the vCPU quota per family and priority when none is set.
	DefaultQuota int
	// MaxLogBytes caps what is kept of one attempt's log (default 100 MiB).
	MaxLogBytes int64
}

// Controller reconciles computes, nodes and runs.
type Controller struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{}

	mu sync.Mutex
	// pending holds assignments not yet started, per node.
	pending map[string]map[string]*offer
	// cancels holds attempts a node must stop.
	cancels map[string]map[string]*offer
	// mailboxes wake a node's long-poll.
	mailboxes map[string]chan struct{}
	// removing tracks provider deletions in flight.
	removing map[string]bool
	// observed caches per-compute facts for the API (target, wait reason).
	observed map[string]Observed
	// reasons remembers the last wait reason written per run.
	reasons map[string]string
	// startedAt is when this controller started; silence before it is not held against nodes.
	startedAt time.Time
	loaded    bool
	wg        sync.WaitGroup
}

// offer is an assignment or cancel waiting for the agent to act on it. A
// long-poll delivers it once; it is offered again only if the agent has not
// acted on it within redeliverAfter (the answer may have been lost).
type offer struct {
	assignment agentproto.Assignment
	sentAt     time.Time
}

// redeliverAfter is how long an offer waits before it is delivered again.
const redeliverAfter = 5 * time.Second

// Observed is what the last pass learned about a compute.
type Observed struct {
	Target     int
	WaitReason string
	Queued     int
	Running    int
	Resizing   bool
}

// New returns a controller; it starts nothing until Run.
func New(cfg Config) *Controller {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.HeartbeatTimeout == 0 {
		cfg.HeartbeatTimeout = 20 * time.Second
	}
	if cfg.PrepareTimeout == 0 {
		cfg.PrepareTimeout = 60 * time.Second
	}
	if cfg.DeleteGrace == 0 {
		cfg.DeleteGrace = 10 * time.Second
	}
	if cfg.PreemptGrace == 0 {
		cfg.PreemptGrace = 3 * time.Second
	}
	if cfg.LocalSlots == 0 {
		cfg.LocalSlots = 2
	}
	if cfg.DefaultQuota == 0 {
		cfg.DefaultQuota = 100
	}
	if cfg.MaxLogBytes == 0 {
		cfg.MaxLogBytes = 100 << 20
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	return &Controller{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "controller"),
		wake:      make(chan struct{}, 1),
		pending:   map[string]map[string]*offer{},
		cancels:   map[string]map[string]*offer{},
		mailboxes: map[string]chan struct{}{},
		removing:  map[string]bool{},
		observed:  map[string]Observed{},
		reasons:   map[string]string{},
	}
}

// Wake asks for a pass soon; many wakes collapse into one pass.
func (c *Controller) Wake() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run reconciles until ctx ends: on every Wake and at least every second.
func (c *Controller) Run(ctx context.Context) error {
	c.startedAt = c.cfg.Clock.Now()
	for {
		began := time.Now()
		if err := c.RunOnce(ctx); err != nil && ctx.Err() == nil {
			c.log.ErrorContext(ctx, "reconcile pass failed", "err", err)
		}
		// Under a burst of wakes, passes would run back to back and starve
		// the API of CPU; rest at least twice as long as the pass took
		// (a pass over a small state takes a millisecond, so an idle
		// system still reacts at once).
		if gap := min(2*time.Since(began), 250*time.Millisecond); gap > time.Millisecond {
			select {
			case <-ctx.Done():
			case <-time.After(gap):
			}
		}
		select {
		case <-ctx.Done():
			c.wg.Wait()
			return nil
		case <-c.wake:
		case <-c.cfg.Clock.After(time.Second):
		}
	}
}

// Observed returns what the last pass learned about a compute.
func (c *Controller) Observed(computeID string) Observed {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.observed[computeID]
}

// snapshotState is everything one pass reads.
type snapshotState struct {
	computes []compute.Compute
	nodes    []node.Node
	attempts []run.Attempt
	runs     []run.Run
}

func (c *Controller) load(ctx context.Context) (snapshotState, error) {
	var s snapshotState
	var err error
	if s.computes, err = c.cfg.Store.ComputeListAll(ctx); err != nil {
		return s, err
	}
	if s.nodes, err = c.cfg.Store.NodeListAll(ctx); err != nil {
		return s, err
	}
	if s.attempts, err = c.cfg.Store.AttemptListLive(ctx); err != nil {
		return s, err
	}
	if s.runs, err = c.cfg.Store.RunListActive(ctx); err != nil {
		return s, err
	}
	return s, nil
}

// RunOnce is one reconcile pass. Tests call it directly.
func (c *Controller) RunOnce(ctx context.Context) error {
	now := c.cfg.Clock.Now()
	if c.startedAt.IsZero() {
		c.startedAt = now
	}
	st, err := c.load(ctx)
	if err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	if !c.loaded {
		if err := c.adopt(ctx, st, now); err != nil {
			return err
		}
		if st, err = c.load(ctx); err != nil {
			return fmt.Errorf("load state: %w", err)
		}
		c.rebuildPending(ctx, st)
		c.loaded = true
	}
	changed, err := c.settleRuns(ctx, st, now)
	if err != nil {
		return err
	}
	lost, err := c.checkNodes(ctx, st, now)
	if err != nil {
		return err
	}
	// Re-read after a change so decisions see its effects.
	if changed || lost {
		if st, err = c.load(ctx); err != nil {
			return fmt.Errorf("load state: %w", err)
		}
	}
	changed = false
	for _, cp := range st.computes {
		ch, err := c.reconcileCompute(ctx, cp, st, now)
		if err != nil {
			c.log.ErrorContext(ctx, "reconcile compute", "compute", cp.Name, "err", err)
		}
		changed = changed || ch || err != nil
	}
	if changed {
		if st, err = c.load(ctx); err != nil {
			return fmt.Errorf("load state: %w", err)
		}
	}
	return c.place(ctx, st, now)
}

// adopt runs once after a (re)start: nodes whose process is still alive are
// kept — their agents reconnect and report what they ran while the server
// was away — and nodes whose process is gone are settled at once (unusable,
// their attempts end with "node lost" and the runs are requeued) instead of
// waiting for the heartbeat timeout.
func (c *Controller) adopt(ctx context.Context, st snapshotState, now time.Time) error {
	for _, n := range st.nodes {
		if n.State.Terminal() || n.Handle == "" {
			continue
		}
		p, ok := c.cfg.Providers[n.Provider]
		if !ok {
			continue
		}
		alive, err := p.Alive(ctx, n.Handle)
		if err != nil {
			c.log.WarnContext(ctx, "check node at start", "node", n.ID, "err", err)
			continue
		}
		if alive {
			c.log.InfoContext(ctx, "re-adopted node", "node", n.ID, "state", n.State)
			continue
		}
		if n.State == node.Leaving {
			continue // its removal finishes on the next pass
		}
		if err := c.loseNode(ctx, n, node.Unusable, "agent process was gone when the server started", now); err != nil {
			return err
		}
	}
	return nil
}

// rebuildPending restores the in-memory view of assigned attempts after a
// restart: assigned-but-not-started attempts are offered to their node again
// (agents ignore ones they already run), and cancel requests are re-sent.
func (c *Controller) rebuildPending(ctx context.Context, st snapshotState) {
	runs := map[string]run.Run{}
	for _, r := range st.runs {
		runs[r.ID] = r
	}
	for _, a := range st.attempts {
		r, ok := runs[a.RunID]
		if !ok {
			continue
		}
		if a.State == run.AttemptAssigned {
			asg, err := c.assignment(ctx, r, a)
			if err != nil {
				c.log.ErrorContext(ctx, "rebuild assignment", "attempt", a.ID, "err", err)
				continue
			}
			c.addPending(a.NodeID, asg)
		}
		if r.Status == run.CancelRequested {
			c.addCancel(a.NodeID, a.ID)
		}
	}
}

func (c *Controller) addPending(nodeID string, a agentproto.Assignment) {
	c.mu.Lock()
	if c.pending[nodeID] == nil {
		c.pending[nodeID] = map[string]*offer{}
	}
	if _, ok := c.pending[nodeID][a.AttemptID]; !ok {
		c.pending[nodeID][a.AttemptID] = &offer{assignment: a}
	}
	c.mu.Unlock()
	c.notify(nodeID)
}

func (c *Controller) addCancel(nodeID, attemptID string) {
	c.mu.Lock()
	if c.cancels[nodeID] == nil {
		c.cancels[nodeID] = map[string]*offer{}
	}
	if _, ok := c.cancels[nodeID][attemptID]; !ok {
		c.cancels[nodeID][attemptID] = &offer{}
	} else {
		c.mu.Unlock()
		return
	}
	if p := c.pending[nodeID]; p != nil {
		delete(p, attemptID)
	}
	c.mu.Unlock()
	c.notify(nodeID)
}

func (c *Controller) forgetAttempt(nodeID, attemptID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.pending[nodeID]; p != nil {
		delete(p, attemptID)
	}
	if cs := c.cancels[nodeID]; cs != nil {
		delete(cs, attemptID)
	}
}

func (c *Controller) mailbox(nodeID string) chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	mb, ok := c.mailboxes[nodeID]
	if !ok {
		mb = make(chan struct{}, 1)
		c.mailboxes[nodeID] = mb
	}
	return mb
}

func (c *Controller) notify(nodeID string) {
	select {
	case c.mailbox(nodeID) <- struct{}{}:
	default:
	}
}

// event records an event; failures are logged, never fatal.
func (c *Controller) event(ctx context.Context, ws, kind, object, computeName, typ, msg string, now time.Time) {
	if err := c.cfg.Store.EventAdd(ctx, store.Event{Workspace: ws, Kind: kind, Object: object, Compute: computeName, Type: typ, Message: msg, Time: now}); err != nil {
		c.log.ErrorContext(ctx, "record event", "err", err)
	}
}

// settleRuns handles runs whose fate is decided without a node: cancel
// requests with nothing running, expired durations, and computes gone.
func (c *Controller) settleRuns(ctx context.Context, st snapshotState, now time.Time) (changed bool, err error) {
	live := map[string][]run.Attempt{}
	for _, a := range st.attempts {
		live[a.RunID] = append(live[a.RunID], a)
	}
	computes := map[string]compute.Compute{}
	for _, cp := range st.computes {
		computes[cp.Workspace+"/"+strings.ToLower(cp.Name)] = cp
	}
	for _, r := range st.runs {
		attempts := live[r.ID]
		switch {
		case r.Status == run.CancelRequested && len(attempts) == 0:
			if _, err := c.cfg.Store.RunSetStatusIf(ctx, store.RunSetStatusIfParams{ID: r.ID, From: []run.Status{run.CancelRequested}, To: run.Canceled, Reason: "canceled by user", Now: now}); err != nil {
				return changed, err
			}
			changed = true
		case r.Status == run.CancelRequested:
			for _, a := range attempts {
				c.addCancel(a.NodeID, a.ID)
			}
		case r.Status.Active() && r.MaxDurationSeconds > 0 && !r.StartedAt.IsZero() && now.Sub(r.StartedAt) > time.Duration(r.MaxDurationSeconds)*time.Second+30*time.Second:
			// The agent enforces the limit itself; this catches an agent that could not.
			for _, a := range attempts {
				c.addCancel(a.NodeID, a.ID)
			}
		case r.Status.Waiting():
			if _, ok := computes[r.Workspace+"/"+strings.ToLower(r.ComputeName)]; !ok {
				if _, err := c.cfg.Store.RunSetStatusIf(ctx, store.RunSetStatusIfParams{ID: r.ID, From: []run.Status{r.Status}, To: run.Failed, Reason: "compute deleted",
					Error: &run.Error{Code: "ComputeNotFound", Message: fmt.Sprintf("compute %s no longer exists", r.ComputeName)}, Now: now}); err != nil {
					return changed, err
				}
				changed = true
			}
		}
	}
	return changed, nil
}

// checkNodes marks silent nodes unusable and ends their attempts.
func (c *Controller) checkNodes(ctx context.Context, st snapshotState, now time.Time) (lost bool, err error) {
	for _, n := range st.nodes {
		if n.State.Terminal() || n.State == node.Leaving {
			c.ensureRemoved(n)
			continue
		}
		seen := n.LastHeartbeat
		if seen.Before(c.startedAt) {
			seen = c.startedAt
		}
		var why string
		switch {
		case n.State == node.Preparing && n.LastHeartbeat.IsZero() && now.Sub(maxTime(n.CreatedAt, c.startedAt)) > c.cfg.PrepareTimeout:
			why = fmt.Sprintf("agent did not check in within %s", c.cfg.PrepareTimeout)
		case !n.LastHeartbeat.IsZero() && now.Sub(seen) > c.cfg.HeartbeatTimeout:
			why = fmt.Sprintf("no heartbeat for %s", now.Sub(seen).Round(time.Second))
		default:
			continue
		}
		if p, ok := c.cfg.Providers[n.Provider]; ok && n.Handle != "" {
			if alive, err := p.Alive(ctx, n.Handle); err == nil && alive && n.State != node.Preparing {
				// Alive but silent (e.g. cut off): still unusable; the provider removes it.
				why += " (process alive but unreachable)"
			}
		}
		if err := c.loseNode(ctx, n, node.Unusable, why, now); err != nil {
			return lost, err
		}
		lost = true
	}
	return lost, nil
}

// loseNode moves a node to a terminal state (unusable or preempted) and has
// the provider stop it; its attempts then end with reason "node lost" or
// "preempted" and their runs are requeued.
func (c *Controller) loseNode(ctx context.Context, n node.Node, to node.State, why string, now time.Time) error {
	ok, err := c.cfg.Store.NodeSetStateIf(ctx, store.NodeSetStateIfParams{ID: n.ID, From: []node.State{node.Preparing, node.Idle, node.Running, node.Leaving}, To: to, Reason: why, Now: now})
	if err != nil || !ok {
		return err
	}
	cp, _ := c.cfg.Store.ComputeGetByID(ctx, n.ComputeID)
	c.event(ctx, n.Workspace, "node", n.ID, cp.Name, eventType(to), fmt.Sprintf("node %s %s: %s", n.ID, to, why), now)
	c.cfg.Metrics.ScaleEvents.WithLabelValues(cp.Name, string(to)).Inc()
	// The node's attempts end (and their runs are requeued) only once the
	// provider has stopped the node (ensureRemoved), so a run never has a
	// second attempt starting while the first may still be running.
	n.State = to
	c.ensureRemoved(n)
	c.Wake()
	return nil
}

// endNodeAttempts ends the live attempts of a node that is gone, with the
// reason its terminal state implies.
func (c *Controller) endNodeAttempts(ctx context.Context, n node.Node) error {
	reason := run.ReasonNodeLost
	if n.State == node.Preempted {
		reason = run.ReasonPreempted
	}
	attempts, err := c.cfg.Store.AttemptListLive(ctx)
	if err != nil {
		return err
	}
	for _, a := range attempts {
		if a.NodeID != n.ID {
			continue
		}
		if err := c.endAttempt(ctx, a, nil, reason, "", c.cfg.Clock.Now()); err != nil {
			return err
		}
	}
	return nil
}

func eventType(s node.State) string {
	switch s {
	case node.Preempted:
		return "Preempted"
	case node.Unusable:
		return "NodeUnusable"
	}
	return "Node"
}

// ensureRemoved deletes (or evicts) a node through its provider once, in the
// background, then marks it ended. Safe to call on every pass.
func (c *Controller) ensureRemoved(n node.Node) {
	c.mu.Lock()
	if c.removing[n.ID] {
		c.mu.Unlock()
		return
	}
	c.removing[n.ID] = true
	c.mu.Unlock()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx := context.Background()
		p, ok := c.cfg.Providers[n.Provider]
		var err error
		if ok && n.Handle != "" {
			if n.State == node.Preempted {
				err = p.Preempt(ctx, n.Handle, c.cfg.PreemptGrace)
			} else {
				err = p.Delete(ctx, n.Handle, c.cfg.DeleteGrace)
			}
		}
		if err != nil {
			c.log.Error("remove node", "node", n.ID, "err", err)
			c.mu.Lock()
			delete(c.removing, n.ID)
			c.mu.Unlock()
			return
		}
		if n.State.Terminal() {
			if err := c.endNodeAttempts(ctx, n); err != nil {
				c.log.Error("end attempts of a lost node", "node", n.ID, "err", err)
				c.mu.Lock()
				delete(c.removing, n.ID)
				c.mu.Unlock()
				return
			}
		}
		if err := c.cfg.Store.NodeEnd(ctx, n.ID, c.cfg.Clock.Now()); err != nil {
			c.log.Error("end node", "node", n.ID, "err", err)
		}
		c.mu.Lock()
		delete(c.mailboxes, n.ID)
		delete(c.pending, n.ID)
		delete(c.cancels, n.ID)
		c.mu.Unlock()
		c.Wake()
	}()
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// policyFor returns the autoscale policy of a compute.
func (c *Controller) policyFor(ctx context.Context, cp compute.Compute, st snapshotState) (autoscale.Policy, vmsize.Size, error) {
	if cp.Kind == compute.KindLocal {
		return autoscale.Policy{MinNodes: 0, MaxNodes: 1, IdleAfter: 30 * time.Minute, VCPUsPerNode: 1, QuotaVCPUs: 1 << 30}, vmsize.Size{Name: "local", VCPUs: 1}, nil
	}
	size, ok := c.cfg.Catalog.Lookup(cp.VMSize)
	if !ok {
		return autoscale.Policy{}, size, fmt.Errorf("vm size %s is not in the catalog", cp.VMSize)
	}
	limit, err := c.QuotaLimit(ctx, cp.Workspace, size.Family, cp.VMPriority)
	if err != nil {
		return autoscale.Policy{}, size, err
	}
	used := 0
	byID := map[string]compute.Compute{}
	for _, o := range st.computes {
		byID[o.ID] = o
	}
	for _, n := range st.nodes {
		o, ok := byID[n.ComputeID]
		if !ok || o.ID == cp.ID || o.Workspace != cp.Workspace || o.Kind != compute.KindCluster || o.VMPriority != cp.VMPriority || !n.State.Counted() {
			continue
		}
		if os, ok := c.cfg.Catalog.Lookup(o.VMSize); ok && os.Family == size.Family {
			used += os.VCPUs
		}
	}
	return autoscale.Policy{
		MinNodes:     cp.MinNodes,
		MaxNodes:     cp.MaxNodes,
		IdleAfter:    time.Duration(cp.IdleSecondsBeforeScaledown) * time.Second,
		VCPUsPerNode: size.VCPUs,
		QuotaVCPUs:   limit - used,
		QuotaName:    size.Family + " " + string(cp.VMPriority),
	}, size, nil
}

// QuotaLimit returns the vCPU quota of a family and priority in a workspace.
func (c *Controller) QuotaLimit(ctx context.Context, ws, family string, prio compute.Priority) (int, error) {
	qs, err := c.cfg.Store.QuotaList(ctx, ws)
	if err != nil {
		return 0, err
	}
	for _, q := range qs {
		if strings.EqualFold(q.Family, family) && q.Priority == prio {
			return q.VCPUs, nil
		}
	}
	return c.cfg.DefaultQuota, nil
}

// reconcileCompute drives one compute: provisioning state, deletion, autoscaling.
func (c *Controller) reconcileCompute(ctx context.Context, cp compute.Compute, st snapshotState, now time.Time) (changed bool, err error) {
	var nodes []node.Node
	for _, n := range st.nodes {
		if n.ComputeID == cp.ID {
			nodes = append(nodes, n)
		}
	}
	busy := map[string]int{}
	for _, a := range st.attempts {
		busy[a.NodeID]++
	}
	var waiting []run.Run
	running := 0
	for _, r := range st.runs {
		if r.Workspace != cp.Workspace || !strings.EqualFold(r.ComputeName, cp.Name) {
			continue
		}
		if r.Status.Waiting() {
			waiting = append(waiting, r)
		} else if r.Status.Active() {
			running++
		}
	}

	switch cp.ProvisioningState {
	case compute.StateFailed:
		return false, nil
	case compute.StateDeleting:
		return true, c.reconcileDelete(ctx, cp, nodes, st, now)
	case compute.StateCreating, compute.StateUpdating:
		cp.ProvisioningState = compute.StateSucceeded
		cp.ModifiedAt = now
		if err := c.cfg.Store.ComputeUpdate(ctx, cp); err != nil {
			return false, err
		}
		changed = true
		c.event(ctx, cp.Workspace, "compute", cp.Name, cp.Name, "Provisioned", fmt.Sprintf("compute %s is ready (provisioning_state Succeeded)", cp.Name), now)
	}

	policy, size, err := c.policyFor(ctx, cp, st)
	if err != nil {
		return changed, err
	}
	obs := autoscale.Observed{}
	for _, n := range nodes {
		obs.Nodes = append(obs.Nodes, autoscale.NodeView{ID: n.ID, State: n.State, CreatedAt: n.CreatedAt, IdleSince: n.IdleSince, Busy: busy[n.ID]})
	}
	for _, r := range waiting {
		if cp.Kind == compute.KindLocal {
			obs.Demand = 1
			break
		}
		obs.Demand += max(r.NodeCount, 1)
	}
	d := autoscale.Decide(obs, policy, now)

	c.mu.Lock()
	c.observed[cp.ID] = Observed{Target: d.Target, WaitReason: d.Blocked, Queued: len(waiting), Running: running, Resizing: d.Create > 0 || len(d.Remove) > 0 || countState(nodes, node.Preparing, node.Leaving) > 0}
	c.mu.Unlock()
	c.cfg.Metrics.QueueLength.WithLabelValues(cp.Workspace, cp.Name).Set(float64(len(waiting)))
	counts := map[node.State]int{}
	for _, n := range nodes {
		counts[n.State]++
	}
	for _, s := range node.AllStates {
		c.cfg.Metrics.Nodes.WithLabelValues(cp.Workspace, cp.Name, string(s)).Set(float64(counts[s]))
	}

	for i := 0; i < d.Create; i++ {
		changed = true
		if err := c.createNode(ctx, cp, size, d.CreateReason, now); err != nil {
			return changed, err
		}
	}
	for _, rm := range d.Remove {
		for _, n := range nodes {
			if n.ID != rm.NodeID {
				continue
			}
			ok, err := c.cfg.Store.NodeSetStateIf(ctx, store.NodeSetStateIfParams{ID: n.ID, From: []node.State{node.Idle}, To: node.Leaving, Reason: rm.Reason, Now: now})
			if err != nil {
				return changed, err
			}
			changed = true
			if ok {
				c.event(ctx, cp.Workspace, "compute", cp.Name, cp.Name, "ScaleDown", fmt.Sprintf("removing node %s: %s", n.ID, rm.Reason), now)
				c.cfg.Metrics.ScaleEvents.WithLabelValues(cp.Name, "down").Inc()
				n.State = node.Leaving
				c.ensureRemoved(n)
			}
		}
	}
	c.updateWaitReasons(ctx, cp, waiting, d, nodes)
	return changed, nil
}

func countState(nodes []node.Node, states ...node.State) int {
	n := 0
	for _, nd := range nodes {
		for _, s := range states {
			if nd.State == s {
				n++
			}
		}
	}
	return n
}

// updateWaitReasons tells queued runs why they wait, writing only changes.
func (c *Controller) updateWaitReasons(ctx context.Context, cp compute.Compute, waiting []run.Run, d autoscale.Decision, nodes []node.Node) {
	reason := "waiting for a free node"
	switch {
	case d.Blocked != "":
		reason = "waiting: " + d.Blocked
	case countState(nodes, node.Preparing) > 0 || d.Create > 0:
		reason = fmt.Sprintf("waiting for a node: scaling up (%d preparing)", countState(nodes, node.Preparing)+d.Create)
	}
	for _, r := range waiting {
		if r.StatusReason == reason {
			continue
		}
		c.mu.Lock()
		last := c.reasons[r.ID]
		c.reasons[r.ID] = reason
		c.mu.Unlock()
		if last == reason {
			continue
		}
		if _, err := c.cfg.Store.RunSetStatusIf(ctx, store.RunSetStatusIfParams{ID: r.ID, From: []run.Status{r.Status}, To: r.Status, Reason: reason}); err != nil {
			c.log.ErrorContext(ctx, "set wait reason", "run", r.ID, "err", err)
		}
	}
}

// createNode records a node and asks the provider for it. The node id is
// deterministic per compute (name-nSEQ), and the provider's Create is
// idempotent on it, so a crash between the two steps cannot make a twin.
func (c *Controller) createNode(ctx context.Context, cp compute.Compute, size vmsize.Size, reason string, now time.Time) error {
	p, ok := c.cfg.Providers[providerName(cp)]
	if !ok {
		return fmt.Errorf("compute %s: no provider %q", cp.Name, providerName(cp))
	}
	seq, err := c.cfg.Store.ComputeNextNodeSeq(ctx, cp.ID)
	if err != nil {
		return err
	}
	token := ids.Secret("hnode")
	slots := 1
	if cp.Kind == compute.KindLocal {
		slots = c.cfg.LocalSlots
	}
	n := node.Node{
		ID:             fmt.Sprintf("%s-%s-n%d", cp.Workspace, strings.ToLower(cp.Name), seq),
		Workspace:      cp.Workspace,
		ComputeID:      cp.ID,
		State:          node.Preparing,
		Reason:         reason,
		Provider:       p.Name(),
		Priority:       string(cp.VMPriority),
		VMSize:         size.Name,
		Slots:          slots,
		TokenHash:      ids.Hash(token),
		CreatedAt:      now,
		StateChangedAt: now,
	}
	err = c.cfg.Store.InTx(ctx, func(tx store.Store) error {
		if err := tx.NodeCreate(ctx, n); err != nil {
			return err
		}
		return tx.TokenCreate(ctx, store.Token{ID: ids.New("tok"), Hash: n.TokenHash, Name: "node " + n.ID, Workspace: cp.Workspace, Scope: "node:" + n.ID, CreatedAt: now})
	})
	if err != nil {
		return err
	}
	handle, err := p.Create(ctx, provider.Spec{NodeID: n.ID, Workspace: cp.Workspace, Compute: cp.Name, ServerURL: c.cfg.ServerURL(), Token: token, Slots: slots, VCPUs: size.VCPUs, MemoryGB: size.MemoryGB})
	if err != nil {
		_, _ = c.cfg.Store.NodeSetStateIf(ctx, store.NodeSetStateIfParams{ID: n.ID, From: []node.State{node.Preparing}, To: node.Unusable, Reason: "provider failed: " + err.Error(), Now: now})
		c.event(ctx, cp.Workspace, "compute", cp.Name, cp.Name, "ScaleUpFailed", fmt.Sprintf("could not create node %s: %v", n.ID, err), now)
		return fmt.Errorf("create node %s: %w", n.ID, err)
	}
	if err := c.cfg.Store.NodeSetHandle(ctx, n.ID, handle); err != nil {
		return err
	}
	c.event(ctx, cp.Workspace, "compute", cp.Name, cp.Name, "ScaleUp", fmt.Sprintf("adding node %s: %s", n.ID, reason), now)
	c.cfg.Metrics.ScaleEvents.WithLabelValues(cp.Name, "up").Inc()
	return nil
}

func providerName(cp compute.Compute) string {
	if cp.Provider == "" {
		return "local"
	}
	return cp.Provider
}

// reconcileDelete cancels what still runs (only a forced delete gets here
// with runs), removes every node, then deletes the record.
func (c *Controller) reconcileDelete(ctx context.Context, cp compute.Compute, nodes []node.Node, st snapshotState, now time.Time) error {
	for _, r := range st.runs {
		if r.Workspace != cp.Workspace || !strings.EqualFold(r.ComputeName, cp.Name) {
			continue
		}
		if r.Status.Waiting() {
			if _, err := c.cfg.Store.RunSetStatusIf(ctx, store.RunSetStatusIfParams{ID: r.ID, From: []run.Status{r.Status}, To: run.Canceled, Reason: run.ReasonComputeDeleted, Now: now}); err != nil {
				return err
			}
		} else if r.Status.Active() && r.Status != run.CancelRequested {
			if _, err := c.cfg.Store.RunSetStatusIf(ctx, store.RunSetStatusIfParams{ID: r.ID, From: []run.Status{r.Status}, To: run.CancelRequested, Reason: run.ReasonComputeDeleted, Now: now}); err != nil {
				return err
			}
		}
	}
	liveAttempts := 0
	for _, a := range st.attempts {
		for _, n := range nodes {
			if a.NodeID == n.ID {
				liveAttempts++
				c.addCancel(n.ID, a.ID)
			}
		}
	}
	if liveAttempts > 0 {
		return nil
	}
	for _, n := range nodes {
		ok, err := c.cfg.Store.NodeSetStateIf(ctx, store.NodeSetStateIfParams{ID: n.ID, From: []node.State{node.Preparing, node.Idle, node.Running}, To: node.Leaving, Reason: "compute deleted", Now: now})
		if err != nil {
			return err
		}
		if ok {
			n.State = node.Leaving
		}
		c.ensureRemoved(n)
	}
	if len(nodes) > 0 {
		return nil
	}
	if err := c.cfg.Store.ComputeDelete(ctx, cp.ID); err != nil {
		return err
	}
	c.event(ctx, cp.Workspace, "compute", cp.Name, cp.Name, "Deleted", fmt.Sprintf("compute %s deleted", cp.Name), now)
	return nil
}

// RunFilesDir is where a run's outputs/ and logs/ are kept.
func (c *Controller) RunFilesDir(runID string) string {
	return filepath.Join(c.cfg.DataDir, "runs", runID, "files")
}

// Preempt evicts a node of a compute as a cloud would: pick a running node
// (or the one named), mark it preempted, end its attempts with reason
// preempted (their runs are requeued) and evict it through the provider.
func (c *Controller) Preempt(ctx context.Context, cp compute.Compute, nodeID string) (node.Node, error) {
	nodes, err := c.cfg.Store.NodeListByCompute(ctx, cp.ID)
	if err != nil {
		return node.Node{}, err
	}
	var pick *node.Node
	for i := range nodes {
		n := &nodes[i]
		if nodeID != "" {
			if n.ID == nodeID {
				pick = n
			}
			continue
		}
		if n.State == node.Running && (pick == nil || n.ID < pick.ID) {
			pick = n
		}
	}
	if pick == nil {
		for i := range nodes {
			if nodeID == "" && nodes[i].State == node.Idle {
				pick = &nodes[i]
				break
			}
		}
	}
	if pick == nil {
		if nodeID != "" {
			return node.Node{}, node.ErrNotFound
		}
		return node.Node{}, errNoNode
	}
	if pick.State.Terminal() || pick.State == node.Leaving {
		return *pick, fmt.Errorf("%w: node %s is %s", errNodeNotLive, pick.ID, pick.State)
	}
	now := c.cfg.Clock.Now()
	if err := c.loseNode(ctx, *pick, node.Preempted, "preempted (evicted like a low-priority VM)", now); err != nil {
		return *pick, err
	}
	return c.cfg.Store.NodeGet(ctx, pick.ID)
}

var (
	errNodeTaken   = errors.New("node no longer free")
	errNoNode      = errors.New("no running or idle node to preempt")
	errNodeNotLive = errors.New("node cannot be preempted")
)

// IsNoNode reports whether Preempt found nothing to evict.
func IsNoNode(err error) bool { return errors.Is(err, errNoNode) || errors.Is(err, errNodeNotLive) }

// CancelRun asks for a run to stop; waiting runs end at once.
func (c *Controller) CancelRun(ctx context.Context, r run.Run) (run.Run, error) {
	now := c.cfg.Clock.Now()
	if r.Status.Terminal() {
		return r, nil
	}
	if r.Status.Waiting() || r.Status == run.NotStarted {
		if ok, err := c.cfg.Store.RunSetStatusIf(ctx, store.RunSetStatusIfParams{ID: r.ID, From: []run.Status{r.Status}, To: run.Canceled, Reason: "canceled by user", Now: now}); err != nil || ok {
			c.Wake()
			got, gerr := c.cfg.Store.RunGet(ctx, r.Workspace, r.ID)
			if err == nil {
				err = gerr
			}
			return got, err
		}
		r, _ = c.cfg.Store.RunGet(ctx, r.Workspace, r.ID)
	}
	if r.Status.Active() && r.Status != run.CancelRequested {
		if _, err := c.cfg.Store.RunSetStatusIf(ctx, store.RunSetStatusIfParams{ID: r.ID, From: []run.Status{r.Status}, To: run.CancelRequested, Reason: "cancel requested by user", Now: now}); err != nil {
			return r, err
		}
	}
	c.Wake()
	return c.cfg.Store.RunGet(ctx, r.Workspace, r.ID)
}

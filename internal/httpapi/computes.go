package httpapi

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/internal/compute"
	"github.com/hangar-ml/hangar/internal/controller"
	"github.com/hangar-ml/hangar/internal/ids"
	"github.com/hangar-ml/hangar/internal/node"
	"github.com/hangar-ml/hangar/internal/problem"
	"github.com/hangar-ml/hangar/internal/run"
	"github.com/hangar-ml/hangar/internal/store"
)

func (a *API) limits(providerName string) compute.Limits {
	var names []string
	for n := range a.cfg.Providers {
		names = append(names, n)
	}
	sort.Strings(names)
	return compute.Limits{Catalog: a.cfg.Catalog, ProviderHasGPUs: a.cfg.Providers[providerName], Providers: names}
}

func (a *API) computeCreate(w http.ResponseWriter, r *http.Request) error {
	ws, err := a.workspace(r)
	if err != nil {
		return err
	}
	if err := requireUser(r); err != nil {
		return err
	}
	var spec api.ComputeSpec
	if err := decode(r, &spec); err != nil {
		return err
	}
	kind, ok := compute.ParseKind(spec.Type)
	if !ok && spec.Type != "" {
		return problem.Field("type", "%q is not a compute type that can be created (creatable: cluster, alias amlcompute)", spec.Type)
	}
	now := a.cfg.Clock.Now()
	c := compute.Compute{
		ID:                         ids.New("cmp"),
		Workspace:                  ws,
		Name:                       spec.Name,
		Kind:                       kind,
		Description:                spec.Description,
		Tags:                       spec.Tags,
		VMSize:                     spec.Properties.VMSize,
		VMPriority:                 compute.Priority(strings.ToLower(spec.Properties.VMPriority)),
		Provider:                   spec.Properties.Provider,
		Python:                     spec.Properties.Python,
		IdleSecondsBeforeScaledown: compute.DefaultIdleSecondsBeforeScaledown,
		ProvisioningState:          compute.StateCreating,
		CreatedBy:                  principalOf(r).token.Name,
		CreatedAt:                  now,
		ModifiedAt:                 now,
	}
	if s := spec.Properties.ScaleSettings; s != nil {
		if s.MinNodes != nil {
			c.MinNodes = *s.MinNodes
		}
		if s.MaxNodes != nil {
			c.MaxNodes = *s.MaxNodes
		}
		if s.IdleSecondsBeforeScaledown != nil {
			c.IdleSecondsBeforeScaledown = *s.IdleSecondsBeforeScaledown
		}
	}
	c.ApplyDefaults()
	if err := c.Validate(a.limits(c.Provider)); err != nil {
		return err
	}
	if _, err := a.cfg.Store.ComputeGet(r.Context(), ws, c.Name); err == nil {
		return problem.New(problem.Conflict, "a compute named %q already exists in workspace %s (names are case-insensitive)", c.Name, ws).WithField("name").WithHint("hangar compute show " + c.Name)
	} else if !errors.Is(err, compute.ErrNotFound) {
		return err
	}
	// A cluster whose single node exceeds the quota can never scale up.
	if size, ok := a.cfg.Catalog.Lookup(c.VMSize); ok {
		limit, err := a.cfg.Ctl.QuotaLimit(r.Context(), ws, size.Family, c.VMPriority)
		if err != nil {
			return err
		}
		// nodes*VCPUs may overflow for absurd node counts; compare by division.
		if max(c.MinNodes, 1) > max(limit, 0)/size.VCPUs {
			return problem.Field("vm_size", "%d node(s) of %s need %d vCPUs but the %s %s quota is %d vCPUs", max(c.MinNodes, 1), size.Name, size.VCPUs*max(c.MinNodes, 1), size.Family, c.VMPriority, limit).WithHint(fmt.Sprintf("hangar quota set --family %s --vm-priority %s --vcpus N", size.Family, c.VMPriority))
		}
	}
	if err := a.cfg.Store.ComputeCreate(r.Context(), c); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return problem.New(problem.Conflict, "a compute named %q already exists in workspace %s", c.Name, ws).WithField("name")
		}
		return err
	}
	_ = a.cfg.Store.EventAdd(r.Context(), store.Event{Workspace: ws, Kind: "compute", Object: c.Name, Compute: c.Name, Type: "Created", Message: fmt.Sprintf("compute %s created (%s, %s, %d..%d nodes)", c.Name, c.VMSize, c.VMPriority, c.MinNodes, c.MaxNodes), Time: now})
	a.cfg.Ctl.Wake()
	out, err := a.computeView(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (a *API) getCompute(r *http.Request) (compute.Compute, error) {
	ws, err := a.workspace(r)
	if err != nil {
		return compute.Compute{}, err
	}
	name := r.PathValue("name")
	c, err := a.cfg.Store.ComputeGet(r.Context(), ws, name)
	if errors.Is(err, compute.ErrNotFound) {
		return c, problem.New(problem.NotFound, "compute %q not found in workspace %s", name, ws).WithField("name").WithHint("hangar compute list")
	}
	return c, err
}

func (a *API) computeGet(w http.ResponseWriter, r *http.Request) error {
	c, err := a.getCompute(r)
	if err != nil {
		return err
	}
	out, err := a.computeView(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) computeList(w http.ResponseWriter, r *http.Request) error {
	ws, err := a.workspace(r)
	if err != nil {
		return err
	}
	cs, err := a.cfg.Store.ComputeList(r.Context(), ws)
	if err != nil {
		return err
	}
	out := []api.Compute{}
	for _, c := range cs {
		v, err := a.computeView(r, c)
		if err != nil {
			return err
		}
		v.ScaleEvents = nil
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, api.List[api.Compute]{Value: out})
	return nil
}

// computeView converts a compute to its API document with live status.
func (a *API) computeView(r *http.Request, c compute.Compute) (api.Compute, error) {
	ctx := r.Context()
	out := api.Compute{
		Name:               c.Name,
		Type:               string(c.Kind),
		Description:        c.Description,
		Tags:               c.Tags,
		ProvisioningState:  string(c.ProvisioningState),
		ProvisioningErrors: []api.ProvisioningError{},
		CreatedBy:          c.CreatedBy,
		CreatedOn:          c.CreatedAt,
		ModifiedOn:         c.ModifiedAt,
	}
	for _, e := range c.ProvisioningErrors {
		out.ProvisioningErrors = append(out.ProvisioningErrors, api.ProvisioningError{Code: e.Code, Message: e.Message})
	}
	if c.Kind == compute.KindLocal {
		out.Properties.Python = c.Python
		return out, nil
	}
	minN, maxN, idle := c.MinNodes, c.MaxNodes, c.IdleSecondsBeforeScaledown
	out.Properties = api.ComputeProperties{
		VMSize: c.VMSize, VMPriority: string(c.VMPriority), Provider: c.Provider, Python: c.Python,
		ScaleSettings: &api.ScaleSettings{MinNodes: &minN, MaxNodes: &maxN, IdleSecondsBeforeScaledown: &idle},
	}
	size, hasSize := a.cfg.Catalog.Lookup(c.VMSize)
	if hasSize {
		s := toAPISize(size)
		out.Properties.VM = &s
	}
	nodes, err := a.cfg.Store.NodeListByCompute(ctx, c.ID)
	if err != nil {
		return out, err
	}
	obs := a.cfg.Ctl.Observed(c.ID)
	st := &api.ComputeStatus{AllocationState: "steady", TargetNodeCount: obs.Target, QueuedRuns: obs.Queued, RunningRuns: obs.Running, WaitReason: obs.WaitReason}
	for _, n := range nodes {
		if n.State.Counted() {
			st.CurrentNodeCount++
		}
		switch n.State {
		case node.Idle:
			st.NodeStateCounts.Idle++
		case node.Running:
			st.NodeStateCounts.Running++
		case node.Preparing:
			st.NodeStateCounts.Preparing++
		case node.Unusable:
			st.NodeStateCounts.Unusable++
		case node.Leaving:
			st.NodeStateCounts.Leaving++
		case node.Preempted:
			st.NodeStateCounts.Preempted++
		}
	}
	if obs.Resizing || st.NodeStateCounts.Preparing > 0 || st.NodeStateCounts.Leaving > 0 {
		st.AllocationState = "resizing"
	}
	if st.TargetNodeCount == 0 && obs == (controller.Observed{}) {
		st.TargetNodeCount = st.CurrentNodeCount
	}
	out.Status = st
	evs, err := a.cfg.Store.EventList(ctx, c.Workspace, c.Name, 50)
	if err != nil {
		return out, err
	}
	for _, e := range evs {
		switch e.Type {
		case "ScaleUp", "ScaleDown", "ScaleUpFailed", "Preempted", "NodeUnusable":
			if len(out.ScaleEvents) < 10 {
				out.ScaleEvents = append(out.ScaleEvents, toAPIEvent(e))
			}
		}
	}
	hours, err := a.cfg.Store.NodeHoursByCompute(ctx, c.ID, a.cfg.Clock.Now())
	if err != nil {
		return out, err
	}
	price := size.PricePerHour
	if c.VMPriority == compute.LowPriority {
		price = size.LowPriorityPricePerHour
	}
	out.Cost = &api.Cost{NodeHours: round(hours, 4), PricePerHour: price, Amount: round(hours*price, 4), Currency: "USD"}
	return out, nil
}

func round(v float64, digits int) float64 {
	p := 1.0
	for i := 0; i < digits; i++ {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

func toAPIEvent(e store.Event) api.Event {
	return api.Event{ID: e.ID, Time: e.Time, Kind: e.Kind, Object: e.Object, Compute: e.Compute, Type: e.Type, Message: e.Message}
}

func (a *API) computeUpdate(w http.ResponseWriter, r *http.Request) error {
	if err := requireUser(r); err != nil {
		return err
	}
	c, err := a.getCompute(r)
	if err != nil {
		return err
	}
	var up api.ComputeUpdate
	if err := decode(r, &up); err != nil {
		return err
	}
	if c.Kind == compute.KindLocal {
		return problem.Field("name", "the built-in compute local cannot be updated")
	}
	if c.ProvisioningState == compute.StateDeleting {
		return problem.New(problem.Conflict, "compute %s is being deleted", c.Name)
	}
	if up.Description != nil {
		c.Description = *up.Description
	}
	if up.Tags != nil {
		c.Tags = up.Tags
	}
	if s := up.ScaleSettings; s != nil {
		if s.MinNodes != nil {
			c.MinNodes = *s.MinNodes
		}
		if s.MaxNodes != nil {
			c.MaxNodes = *s.MaxNodes
		}
		if s.IdleSecondsBeforeScaledown != nil {
			c.IdleSecondsBeforeScaledown = *s.IdleSecondsBeforeScaledown
		}
	}
	if err := c.Validate(a.limits(c.Provider)); err != nil {
		return err
	}
	c.ModifiedAt = a.cfg.Clock.Now()
	if err := a.cfg.Store.ComputeUpdate(r.Context(), c); err != nil {
		return err
	}
	_ = a.cfg.Store.EventAdd(r.Context(), store.Event{Workspace: c.Workspace, Kind: "compute", Object: c.Name, Compute: c.Name, Type: "Updated", Message: fmt.Sprintf("scale settings now %d..%d nodes, idle %ds", c.MinNodes, c.MaxNodes, c.IdleSecondsBeforeScaledown), Time: c.ModifiedAt})
	a.cfg.Ctl.Wake()
	out, err := a.computeView(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) computeDelete(w http.ResponseWriter, r *http.Request) error {
	if err := requireUser(r); err != nil {
		return err
	}
	c, err := a.getCompute(r)
	if err != nil {
		return err
	}
	if c.Kind == compute.KindLocal {
		return problem.Field("name", "the built-in compute local cannot be deleted")
	}
	force := queryBool(r, "force")
	if !force {
		runs, err := a.cfg.Store.RunList(r.Context(), store.RunFilter{Workspace: c.Workspace, ComputeName: c.Name, Statuses: liveStatuses})
		if err != nil {
			return err
		}
		if len(runs) > 0 {
			var names []string
			for i, rr := range runs {
				if i == 10 {
					names = append(names, fmt.Sprintf("and %d more", len(runs)-10))
					break
				}
				names = append(names, fmt.Sprintf("%s (%s)", rr.ID, rr.Status))
			}
			return problem.New(problem.Conflict, "compute %s has %d queued or running run(s): %s", c.Name, len(runs), strings.Join(names, ", ")).
				WithHint(fmt.Sprintf("hangar compute delete %s --force   (cancels them first)", c.Name))
		}
	}
	if c.ProvisioningState != compute.StateDeleting {
		c.ProvisioningState = compute.StateDeleting
		c.ModifiedAt = a.cfg.Clock.Now()
		if err := a.cfg.Store.ComputeUpdate(r.Context(), c); err != nil {
			return err
		}
		_ = a.cfg.Store.EventAdd(r.Context(), store.Event{Workspace: c.Workspace, Kind: "compute", Object: c.Name, Compute: c.Name, Type: "Deleting", Message: fmt.Sprintf("compute %s is being deleted (force=%v)", c.Name, force), Time: c.ModifiedAt})
	}
	a.cfg.Ctl.Wake()
	out, err := a.computeView(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, out)
	return nil
}

var liveStatuses = []run.Status{run.NotStarted, run.Queued, run.Provisioning, run.Preparing, run.Running, run.Finalizing, run.CancelRequested}

func (a *API) computeNodes(w http.ResponseWriter, r *http.Request) error {
	c, err := a.getCompute(r)
	if err != nil {
		return err
	}
	nodes, err := a.cfg.Store.NodeListByCompute(r.Context(), c.ID)
	if err != nil {
		return err
	}
	attempts, err := a.cfg.Store.AttemptListLive(r.Context())
	if err != nil {
		return err
	}
	out := []api.Node{}
	for _, n := range nodes {
		v := toAPINode(n)
		for _, at := range attempts {
			if at.NodeID == n.ID {
				v.RunIDs = append(v.RunIDs, at.RunID)
			}
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, api.List[api.Node]{Value: out})
	return nil
}

func toAPINode(n node.Node) api.Node {
	return api.Node{ID: n.ID, State: string(n.State), Reason: n.Reason, VMSize: n.VMSize, VMPriority: n.Priority, Provider: n.Provider,
		RunIDs: []string{}, CreatedOn: n.CreatedAt, StateChangedOn: n.StateChangedAt, IdleSince: timePtr(n.IdleSince), LastHeartbeat: timePtr(n.LastHeartbeat)}
}

func (a *API) computePreempt(w http.ResponseWriter, r *http.Request) error {
	if !principalOf(r).admin() {
		return problem.New(problem.Forbidden, "preempting a node requires an admin token")
	}
	c, err := a.getCompute(r)
	if err != nil {
		return err
	}
	var req api.PreemptRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	n, err := a.cfg.Ctl.Preempt(r.Context(), c, req.Node)
	switch {
	case errors.Is(err, node.ErrNotFound):
		return problem.Field("node", "node %q is not a node of compute %s", req.Node, c.Name).WithHint("hangar compute nodes " + c.Name)
	case controller.IsNoNode(err):
		return problem.New(problem.Conflict, "compute %s: %v", c.Name, err).WithHint("hangar compute nodes " + c.Name)
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, toAPINode(n))
	return nil
}

func (a *API) quotaList(w http.ResponseWriter, r *http.Request) error {
	ws, err := a.workspace(r)
	if err != nil {
		return err
	}
	out, err := a.quotas(r, ws)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.List[api.Quota]{Value: out})
	return nil
}

func (a *API) quotas(r *http.Request, ws string) ([]api.Quota, error) {
	ctx := r.Context()
	cs, err := a.cfg.Store.ComputeList(ctx, ws)
	if err != nil {
		return nil, err
	}
	used := map[string]int{}
	for _, c := range cs {
		if c.Kind != compute.KindCluster {
			continue
		}
		size, ok := a.cfg.Catalog.Lookup(c.VMSize)
		if !ok {
			continue
		}
		nodes, err := a.cfg.Store.NodeListByCompute(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		for _, n := range nodes {
			if n.State.Counted() {
				used[size.Family+"/"+string(c.VMPriority)] += size.VCPUs
			}
		}
	}
	seen := map[string]bool{}
	var out []api.Quota
	for _, s := range a.cfg.Catalog.All() {
		for _, p := range []compute.Priority{compute.Dedicated, compute.LowPriority} {
			key := s.Family + "/" + string(p)
			if seen[key] {
				continue
			}
			seen[key] = true
			limit, err := a.cfg.Ctl.QuotaLimit(ctx, ws, s.Family, p)
			if err != nil {
				return nil, err
			}
			out = append(out, api.Quota{Family: s.Family, VMPriority: string(p), Limit: limit, Used: used[key]})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Family != out[j].Family {
			return out[i].Family < out[j].Family
		}
		return out[i].VMPriority < out[j].VMPriority
	})
	return out, nil
}

func (a *API) quotaSet(w http.ResponseWriter, r *http.Request) error {
	ws, err := a.workspace(r)
	if err != nil {
		return err
	}
	if err := requireUser(r); err != nil {
		return err
	}
	var req api.QuotaSet
	if err := decode(r, &req); err != nil {
		return err
	}
	var l problem.List
	family := ""
	var families []string
	for _, s := range a.cfg.Catalog.All() {
		if strings.EqualFold(s.Family, req.Family) {
			family = s.Family
		}
		if len(families) == 0 || families[len(families)-1] != s.Family {
			families = append(families, s.Family)
		}
	}
	if family == "" {
		sort.Strings(families)
		l.Add("family", "%q is not a VM family of the catalog; families: %s", req.Family, strings.Join(dedupe(families), ", "))
	}
	prio := compute.Priority(strings.ToLower(req.VMPriority))
	if prio == "" {
		prio = compute.Dedicated
	}
	if prio != compute.Dedicated && prio != compute.LowPriority {
		l.Add("vm_priority", "%q must be dedicated or lowpriority", req.VMPriority)
	}
	if req.Limit < 0 {
		l.Add("vcpus_limit", "(%d) must be >= 0", req.Limit)
	} else if req.Limit > math.MaxInt32 { // the store keeps it in a 32-bit column
		l.Add("vcpus_limit", "(%d) must be <= %d", req.Limit, math.MaxInt32)
	}
	if err := l.Err(); err != nil {
		return err
	}
	if err := a.cfg.Store.QuotaSet(r.Context(), store.Quota{Workspace: ws, Family: family, Priority: prio, VCPUs: req.Limit}); err != nil {
		return err
	}
	_ = a.cfg.Store.EventAdd(r.Context(), store.Event{Workspace: ws, Kind: "quota", Object: family, Type: "QuotaSet", Message: fmt.Sprintf("quota %s %s set to %d vCPUs", family, prio, req.Limit), Time: a.cfg.Clock.Now()})
	a.cfg.Ctl.Wake()
	out, err := a.quotas(r, ws)
	if err != nil {
		return err
	}
	for _, q := range out {
		if q.Family == family && q.VMPriority == string(prio) {
			writeJSON(w, http.StatusOK, q)
			return nil
		}
	}
	return fmt.Errorf("quota %s %s not listed after set", family, prio)
}

func dedupe(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || s[i-1] != v {
			out = append(out, v)
		}
	}
	return out
}

func (a *API) eventList(w http.ResponseWriter, r *http.Request) error {
	ws, err := a.workspace(r)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 50)
	if err != nil {
		return err
	}
	if limit == 0 || limit > 1000 {
		return problem.Field("limit", "must be between 1 and 1000")
	}
	evs, err := a.cfg.Store.EventList(r.Context(), ws, r.URL.Query().Get("compute"), int(limit))
	if err != nil {
		return err
	}
	out := []api.Event{}
	for _, e := range evs {
		out = append(out, toAPIEvent(e))
	}
	writeJSON(w, http.StatusOK, api.List[api.Event]{Value: out})
	return nil
}

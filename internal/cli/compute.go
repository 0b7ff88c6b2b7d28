package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/client"
	"github.com/hangar-ml/hangar/internal/compute"
)

func (a *app) computeCmd() *cobra.Command {
	c := group("compute", "Create and manage compute targets (clusters)", "computetarget")
	c.AddCommand(
		a.computeCreateCmd(),
		a.computeListCmd(),
		a.computeShowCmd(),
		a.computeUpdateCmd(),
		a.computeDeleteCmd(),
		a.computeNodesCmd(),
		a.computeSizesCmd(),
		a.computePreemptCmd(),
	)
	return c
}

// computeFlags are the flags of compute create.
type computeFlags struct {
	file        string
	name        string
	vmSize      string
	vmPriority  string
	provider    string
	python      string
	description string
	minNodes    int
	maxNodes    int
	idle        int
	tags        []string
	noWait      bool
}

func (a *app) computeCreateCmd() *cobra.Command {
	var f computeFlags
	cmd := &cobra.Command{
		Use:   "create (amlcompute|cluster) --name NAME --max-nodes N [flags] | create -f FILE",
		Short: "Create a compute target and wait until it is provisioned",
		Long: `Create a compute target. The type is cluster (alias amlcompute): an
autoscaling set of nodes between --min-nodes and --max-nodes.

Only the flags you give are sent; the server applies the defaults
(vm size STANDARD_D2_V2, min nodes 0, idle 1800 s, dedicated, provider local).
With -f the spec is read from a YAML file whose keys are the writable fields
of "compute show -o json"; flags given as well override the file.

The command waits until provisioning ends, showing progress on stderr, and
exits 1 if it failed. --no-wait returns at once.`,
		Example: `  hangar compute create amlcompute --name cpu-cluster --max-nodes 4
  hangar compute create cluster --name gpu --vm-size Standard_NC6 --max-nodes 2 --vm-priority lowpriority
  hangar compute create -f compute.yml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("unexpected argument %q (create takes one compute type)", args[1])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := a.buildComputeSpec(args, f, cmd.Flags().Changed)
			if err != nil {
				return err
			}
			return a.computeCreate(cmd.Context(), spec, f.noWait)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "read the compute spec from a YAML `FILE`")
	fl.StringVarP(&f.name, "name", "n", "", "name of the compute (2-24 letters, digits and -, starting with a letter)")
	fl.StringVarP(&f.vmSize, "vm-size", "s", "", "VM size of the nodes (default STANDARD_D2_V2; see hangar compute sizes)")
	fl.IntVar(&f.maxNodes, "max-nodes", 0, "most nodes the cluster scales up to (required, >= 1)")
	fl.IntVar(&f.minNodes, "min-nodes", 0, "fewest nodes kept, even when idle")
	fl.IntVar(&f.idle, "idle-seconds-before-scaledown", 0, "seconds a node stays idle before it is removed (default 1800)")
	fl.StringVar(&f.vmPriority, "vm-priority", "", "dedicated or lowpriority (default dedicated)")
	fl.StringArrayVar(&f.tags, "tag", nil, "tag `KEY=VALUE` (repeatable)")
	fl.StringVar(&f.description, "description", "", "description of the compute")
	fl.StringVar(&f.provider, "provider", "", "node provider (default local)")
	fl.StringVar(&f.python, "python", "", "Python interpreter runs use on this compute (default python3)")
	fl.BoolVar(&f.noWait, "no-wait", false, "return without waiting for provisioning to end")
	return cmd
}

// buildComputeSpec turns the arguments and the flags the user set into the
// create body. Flags not set are left out so the server applies defaults.
//
// The file may be what "compute show -o yaml" printed: its read-only
// fields (status, cost, …) are ignored, with a note on stderr.
func (a *app) buildComputeSpec(args []string, f computeFlags, changed func(string) bool) (api.ComputeSpec, error) {
	var spec api.ComputeSpec
	if f.file != "" {
		if err := a.decodeFile(f.file, &spec, api.Compute{}); err != nil {
			return spec, err
		}
		spec.Type = canonicalKind(spec.Type)
	}
	if len(args) == 1 {
		kind := canonicalKind(args[0])
		if spec.Type != "" && spec.Type != kind {
			return spec, usagef("type %q in %s conflicts with %q on the command line", spec.Type, f.file, args[0])
		}
		spec.Type = kind
	} else if f.file == "" {
		return spec, usagef("missing the compute type: amlcompute or cluster (or -f FILE)")
	}
	if changed("name") {
		spec.Name = f.name
	}
	if changed("description") {
		spec.Description = f.description
	}
	if changed("tag") {
		tags, err := parseKVs("--tag", f.tags)
		if err != nil {
			return spec, err
		}
		if spec.Tags == nil {
			spec.Tags = map[string]string{}
		}
		for k, v := range tags {
			spec.Tags[k] = v
		}
	}
	p := &spec.Properties
	if changed("vm-size") {
		p.VMSize = f.vmSize
	}
	if changed("vm-priority") {
		p.VMPriority = f.vmPriority
	}
	if changed("provider") {
		p.Provider = f.provider
	}
	if changed("python") {
		p.Python = f.python
	}
	setScale(&p.ScaleSettings, f.minNodes, f.maxNodes, f.idle, changed)
	return spec, nil
}

// setScale sets the scale settings whose flags were given, creating *ss
// when needed.
func setScale(ss **api.ScaleSettings, minNodes, maxNodes, idle int, changed func(string) bool) {
	for _, f := range []struct {
		flag  string
		v     int
		field func(*api.ScaleSettings) **int
	}{
		{"min-nodes", minNodes, func(s *api.ScaleSettings) **int { return &s.MinNodes }},
		{"max-nodes", maxNodes, func(s *api.ScaleSettings) **int { return &s.MaxNodes }},
		{"idle-seconds-before-scaledown", idle, func(s *api.ScaleSettings) **int { return &s.IdleSecondsBeforeScaledown }},
	} {
		if !changed(f.flag) {
			continue
		}
		if *ss == nil {
			*ss = &api.ScaleSettings{}
		}
		v := f.v
		*f.field(*ss) = &v
	}
}

// canonicalKind maps v1 aliases (amlcompute) to the API type; unknown words
// pass through for the server to refuse.
func canonicalKind(s string) string {
	if k, ok := compute.ParseKind(s); ok {
		return string(k)
	}
	return s
}

func (a *app) computeCreate(ctx context.Context, spec api.ComputeSpec, noWait bool) error {
	cl, err := a.client()
	if err != nil {
		return err
	}
	c, err := cl.ComputeCreate(ctx, spec)
	if err != nil {
		return err
	}
	if noWait {
		a.progress("Creating %s (not waiting; see: hangar compute show %s)\n", c.Name, c.Name)
		return a.emit(c, func(w io.Writer) { computeRows(w, []api.Compute{*c}) })
	}
	return a.waitCompute(ctx, cl, "Creating", c)
}

// waitCompute polls until the compute's provisioning ends, then prints it.
// It exits 1 (after printing the compute and its errors) when it Failed.
func (a *app) waitCompute(ctx context.Context, cl *client.Client, verb string, c *api.Compute) error {
	a.progress("%s %s…", verb, c.Name)
	name := c.Name
	c, err := pollUntil(ctx, a, c,
		func(c *api.Compute) bool { return !provisioning(c.ProvisioningState) },
		func(ctx context.Context) (*api.Compute, error) { return cl.ComputeGet(ctx, name) })
	if err != nil {
		return err
	}
	if c.ProvisioningState == string(compute.StateFailed) {
		a.progress(" Failed\n")
		if err := a.emit(c, func(w io.Writer) { computeRows(w, []api.Compute{*c}) }); err != nil {
			return err
		}
		if len(c.ProvisioningErrors) == 0 {
			fmt.Fprintf(a.stderr, "Error: provisioning of %s failed\n", c.Name)
		}
		for _, pe := range c.ProvisioningErrors {
			fmt.Fprintf(a.stderr, "Error: %s: %s\n", pe.Code, pe.Message)
		}
		return errSilent
	}
	a.progress(" %s (%s)\n", c.ProvisioningState, nodeSummary(c))
	return a.emit(c, func(w io.Writer) { computeRows(w, []api.Compute{*c}) })
}

// provisioning reports whether a compute is still being created or updated.
func provisioning(state string) bool {
	switch compute.ProvisioningState(state) {
	case compute.StateCreating, compute.StateUpdating:
		return true
	}
	return false
}

// nodeSummary says how many nodes a cluster has and what it will do next,
// e.g. "0 of 2 max nodes; scales up when runs are queued".
func nodeSummary(c *api.Compute) string {
	ss := c.Properties.ScaleSettings
	if c.Type != string(compute.KindCluster) || ss == nil || ss.MaxNodes == nil {
		return "ready"
	}
	cur := 0
	if c.Status != nil {
		cur = c.Status.CurrentNodeCount
	}
	minNodes := 0
	if ss.MinNodes != nil {
		minNodes = *ss.MinNodes
	}
	s := fmt.Sprintf("%d of %d max nodes; ", cur, *ss.MaxNodes)
	switch {
	case minNodes == 0:
		s += "scales up when runs are queued"
	case cur < minNodes:
		s += fmt.Sprintf("scaling up to the minimum of %d", minNodes)
	default:
		s += fmt.Sprintf("keeps at least %d, scales up when runs are queued", minNodes)
	}
	return s
}

// computeRows writes the compute list table.
func computeRows(w io.Writer, cs []api.Compute) {
	row(w, "NAME", "TYPE", "STATE", "VM SIZE", "PRIORITY", "NODES", "MIN", "MAX", "QUEUED", "RUNNING")
	for _, c := range cs {
		p := c.Properties
		var minN, maxN *int
		if p.ScaleSettings != nil {
			minN, maxN = p.ScaleSettings.MinNodes, p.ScaleSettings.MaxNodes
		}
		nodes, queued, running := "-", "-", "-"
		if c.Status != nil {
			nodes = fmt.Sprint(c.Status.CurrentNodeCount)
			queued = fmt.Sprint(c.Status.QueuedRuns)
			running = fmt.Sprint(c.Status.RunningRuns)
		}
		row(w, c.Name, c.Type, c.ProvisioningState, p.VMSize, p.VMPriority, nodes, intPtr(minN), intPtr(maxN), queued, running)
	}
}

func (a *app) computeListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the compute targets of the workspace",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return callAndEmit(a, func(cl *client.Client) ([]api.Compute, error) { return cl.ComputeList(cmd.Context()) }, computeRows)
		},
	}
}

func (a *app) computeShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "show NAME",
		Short:   "Show a compute target: state, size, scale settings, nodes, cost and recent scale events",
		Example: "  hangar compute show cpu-cluster\n  hangar compute show cpu-cluster -o json",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return callAndEmit(a, func(cl *client.Client) (*api.Compute, error) { return cl.ComputeGet(cmd.Context(), args[0]) }, a.computeDetail)
		},
	}
}

// computeDetail writes the key facts of one compute.
func (a *app) computeDetail(w io.Writer, c *api.Compute) {
	kv := kvTable{w}
	kv.add("Name", c.Name)
	kv.add("Type", c.Type)
	kv.add("State", c.ProvisioningState)
	for _, pe := range c.ProvisioningErrors {
		kv.add("Error", pe.Code+": "+pe.Message)
	}
	if c.Description != "" {
		kv.add("Description", c.Description)
	}
	if len(c.Tags) > 0 {
		kv.add("Tags", sortedKV(c.Tags))
	}
	p := c.Properties
	if p.VMSize != "" {
		size := p.VMSize
		if vm := p.VM; vm != nil {
			size += fmt.Sprintf(" (%d vCPUs, %g GB", vm.VCPUs, vm.MemoryGB)
			if vm.GPUs > 0 {
				size += fmt.Sprintf(", %d GPUs", vm.GPUs)
			}
			size += ")"
		}
		kv.add("VM size", size)
	}
	if p.VMPriority != "" {
		kv.add("VM priority", p.VMPriority)
	}
	if p.Provider != "" {
		kv.add("Provider", p.Provider)
	}
	if p.Python != "" {
		kv.add("Python", p.Python)
	}
	if ss := p.ScaleSettings; ss != nil {
		kv.add("Scale", fmt.Sprintf("min %s, max %s nodes; idle %ss before scale-down", intPtr(ss.MinNodes), intPtr(ss.MaxNodes), intPtr(ss.IdleSecondsBeforeScaledown)))
	}
	if st := c.Status; st != nil {
		n := st.NodeStateCounts
		kv.add("Nodes", fmt.Sprintf("%d (target %d, %s): %d idle, %d running, %d preparing, %d leaving, %d unusable, %d preempted",
			st.CurrentNodeCount, st.TargetNodeCount, st.AllocationState, n.Idle, n.Running, n.Preparing, n.Leaving, n.Unusable, n.Preempted))
		kv.add("Runs", fmt.Sprintf("%d queued, %d running", st.QueuedRuns, st.RunningRuns))
		if st.WaitReason != "" {
			kv.add("Waiting", st.WaitReason)
		}
	}
	if cost := c.Cost; cost != nil {
		kv.add("Cost", fmt.Sprintf("%s so far (%.2f node-hours at %s/hour)", money(cost.Amount, cost.Currency), cost.NodeHours, money(cost.PricePerHour, cost.Currency)))
	}
	if c.CreatedBy != "" {
		kv.add("Created by", c.CreatedBy)
	}
	kv.add("Created", timestamp(&c.CreatedOn))
	kv.add("Modified", timestamp(&c.ModifiedOn))
	if len(c.ScaleEvents) > 0 {
		flush(w)
		fmt.Fprintln(w, "Recent scale events:")
		events := c.ScaleEvents
		if len(events) > 10 {
			events = events[len(events)-10:]
		}
		for _, e := range events {
			fmt.Fprintf(w, "  %s\t%s: %s\n", timestamp(&e.Time), e.Type, e.Message)
		}
	}
}

// updateFlags are the flags of compute update.
type updateFlags struct {
	minNodes, maxNodes, idle int
	description              string
	tags                     []string
	noWait                   bool
}

func (a *app) computeUpdateCmd() *cobra.Command {
	var f updateFlags
	cmd := &cobra.Command{
		Use:   "update NAME [--min-nodes N] [--max-nodes N] [--idle-seconds-before-scaledown S] [--description D] [--tag K=V]...",
		Short: "Change a cluster's scale settings, description or tags",
		Long: `Change a cluster's scale settings, description or tags. Only the flags
given are changed. --tag replaces the compute's tags with the ones given.`,
		Example: "  hangar compute update cpu-cluster --max-nodes 8 --idle-seconds-before-scaledown 600",
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := buildComputeUpdate(f, cmd.Flags().Changed)
			if err != nil {
				return err
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			c, err := cl.ComputeUpdate(cmd.Context(), args[0], u)
			if err != nil {
				return err
			}
			if f.noWait {
				return a.emit(c, func(w io.Writer) { computeRows(w, []api.Compute{*c}) })
			}
			return a.waitCompute(cmd.Context(), cl, "Updating", c)
		},
	}
	fl := cmd.Flags()
	fl.IntVar(&f.minNodes, "min-nodes", 0, "fewest nodes kept, even when idle")
	fl.IntVar(&f.maxNodes, "max-nodes", 0, "most nodes the cluster scales up to")
	fl.IntVar(&f.idle, "idle-seconds-before-scaledown", 0, "seconds a node stays idle before it is removed")
	fl.StringVar(&f.description, "description", "", "description of the compute")
	fl.StringArrayVar(&f.tags, "tag", nil, "tag `KEY=VALUE` (repeatable; replaces all tags)")
	fl.BoolVar(&f.noWait, "no-wait", false, "return without waiting for the update to end")
	return cmd
}

// buildComputeUpdate makes the PATCH body from the flags the user set.
func buildComputeUpdate(f updateFlags, changed func(string) bool) (api.ComputeUpdate, error) {
	var u api.ComputeUpdate
	set := false
	if changed("description") {
		d := f.description
		u.Description, set = &d, true
	}
	if changed("tag") {
		tags, err := parseKVs("--tag", f.tags)
		if err != nil {
			return u, err
		}
		u.Tags, set = tags, true
	}
	setScale(&u.ScaleSettings, f.minNodes, f.maxNodes, f.idle, changed)
	if u.ScaleSettings != nil {
		set = true
	}
	if !set {
		return u, usagef("nothing to update: give at least one of --min-nodes, --max-nodes, --idle-seconds-before-scaledown, --description, --tag")
	}
	return u, nil
}

func (a *app) computeDeleteCmd() *cobra.Command {
	var force, noWait bool
	cmd := &cobra.Command{
		Use:   "delete NAME [--force] [--no-wait]",
		Short: "Delete a compute target and its nodes",
		Long: `Delete a compute target and its nodes. The server refuses while runs are
queued or running on it, naming them; --force cancels them first (they end
Canceled with reason "compute deleted"; their logs and outputs are kept).
The command waits until the compute is gone; --no-wait returns at once.`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			ctx, name := cmd.Context(), args[0]
			if err := cl.ComputeDelete(ctx, name, force); err != nil {
				return err
			}
			if noWait {
				a.progress("Deleting %s (not waiting)\n", name)
				return nil
			}
			return a.waitComputeGone(ctx, cl, name)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "cancel the compute's queued and running runs first")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return without waiting for the compute to be gone")
	return cmd
}

// pollUntil calls get every poll interval until done accepts what it
// returned, and returns that; the wait commands share it. x is what the
// server last said, so no call is made when it is done already. On an
// error it ends the progress line the caller began.
func pollUntil[T any](ctx context.Context, a *app, x T, done func(T) bool, get func(context.Context) (T, error)) (T, error) {
	for !done(x) {
		err := a.wait(ctx)
		if err == nil {
			x, err = get(ctx)
		}
		if err != nil {
			a.progress("\n")
			return x, err
		}
	}
	return x, nil
}

// waitComputeGone polls until the compute answers 404. It stops early,
// with the provisioning errors, when the deletion Failed.
func (a *app) waitComputeGone(ctx context.Context, cl *client.Client, name string) error {
	return a.waitGone(ctx, name, func(ctx context.Context) error {
		c, err := cl.ComputeGet(ctx, name)
		if err != nil || c.ProvisioningState != string(compute.StateFailed) {
			return err
		}
		a.progress(" Failed\n")
		for _, pe := range c.ProvisioningErrors {
			fmt.Fprintf(a.stderr, "Error: %s: %s\n", pe.Code, pe.Message)
		}
		return errSilent
	})
}

// waitGone shows "Deleting NAME…" and calls get every poll interval until
// it answers 404, the one way a delete command learns that the server
// finished. get returns nil while the thing is still there; any other
// error ends the wait (errSilent when get has already said why).
func (a *app) waitGone(ctx context.Context, name string, get func(context.Context) error) error {
	a.progress("Deleting %s…", name)
	for {
		err := get(ctx)
		if client.IsNotFound(err) {
			a.progress(" done\n")
			return nil
		}
		if err == nil {
			err = a.wait(ctx)
		}
		if err != nil {
			if !errors.Is(err, errSilent) {
				a.progress("\n")
			}
			return err
		}
	}
}

func (a *app) computeNodesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "nodes NAME",
		Short: "List the nodes of a cluster",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return callAndEmit(a, func(cl *client.Client) ([]api.Node, error) { return cl.ComputeNodes(cmd.Context(), args[0]) }, a.nodeRows)
		},
	}
}

func (a *app) nodeRows(w io.Writer, ns []api.Node) {
	now := a.now()
	row(w, "ID", "STATE", "VM SIZE", "PRIORITY", "RUNS", "AGE", "IDLE FOR", "REASON")
	for _, n := range ns {
		idle := "-"
		if n.IdleSince != nil && n.State == "idle" {
			idle = age(now, *n.IdleSince)
		}
		row(w, n.ID, n.State, n.VMSize, n.VMPriority, strings.Join(n.RunIDs, ","), age(now, n.CreatedOn), idle, n.Reason)
	}
}

func (a *app) computeSizesCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "sizes",
		Aliases: []string{"list-sizes"},
		Short:   "List the VM sizes a cluster can use, with prices",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return callAndEmit(a, func(cl *client.Client) ([]api.VMSize, error) { return cl.VMSizes(cmd.Context()) }, sizeRows)
		},
	}
}

func sizeRows(w io.Writer, sizes []api.VMSize) {
	row(w, "NAME", "FAMILY", "VCPUS", "MEMORY GB", "GPUS", "$/HOUR", "LOW PRIORITY $/HOUR")
	for _, s := range sizes {
		row(w, s.Name, s.Family, s.VCPUs, fmt.Sprintf("%g", s.MemoryGB), s.GPUs, fmt.Sprintf("%.3f", s.PricePerHour), fmt.Sprintf("%.3f", s.LowPriorityPricePerHour))
	}
}

func (a *app) computePreemptCmd() *cobra.Command {
	var node string
	cmd := &cobra.Command{
		Use:   "preempt NAME [--node ID]",
		Short: "Evict a node the way a cloud preempts a low-priority VM (admin)",
		Long: `Evict a node of a cluster the way a cloud preempts a low-priority VM:
SIGTERM, a grace period, then kill. The node becomes preempted and its run
goes back to the queue (up to its max preemption retries). Without --node a
running node is chosen.`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			n, err := cl.ComputePreempt(cmd.Context(), args[0], node)
			if err != nil {
				return err
			}
			if n.ID != "" {
				a.progress("Preempted node %s of %s\n", n.ID, args[0])
			} else {
				a.progress("Preemption of a node of %s requested\n", args[0])
			}
			return a.emit(n, func(w io.Writer) {
				if n.ID != "" {
					a.nodeRows(w, []api.Node{*n})
				}
			})
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "the node to preempt (default: a running node)")
	return cmd
}

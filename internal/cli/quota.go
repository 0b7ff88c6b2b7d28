package cli

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/client"
)

func (a *app) quotaCmd() *cobra.Command {
	c := group("quota", "Show and set the workspace's vCPU quotas per VM family and priority")
	c.AddCommand(a.quotaListCmd(), a.quotaSetCmd())
	return c
}

func quotaRows(w io.Writer, qs []api.Quota) {
	row(w, "FAMILY", "PRIORITY", "USED VCPUS", "LIMIT")
	for _, q := range qs {
		row(w, q.Family, q.VMPriority, q.Used, q.Limit)
	}
}

func (a *app) quotaListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List vCPU quotas and their use",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return callAndEmit(a, func(cl *client.Client) ([]api.Quota, error) { return cl.QuotaList(cmd.Context()) }, quotaRows)
		},
	}
}

func (a *app) quotaSetCmd() *cobra.Command {
	var q api.QuotaSet
	cmd := &cobra.Command{
		Use:     "set --family F --vm-priority dedicated|lowpriority --vcpus N",
		Short:   "Set the vCPU limit of one VM family and priority",
		Example: "  hangar quota set --family standardDv2Family --vm-priority dedicated --vcpus 8",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a.flagFor = flagMap(map[string]string{"vcpus_limit": "--vcpus"})
			return callAndEmit(a, func(cl *client.Client) (*api.Quota, error) { return cl.QuotaSet(cmd.Context(), q) }, func(w io.Writer, out *api.Quota) { quotaRows(w, []api.Quota{*out}) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&q.Family, "family", "", "VM family, as in hangar compute sizes (e.g. standardDv2Family)")
	fl.StringVar(&q.VMPriority, "vm-priority", "", "dedicated or lowpriority")
	fl.IntVar(&q.Limit, "vcpus", 0, "the most vCPUs the workspace's nodes of this family and priority may use")
	for _, f := range []string{"family", "vm-priority", "vcpus"} {
		_ = cmd.MarkFlagRequired(f)
	}
	return cmd
}

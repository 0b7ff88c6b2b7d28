package cli

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/client"
)

func (a *app) eventsCmd() *cobra.Command {
	var computeName string
	var limit int
	cmd := &cobra.Command{
		Use:   "events [--compute NAME] [--limit N]",
		Short: "List recent events (scale-ups, scale-downs, preemptions, run changes) with their reasons",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > 1000 {
				return usagef("--limit must be between 1 and 1000, not %d", limit)
			}
			return callAndEmit(a, func(cl *client.Client) ([]api.Event, error) { return cl.Events(cmd.Context(), computeName, limit) }, eventRows)
		},
	}
	cmd.Flags().StringVar(&computeName, "compute", "", "only events of this compute")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many events, the most recent")
	return cmd
}

func eventRows(w io.Writer, es []api.Event) {
	row(w, "TIME", "KIND", "OBJECT", "COMPUTE", "TYPE", "MESSAGE")
	for _, e := range es {
		row(w, timestamp(&e.Time), e.Kind, e.Object, e.Compute, e.Type, e.Message)
	}
}

package controller

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the controller's Prometheus collectors.
type Metrics struct {
	QueueLength *prometheus.GaugeVec
	Nodes       *prometheus.GaugeVec
	ScaleEvents *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		QueueLength: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hangar_queue_length", Help: "Runs waiting for a node, per compute.",
		}, []string{"workspace", "compute"}),
		Nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hangar_nodes", Help: "Nodes by compute and state.",
		}, []string{"workspace", "compute", "state"}),
		ScaleEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hangar_scale_events_total", Help: "Scale events by compute and kind (up, down, preempted, unusable).",
		}, []string{"compute", "kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.QueueLength, m.Nodes, m.ScaleEvents)
	}
	return m
}

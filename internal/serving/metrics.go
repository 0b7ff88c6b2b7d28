package serving

import "sync/atomic"

// Metrics are counters of one service since Start, for a Prometheus
// collector or `service show`.
type Metrics struct {
	// Succeeded counts /score requests answered 200.
	Succeeded uint64
	// ClientErrors counts /score answers 4xx (auth, content type, size, JSON).
	ClientErrors uint64
	// RunErrors counts 500 answers: run() raised.
	RunErrors uint64
	// Unavailable counts 503 answers; Overloaded and WorkerDied are among them.
	Unavailable uint64
	Overloaded  uint64
	WorkerDied  uint64
	// Timeouts counts 504 answers.
	Timeouts uint64
	// WorkerRestarts counts workers replaced after dying or timing out.
	WorkerRestarts uint64
	// Busy and Queued are the serving pool's requests now held by workers
	// (running, or next in a worker's pipe) and waiting for a worker.
	Busy   int
	Queued int
}

type metrics struct {
	ok, clientErrors, runErrors, unavailable, timeouts atomic.Uint64
	overloaded, died, restarts                         atomic.Uint64
}

// Metrics returns the counters.
func (s *Service) Metrics() Metrics {
	m := Metrics{
		Succeeded:      s.m.ok.Load(),
		ClientErrors:   s.m.clientErrors.Load(),
		RunErrors:      s.m.runErrors.Load(),
		Unavailable:    s.m.unavailable.Load(),
		Overloaded:     s.m.overloaded.Load(),
		WorkerDied:     s.m.died.Load(),
		Timeouts:       s.m.timeouts.Load(),
		WorkerRestarts: s.m.restarts.Load(),
	}
	if p := s.cur.Load(); p != nil {
		p.mu.Lock()
		m.Busy, m.Queued = p.busy, p.pending.len()
		p.mu.Unlock()
	}
	return m
}

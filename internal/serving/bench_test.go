package serving_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hangar-ml/hangar/internal/serving"
)

// BenchmarkScore drives a 2-worker echo service with in-process HTTP
// clients (16 per GOMAXPROCS, kept-alive connections) and reports
// requests per second and the p50/p99 latency seen by the clients.
//
//	go test -run '^$' -bench Score -benchtime 20000x ./internal/serving
func BenchmarkScore(b *testing.B) {
	py := pythonOrSkip(b)
	dir := b.TempDir()
	src := scriptDir(b, map[string]string{"score.py": "def run(raw_data):\n    return raw_data\n"})
	ctx := context.Background()
	s, err := serving.Start(ctx, serving.Config{
		Name: "bench", Addr: "127.0.0.1:0",
		Pool:    serving.PoolConfig{Python: py, SourceDir: src, EntryScript: "score.py", Workers: 2},
		LogPath: filepath.Join(dir, "service.log"),
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Stop(ctx)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if st := s.WaitSettled(wctx); st.State != serving.Healthy {
		b.Fatalf("not healthy: %+v", st)
	}
	const parallelism = 16
	tr := &http.Transport{MaxIdleConnsPerHost: 1024, MaxConnsPerHost: 0, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	url := scoreURL(s)
	body := []byte(`{"data": [[0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0]]}`)

	var mu sync.Mutex
	var all []time.Duration
	b.SetParallelism(parallelism)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		lat := make([]time.Duration, 0, 1024)
		req, _ := http.NewRequest("POST", url, nil)
		req.Header.Set("Content-Type", "application/json")
		for pb.Next() {
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.ContentLength = int64(len(body))
			t0 := time.Now()
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			lat = append(lat, time.Since(t0))
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
}

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/client"
	"github.com/hangar-ml/hangar/internal/compute"
	"github.com/hangar-ml/hangar/internal/ids"
	"github.com/hangar-ml/hangar/internal/node"
	"github.com/hangar-ml/hangar/internal/run"
	"github.com/hangar-ml/hangar/internal/server"
	"github.com/hangar-ml/hangar/internal/store"
	"github.com/hangar-ml/hangar/internal/store/sqlstore"
)

// Benchmarks against a running server. They measure; they assert nothing
// about time. Results and commands are in docs/BENCHMARKS.md.

// BenchmarkSubmitToProcessStart measures, on a warm local node (a cluster
// with min_nodes 1 whose node is idle), the time from sending a run submit
// to the agent being cleared to exec the process (the attempt's start
// timestamp, taken right before the fork).
func BenchmarkSubmitToProcessStart(b *testing.B) {
	dataDir := b.TempDir()
	killNodes(b, dataDir)
	srv := startServer(b, dataDir, freeAddr(b))
	c := srv.client(b)
	ctx := context.Background()
	if _, err := c.ComputeCreate(ctx, api.ComputeSpec{Name: "warm", Type: "cluster", Properties: api.ComputeProperties{
		ScaleSettings: &api.ScaleSettings{MinNodes: ptr(1), MaxNodes: ptr(1), IdleSecondsBeforeScaledown: ptr(3600)},
	}}); err != nil {
		b.Fatal(err)
	}
	digest := uploadDir(b, c, examplesDir(b, "hello"))
	// Warm up: wait for the node, run once so the snapshot is cached on it.
	submitAndWait := func() (time.Duration, error) {
		sent := time.Now()
		r, err := c.RunSubmit(ctx, api.RunSubmit{Compute: "warm", Command: "true", SnapshotDigest: digest})
		if err != nil {
			return 0, err
		}
		for {
			got, err := c.RunGet(ctx, r.ID)
			if err != nil {
				return 0, err
			}
			if got.Status == "Completed" && len(got.Attempts) > 0 && got.Attempts[0].Start != nil {
				return got.Attempts[0].Start.Sub(sent), nil
			}
			if got.Status == "Failed" || got.Status == "Canceled" {
				return 0, fmt.Errorf("run %s %s: %+v", r.ID, got.Status, got.Error)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	if _, err := submitAndWait(); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := submitAndWait()
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, d)
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99-ms")
}

// BenchmarkRunsAccepted measures runs accepted per second through the API
// on SQLite, 16 concurrent clients, snapshot already stored. The runs go to
// a one-node cluster, so they queue behind each other as a real burst would.
func BenchmarkRunsAccepted(b *testing.B) {
	dataDir := b.TempDir()
	killNodes(b, dataDir)
	srv := startServer(b, dataDir, freeAddr(b))
	tok, err := os.ReadFile(filepath.Join(dataDir, "admin-token"))
	if err != nil {
		b.Fatal(err)
	}
	// Keep a connection per client goroutine (net/http keeps only 2 idle ones per host by default).
	c := client.New("http://"+srv.addr, strings.TrimSpace(string(tok)), client.WithHTTPClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}))
	ctx := context.Background()
	if _, err := c.ComputeCreate(ctx, api.ComputeSpec{Name: "burst", Type: "cluster", Properties: api.ComputeProperties{
		ScaleSettings: &api.ScaleSettings{MaxNodes: ptr(1), IdleSecondsBeforeScaledown: ptr(3600)},
	}}); err != nil {
		b.Fatal(err)
	}
	digest := uploadDir(b, c, examplesDir(b, "hello"))
	var n atomic.Int64
	var firstErr atomic.Value
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	const clients = 16
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n.Add(1) <= int64(b.N) {
				if _, err := c.RunSubmit(ctx, api.RunSubmit{Compute: "burst", Command: "sleep 60", SnapshotDigest: digest}); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, ok := firstErr.Load().(error); ok && err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "runs/s")
	_ = c.ComputeDelete(ctx, "burst", true)
}

// BenchmarkServerMemory records 10,000 live nodes and 100,000 runs in a
// SQLite store, starts the server on it, lets the controller make passes
// and the API list computes and runs, and reports the server process's
// resident memory (VmRSS) and peak (VmHWM).
func BenchmarkServerMemory(b *testing.B) {
	if b.N > 1 {
		b.Skip("one measurement is enough; run with -benchtime 1x")
	}
	dataDir := b.TempDir()
	ctx := context.Background()
	now := time.Now().UTC()
	st, err := sqlstore.Open(ctx, "sqlite://"+filepath.Join(dataDir, "hangar.db"))
	if err != nil {
		b.Fatal(err)
	}
	if err := server.EnsureWorkspace(ctx, st, "default", now); err != nil {
		b.Fatal(err)
	}
	secret := ids.Secret("hgr")
	if err := st.TokenCreate(ctx, store.Token{ID: ids.New("tok"), Hash: ids.Hash(secret), Name: "admin", Scope: "admin", CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "admin-token"), []byte(secret), 0o600); err != nil {
		b.Fatal(err)
	}
	const nodes, runs = 10_000, 100_000
	cp := compute.Compute{ID: "cmp-big", Workspace: "default", Name: "big", Kind: compute.KindCluster, VMSize: "STANDARD_D1_V2", VMPriority: compute.Dedicated,
		MinNodes: nodes, MaxNodes: nodes, IdleSecondsBeforeScaledown: 3600, Provider: "local", ProvisioningState: compute.StateSucceeded, CreatedAt: now, ModifiedAt: now}
	if err := st.ComputeCreate(ctx, cp); err != nil {
		b.Fatal(err)
	}
	if err := st.QuotaSet(ctx, store.Quota{Workspace: "default", Family: "standardDv2Family", Priority: compute.Dedicated, VCPUs: 1_000_000}); err != nil {
		b.Fatal(err)
	}
	err = st.InTx(ctx, func(tx store.Store) error {
		for i := 0; i < nodes; i++ {
			if err := tx.NodeCreate(ctx, node.Node{ID: "big-n" + strconv.Itoa(i), Workspace: "default", ComputeID: cp.ID, State: node.Idle, Provider: "bench", VMSize: cp.VMSize, Slots: 1,
				CreatedAt: now, StateChangedAt: now, IdleSince: now, LastHeartbeat: now.Add(time.Hour)}); err != nil {
				return err
			}
		}
		for i := 0; i < runs; i++ {
			r := run.Run{ID: fmt.Sprintf("run-%07d", i), Workspace: "default", Experiment: "mem", ComputeName: "big", Status: run.Completed, Command: "true",
				SnapshotDigest: "sha256:" + strings.Repeat("0", 64), NodeCount: 1, MaxPreemptionRetries: 3, MaxDurationSeconds: 3600, CreatedAt: now, StartedAt: now, EndedAt: now, Attempt: 1}
			if err := tx.RunCreate(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	st.Close()

	srv := startServer(b, dataDir, freeAddr(b))
	c := srv.client(b)
	for i := 0; i < 5; i++ { // a few controller passes and API reads
		if _, err := c.ComputeGet(ctx, "big"); err != nil {
			b.Fatal(err)
		}
		if _, err := c.RunList(ctx, client.RunFilter{Experiment: "mem"}); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	rss, hwm := procMemory(b, srv.cmd.Process.Pid)
	b.ReportMetric(rss, "rss-MB")
	b.ReportMetric(hwm, "peak-rss-MB")
}

func procMemory(b *testing.B, pid int) (rss, hwm float64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm
}

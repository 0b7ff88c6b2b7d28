// Command serving runs one inference service with internal/serving, for
// the side-by-side benchmark in run.sh:
//
//	go run ./bench/serving -source DIR -entry score.py -model-dir DIR -workers 2 -addr 127.0.0.1:8123
//
// It prints "ready" once every worker's init() returned and serves until
// SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/hangar-ml/hangar/internal/serving"
)

func main() {
	python := flag.String("python", "", "interpreter (default python3 on PATH)")
	source := flag.String("source", ".", "source dir")
	entry := flag.String("entry", "score.py", "entry script, relative to -source")
	modelDir := flag.String("model-dir", "", "model dir (AZUREML_MODEL_DIR)")
	workers := flag.Int("workers", 2, "worker processes")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	logPath := flag.String("log", "", "service log (default: none)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the front end here")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s, err := serving.Start(ctx, serving.Config{
		Name:    "bench",
		Addr:    *addr,
		LogPath: *logPath,
		Pool: serving.PoolConfig{
			Python: *python, SourceDir: *source, EntryScript: *entry,
			ModelDir: *modelDir, Workers: *workers,
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
	if st := s.WaitSettled(ctx); st.State != serving.Healthy {
		fmt.Fprintf(os.Stderr, "Error: service %s: %s\n", st.State, st.Error)
		os.Exit(1)
	}
	fmt.Printf("ready on port %d\n", s.Port())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
	}
}

// Package server builds and owns every long-lived component of `hangar
// server`: the store, the blob store, the node providers, the controller and
// the HTTP API. Nothing imports it but cmd/hangar (through the CLI) and tests.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hangar-ml/hangar/internal/blob"
	"github.com/hangar-ml/hangar/internal/clock"
	"github.com/hangar-ml/hangar/internal/compute"
	"github.com/hangar-ml/hangar/internal/controller"
	"github.com/hangar-ml/hangar/internal/httpapi"
	"github.com/hangar-ml/hangar/internal/ids"
	"github.com/hangar-ml/hangar/internal/provider"
	"github.com/hangar-ml/hangar/internal/provider/local"
	"github.com/hangar-ml/hangar/internal/servicectl"
	"github.com/hangar-ml/hangar/internal/store"
	"github.com/hangar-ml/hangar/internal/store/sqlstore"
	"github.com/hangar-ml/hangar/internal/vmsize"
	pysdk "github.com/hangar-ml/hangar/sdk/python"
)

// Version is the build's version, set by -ldflags or left as "dev".
var Version = "0.1.0-dev"

// DefaultAddr is where the server listens unless told otherwise.
const DefaultAddr = "127.0.0.1:8265"

// DefaultWorkspace is created on first start.
const DefaultWorkspace = "default"

// Config configures a server.
type Config struct {
	// DataDir holds the SQLite database, blobs, run files, node dirs and the
	// admin token. Required.
	DataDir string
	// Addr is the listen address (default 127.0.0.1:8265; port 0 picks one).
	Addr string
	// DatabaseURL selects the store: "" = SQLite in DataDir, or postgres://….
	DatabaseURL string
	// VMSizesFile replaces the built-in VM size catalog.
	VMSizesFile string
	// AgentExecutable is the hangar binary nodes run (default: this executable).
	AgentExecutable string
	Logger          *slog.Logger
	Clock           clock.Clock
	// LocalSlots is how many runs the local compute runs at once (default: CPUs).
	LocalSlots int
	// MaxLogMiB caps what is kept of one attempt's log (default 100).
	MaxLogMiB int64
}

// Server is a running Hangar control plane.
type Server struct {
	cfg   Config
	log   *slog.Logger
	ready chan struct{}

	mu  sync.Mutex
	url string
}

// New checks the configuration; it starts nothing.
func New(cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("data dir is required")
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.MaxLogMiB < 0 {
		return nil, fmt.Errorf("--max-log-mib (%d) must be >= 1", cfg.MaxLogMiB)
	}
	if cfg.LocalSlots == 0 {
		cfg.LocalSlots = runtime.NumCPU()
	}
	if cfg.DatabaseURL != "" && !strings.HasPrefix(cfg.DatabaseURL, "postgres://") && !strings.HasPrefix(cfg.DatabaseURL, "postgresql://") && !strings.HasPrefix(cfg.DatabaseURL, "sqlite://") {
		return nil, fmt.Errorf("--database %q: use postgres://… or sqlite:///path", redactURL(cfg.DatabaseURL))
	}
	return &Server{cfg: cfg, log: cfg.Logger.With("component", "server"), ready: make(chan struct{})}, nil
}

// Ready is closed once the server listens and URL is valid.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// URL is the base URL of the API (valid after Ready).
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// AdminTokenPath is where the first start writes the admin token.
func AdminTokenPath(dataDir string) string { return filepath.Join(dataDir, "admin-token") }

// Run starts everything and serves until ctx ends. Nodes (agent processes)
// are left running on shutdown and re-adopted on the next start.
func (s *Server) Run(ctx context.Context) error {
	dataDir, err := filepath.Abs(s.cfg.DataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	lock, previous, err := lockDataDir(dataDir)
	if err != nil {
		return err
	}
	defer lock.Close()
	catalog := vmsize.Builtin()
	if s.cfg.VMSizesFile != "" {
		if catalog, err = vmsize.Load(s.cfg.VMSizesFile); err != nil {
			return err
		}
	}
	dbURL := s.cfg.DatabaseURL
	if dbURL == "" {
		dbURL = "sqlite://" + filepath.Join(dataDir, "hangar.db")
	}
	st, err := sqlstore.Open(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("open store %s: %w", redactURL(dbURL), err)
	}
	defer st.Close()

	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	url := "http://" + ln.Addr().String()
	s.mu.Lock()
	s.url = url
	s.mu.Unlock()

	if err := lock.Truncate(0); err == nil {
		_, _ = lock.WriteAt([]byte(fmt.Sprintf("pid %d\nurl %s\n", os.Getpid(), url)), 0)
	}
	if old := lockedURL(previous); old != "" && old != url {
		s.log.Warn("the server's address changed: nodes started before dial the old one and will be marked unusable after 20 s; restart on the old address to keep them", "old_url", old, "url", url)
	}
	if err := s.bootstrap(ctx, st, dataDir); err != nil {
		ln.Close()
		return err
	}

	exe := s.cfg.AgentExecutable
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			ln.Close()
			return err
		}
	}
	providers := map[string]provider.Provider{
		"local": local.New(local.Config{Executable: exe, DataDir: dataDir, Logger: s.cfg.Logger}),
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ctl := controller.New(controller.Config{
		Store:       st,
		Catalog:     catalog,
		Providers:   providers,
		Clock:       s.cfg.Clock,
		Logger:      s.cfg.Logger,
		DataDir:     dataDir,
		ServerURL:   func() string { return url },
		Metrics:     controller.NewMetrics(reg),
		LocalSlots:  s.cfg.LocalSlots,
		MaxLogBytes: s.cfg.MaxLogMiB << 20,
	})
	blobs := blob.New(filepath.Join(dataDir, "blobs"))
	// Services get the embedded Python SDK on their PYTHONPATH.
	sdkDir := filepath.Join(dataDir, "pysdk")
	if err := pysdk.WriteTo(sdkDir); err != nil {
		ln.Close()
		return err
	}
	services := servicectl.New(servicectl.Config{Store: st, Blobs: blobs, DataDir: dataDir, Logger: s.cfg.Logger, Clock: s.cfg.Clock, PythonPath: sdkDir})
	gpus := map[string]bool{}
	for name, p := range providers {
		gpus[name] = p.HasGPUs()
	}
	a := httpapi.New(httpapi.Config{
		Store:     st,
		Ctl:       ctl,
		Blobs:     blobs,
		Services:  services,
		Catalog:   catalog,
		Providers: gpus,
		Clock:     s.cfg.Clock,
		Logger:    s.cfg.Logger,
		Registry:  reg,
		Version:   Version,
	})
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn)}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		_ = ctl.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		_ = services.Run(ctx)
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	s.log.Info("hangar server listening", "url", url, "data_dir", dataDir, "store", storeKind(dbURL), "version", Version)
	close(s.ready)

	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	shutdownCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	_ = srv.Shutdown(shutdownCtx)
	cancel()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// bootstrap creates the default workspace, its local compute and the admin
// token on first start. The token's only plaintext copy goes to a 0600 file.
func (s *Server) bootstrap(ctx context.Context, st store.Store, dataDir string) error {
	now := s.cfg.Clock.Now()
	_, err := st.WorkspaceGet(ctx, DefaultWorkspace)
	if err == nil {
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := EnsureWorkspace(ctx, st, DefaultWorkspace, now); err != nil {
		return err
	}
	secret := ids.Secret("hgr")
	path := AdminTokenPath(dataDir)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("write admin token: %w", err)
	}
	if err := st.TokenCreate(ctx, store.Token{ID: ids.New("tok"), Hash: ids.Hash(secret), Name: "admin", Scope: "admin", CreatedAt: now}); err != nil {
		return err
	}
	s.log.Info("first start: created workspace and admin token", "workspace", DefaultWorkspace, "admin_token_file", path)
	return nil
}

// EnsureWorkspace creates a workspace and its built-in local compute.
func EnsureWorkspace(ctx context.Context, st store.Store, name string, now time.Time) error {
	// Look before creating: on PostgreSQL a failed insert aborts the transaction.
	return st.InTx(ctx, func(tx store.Store) error {
		if _, err := tx.WorkspaceGet(ctx, name); errors.Is(err, store.ErrNotFound) {
			if err := tx.WorkspaceCreate(ctx, store.Workspace{Name: name, CreatedAt: now}); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		if _, err := tx.ComputeGet(ctx, name, "local"); err == nil {
			return nil
		} else if !errors.Is(err, compute.ErrNotFound) {
			return err
		}
		return tx.ComputeCreate(ctx, compute.Compute{
			ID: ids.New("cmp"), Workspace: name, Name: "local", Kind: compute.KindLocal,
			Description: "the server's own host", Provider: "local", MaxNodes: 1,
			ProvisioningState: compute.StateSucceeded, CreatedBy: "system", CreatedAt: now, ModifiedAt: now,
		})
	})
}

func storeKind(url string) string {
	if strings.HasPrefix(url, "postgres") {
		return "postgres"
	}
	return "sqlite"
}

// redactURL hides a password in a database URL.
func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 {
		return u
	}
	creds := u[scheme+3 : at]
	if user, _, ok := strings.Cut(creds, ":"); ok {
		return u[:scheme+3] + user + ":***" + u[at:]
	}
	return u
}

// lockDataDir takes an exclusive lock on DATA/server.lock so two servers
// never share a data dir (the kernel drops the lock when the process dies,
// even by kill -9). It returns the lock file and what the previous server
// wrote in it.
func lockDataDir(dataDir string) (*os.File, string, error) {
	path := filepath.Join(dataDir, "server.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("open %s: %w", path, err)
	}
	previous, _ := io.ReadAll(f)
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		holder := strings.ReplaceAll(strings.TrimSpace(string(previous)), "\n", ", ")
		return nil, "", fmt.Errorf("data dir %s is in use by another hangar server (%s); stop it, or give this one another --data-dir", dataDir, holder)
	}
	return f, string(previous), nil
}

// lockedURL reads the url line of a lock file's content.
func lockedURL(content string) string {
	for _, line := range strings.Split(content, "\n") {
		if u, ok := strings.CutPrefix(line, "url "); ok {
			return strings.TrimSpace(u)
		}
	}
	return ""
}

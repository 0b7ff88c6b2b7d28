package httpapi

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/internal/model"
	"github.com/hangar-ml/hangar/internal/problem"
	"github.com/hangar-ml/hangar/internal/run"
	"github.com/hangar-ml/hangar/internal/service"
	"github.com/hangar-ml/hangar/internal/snapshot"
	"github.com/hangar-ml/hangar/internal/store"
)

// modelLimits bound the files of one model packed from a run: what
// snapshot.Extract accepts, so a service can always unpack them.
var modelLimits = snapshot.Limits{MaxBytes: snapshot.MaxExtractBytes, MaxFiles: 100_000}

// checkKVs refuses tag-like maps with empty or overlong keys or values.
func checkKVs(l *problem.List, field string, m map[string]string) {
	for k, v := range m {
		if k == "" || len(k) > 128 || len(v) > 1024 {
			l.Add(field, "keys must be 1 to 128 characters and values at most 1024")
			return
		}
	}
}

// modelRegister registers the next version of a model, from a file or
// folder among a run's files (packed here) or from an uploaded archive.
// The archive holds the file or folder under its own name (see
// snapshot.WritePath): a service's model directory then holds model.pkl,
// or model/… for a folder, as in Azure ML.
func (a *API) modelRegister(w http.ResponseWriter, r *http.Request) error {
	ws, err := a.workspace(r)
	if err != nil {
		return err
	}
	if err := requireUser(r); err != nil {
		return err
	}
	var req api.ModelRegister
	if err := decode(r, &req); err != nil {
		return err
	}
	ctx := r.Context()
	m := model.Model{
		Workspace: ws, Name: req.Name, Description: req.Description, Tags: req.Tags, Properties: req.Properties,
		RunID: req.RunID, CreatedBy: principalOf(r).token.Name, CreatedAt: a.storeNow(),
	}
	var l problem.List
	if p := model.ValidateName(req.Name); p != nil {
		l.AddErr(p)
	}
	checkKVs(&l, "tags", req.Tags)
	checkKVs(&l, "properties", req.Properties)
	if len(req.Description) > 5000 {
		l.Add("description", "must be at most 5000 characters")
	}
	p := path.Clean(req.Path)
	var runDir string
	switch {
	case req.RunID != "":
		if req.Digest != "" {
			l.Add("digest", "give run_id and a path among its files, or the digest of an upload, not both")
		}
		rn, err := a.cfg.Store.RunGet(ctx, ws, req.RunID)
		switch {
		case errors.Is(err, run.ErrNotFound):
			l.AddErr(problem.Field("run_id", "run %q not found in workspace %s", req.RunID, ws).WithHint("hangar run list"))
		case err != nil:
			return err
		}
		switch {
		case req.Path == "":
			l.Add("path", "is required: a file or folder among the run's files, e.g. outputs/model.pkl")
		case !fs.ValidPath(p) || p == ".":
			l.Add("path", "%q must be a relative path among the run's files, e.g. outputs/model.pkl", req.Path)
		case err == nil:
			runDir = a.cfg.Ctl.RunFilesDir(rn.ID)
			if !pathExists(runDir, p) {
				l.AddErr(problem.Field("path", "%s is not among the files of run %s; see hangar run download %s", p, rn.ID, rn.ID).
					WithHint("hangar run download " + rn.ID))
			}
		}
	default:
		switch {
		case req.Path == "":
			l.Add("path", "is required: the name of the uploaded file or folder (or give run_id and a path among its files)")
		case p != req.Path || strings.Contains(p, "/") || p == "." || p == "..":
			l.Add("path", "%q must be the base name of the uploaded file or folder (a run's file needs run_id)", req.Path)
		}
		switch {
		case req.Digest == "":
			l.Add("digest", "is required: upload the tar.gz of the file or folder to /blobs first (or give run_id)")
		case !a.cfg.Blobs.Has(req.Digest):
			l.Add("digest", "blob %s is not stored; upload it first", req.Digest)
		case l.Len() == 0:
			size, err := a.checkModelArchive(req.Digest, p)
			if err != nil {
				return err
			}
			m.Path, m.Digest, m.Size = p, req.Digest, size
		}
	}
	if err := l.Err(); err != nil {
		return err
	}
	if runDir != "" {
		info, digest, err := a.packModel(runDir, p)
		if err != nil {
			return err
		}
		m.Path, m.Digest, m.Size = p, digest, info.Bytes
	}
	m, err = a.cfg.Store.ModelCreate(ctx, m)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toAPIModel(m))
	return nil
}

// pathExists reports whether the slash path p exists inside dir, without
// following anything out of dir.
func pathExists(dir, p string) bool {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return false
	}
	defer root.Close()
	_, err = root.Lstat(p)
	return err == nil
}

// packModel packs the file or folder p of dir into a blob.
func (a *API) packModel(dir, p string) (snapshot.Info, string, error) {
	pr, pw := io.Pipe()
	defer pr.Close() // unblocks the writer if Put gives up early
	done := make(chan snapshot.Info, 1)
	go func() {
		info, err := snapshot.WritePath(dir, p, modelLimits, pw)
		pw.CloseWithError(err)
		done <- info
	}()
	digest, _, err := a.cfg.Blobs.Put(pr)
	pr.Close()
	info := <-done
	var (
		le *snapshot.LimitError
		ke *snapshot.LinkError
	)
	switch {
	case errors.As(err, &le):
		return info, "", problem.Field("path", "%v", le)
	case errors.As(err, &ke):
		return info, "", problem.Field("path", "%v", ke)
	case err != nil:
		return info, "", err
	}
	return info, digest, nil
}

// checkModelArchive checks that the blob is a tar.gz holding exactly the
// file or folder name and returns the size of its files.
func (a *API) checkModelArchive(digest, name string) (int64, error) {
	rc, err := a.cfg.Blobs.Open(digest)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	files, size, err := snapshot.ListArchive(rc)
	if err != nil {
		return 0, problem.Field("digest", "blob %s is not a model archive: %v", digest, err)
	}
	for _, f := range files {
		if f != name && !strings.HasPrefix(f, name+"/") {
			return 0, problem.Field("digest", "the archive holds %s, outside %s: a model archive holds only the file or folder it registers, under its own name (as hangar model register packs it)", f, name)
		}
	}
	if len(files) == 0 {
		return 0, problem.Field("digest", "the archive holds no files")
	}
	return size, nil
}

func toAPIModel(m model.Model) api.Model {
	return api.Model{Name: m.Name, Version: m.Version, Description: m.Description, Tags: m.Tags, Properties: m.Properties,
		RunID: m.RunID, Path: m.Path, Digest: m.Digest, Size: m.Size, CreatedBy: m.CreatedBy, CreatedOn: m.CreatedAt}
}

func (a *API) modelList(w http.ResponseWriter, r *http.Request) error {
	ws, err := a.workspace(r)
	if err != nil {
		return err
	}
	ms, err := a.cfg.Store.ModelList(r.Context(), ws, r.URL.Query().Get("name"))
	if err != nil {
		return err
	}
	out := []api.Model{}
	for _, m := range ms {
		out = append(out, toAPIModel(m))
	}
	writeJSON(w, http.StatusOK, api.List[api.Model]{Value: out})
	return nil
}

// getModel resolves {name} and {v} (absent: the latest version).
func (a *API) getModel(r *http.Request) (model.Model, error) {
	ws, err := a.workspace(r)
	if err != nil {
		return model.Model{}, err
	}
	name, version := r.PathValue("name"), 0
	if v := r.PathValue("v"); v != "" {
		version, err = strconv.Atoi(v)
		if err != nil || version < 1 {
			return model.Model{}, problem.Field("version", "%q must be a positive integer", v)
		}
	}
	m, err := a.cfg.Store.ModelGet(r.Context(), ws, name, version)
	if errors.Is(err, model.ErrNotFound) {
		ref := name
		if version > 0 {
			ref = fmt.Sprintf("%s:%d", name, version)
		}
		return m, problem.New(problem.NotFound, "model %s not found in workspace %s", ref, ws).WithHint("hangar model list")
	}
	return m, err
}

func (a *API) modelGet(w http.ResponseWriter, r *http.Request) error {
	m, err := a.getModel(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toAPIModel(m))
	return nil
}

// modelFiles sends the model's archive as stored.
func (a *API) modelFiles(w http.ResponseWriter, r *http.Request) error {
	m, err := a.getModel(r)
	if err != nil {
		return err
	}
	rc, err := a.cfg.Blobs.Open(m.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fmt.Sprintf("%s-%d.tar.gz", m.Name, m.Version)))
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil {
		a.log.ErrorContext(r.Context(), "send model files", "model", m.Name, "version", m.Version, "err", err)
	}
	return nil
}

// modelDelete removes a version no service uses. The check and the delete
// are one transaction, so a deploy cannot slip in between on SQLite; on
// PostgreSQL the window is a few statements wide.
func (a *API) modelDelete(w http.ResponseWriter, r *http.Request) error {
	if err := requireUser(r); err != nil {
		return err
	}
	m, err := a.getModel(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	err = a.cfg.Store.InTx(ctx, func(tx store.Store) error {
		svcs, err := tx.ServiceList(ctx, m.Workspace)
		if err != nil {
			return err
		}
		if users := servicesUsing(svcs, m.Name, m.Version); len(users) > 0 {
			return problem.New(problem.Conflict, "model %s:%d is used by service(s) %s", m.Name, m.Version, strings.Join(users, ", ")).
				WithHint(fmt.Sprintf("hangar service delete %s (or update it to another model version)", strings.Fields(users[0])[0]))
		}
		return tx.ModelDelete(ctx, m.Workspace, m.Name, m.Version)
	})
	if errors.Is(err, model.ErrNotFound) {
		return problem.New(problem.NotFound, "model %s:%d not found in workspace %s", m.Name, m.Version, m.Workspace)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// servicesUsing names the services that load model name:version.
func servicesUsing(svcs []service.Service, name string, version int) []string {
	var out []string
	for _, s := range svcs {
		for _, ref := range s.Models {
			if ref.Name == name && ref.Version == version {
				n := s.Name
				if s.DeleteRequested {
					n += " (being deleted)"
				}
				out = append(out, n)
				break
			}
		}
	}
	return out
}

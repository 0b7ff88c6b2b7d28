package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/client"
	"github.com/hangar-ml/hangar/internal/model"
	"github.com/hangar-ml/hangar/internal/snapshot"
)

func (a *app) modelCmd() *cobra.Command {
	c := group("model", "Register models and list, show, download and delete their versions")
	c.AddCommand(
		a.modelRegisterCmd(),
		a.modelListCmd(),
		a.modelShowCmd(),
		a.modelDownloadCmd(),
		a.modelDeleteCmd(),
	)
	return c
}

// modelLimits bound a local file or folder registered as a model (the
// server also caps one upload).
var modelLimits = snapshot.Limits{MaxBytes: snapshot.MaxExtractBytes, MaxFiles: 100_000}

func (a *app) modelRegisterCmd() *cobra.Command {
	var (
		req              api.ModelRegister
		runID, path      string
		tags, properties []string
	)
	cmd := &cobra.Command{
		Use:   "register --name NAME (--run ID --path PATH | --path LOCAL_FILE_OR_DIR) [flags]",
		Short: "Register the next version of a model from a run's files or a local file or folder",
		Long: `Register the next version of a model (1 for a new name). With --run, PATH is a
file or folder among the run's files, such as outputs/model.pkl (see hangar
run download ID). Without --run, PATH is a local file or folder, uploaded.

The model keeps the file's or folder's name: a service deployed with it
finds model.pkl, or the folder model/ and its files, in its model directory
(AZUREML_MODEL_DIR).`,
		Example: `  hangar model register --name digits --run run-6jk7lvfzzoxt --path outputs/model.pkl
  hangar model register --name digits --path ./model.pkl --tag team=ml --property accuracy=0.97`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if req.Tags, err = parseKVs("--tag", tags); err != nil {
				return err
			}
			if req.Properties, err = parseKVs("--property", properties); err != nil {
				return err
			}
			ctx := cmd.Context()
			if runID == "" {
				if _, err := os.Stat(path); err != nil {
					return &fieldError{Field: "path", Err: fmt.Errorf("%s does not exist", path)}
				}
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			if runID != "" {
				req.RunID, req.Path = runID, path
			} else {
				abs, err := filepath.Abs(path)
				if err != nil {
					return err
				}
				req.Path = filepath.Base(abs)
				if req.Digest, err = a.uploadPath(ctx, cl, filepath.Dir(abs), req.Path, "model "+path); err != nil {
					return err
				}
			}
			m, err := cl.ModelRegister(ctx, req)
			if err != nil {
				return err
			}
			a.progress("Registered model %s version %d\n", m.Name, m.Version)
			return a.emit(m, func(w io.Writer) { a.modelRows(w, []api.Model{*m}) })
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&req.Name, "name", "n", "", "name of the model (letters, digits, '_', '-', '.')")
	fl.StringVar(&runID, "run", "", "the run whose files hold PATH")
	fl.StringVar(&path, "path", "", "a file or folder among the run's files (with --run), else a local file or folder")
	fl.StringArrayVar(&tags, "tag", nil, "tag `KEY=VALUE` (repeatable)")
	fl.StringArrayVar(&properties, "property", nil, "property `KEY=VALUE` (repeatable)")
	fl.StringVar(&req.Description, "description", "", "description of this version")
	_ = cmd.MarkFlagRequired("name")
	_ = cmd.MarkFlagRequired("path")
	return cmd
}

// uploadPath packs the file or folder name of dir (snapshot.WritePath)
// and uploads it unless the server has it.
func (a *app) uploadPath(ctx context.Context, cl *client.Client, dir, name, what string) (string, error) {
	return a.uploadArchive(ctx, cl, func(w io.Writer) (string, error) {
		info, err := snapshot.WritePath(dir, name, modelLimits, w)
		if err != nil {
			return "", &fieldError{Field: "path", Err: err}
		}
		return fmt.Sprintf("%s (%s, %s)", what, fileCount(info.Files), byteSize(info.Bytes)), nil
	})
}

func (a *app) modelRows(w io.Writer, ms []api.Model) {
	row(w, "NAME", "VERSION", "RUN", "PATH", "SIZE", "CREATED")
	now := a.now()
	for _, m := range ms {
		row(w, m.Name, m.Version, m.RunID, m.Path, byteSize(m.Size), age(now, m.CreatedOn)+" ago")
	}
}

func (a *app) modelListCmd() *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:     "list [--name NAME]",
		Aliases: []string{"ls"},
		Short:   "List model versions, newest first",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return callAndEmit(a, func(cl *client.Client) ([]api.Model, error) { return cl.ModelList(cmd.Context(), name) }, a.modelRows)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "only the versions of this model")
	return cmd
}

// modelRef parses a NAME[:VERSION] argument (usage error when malformed).
func modelRef(arg string) (string, int, error) {
	name, version, err := model.ParseRef(arg)
	if err != nil {
		return "", 0, usagef("%v", err)
	}
	return name, version, nil
}

func (a *app) modelShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME[:VERSION]",
		Short: "Show a model version (the latest unless VERSION is given)",
		Args:  exactArgs("NAME[:VERSION]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, version, err := modelRef(args[0])
			if err != nil {
				return err
			}
			return callAndEmit(a, func(cl *client.Client) (*api.Model, error) { return cl.ModelGet(cmd.Context(), name, version) }, modelDetail)
		},
	}
}

func modelDetail(w io.Writer, m *api.Model) {
	kv := kvTable{w}
	kv.add("Name", m.Name)
	kv.add("Version", m.Version)
	if m.Description != "" {
		kv.add("Description", m.Description)
	}
	if len(m.Tags) > 0 {
		kv.add("Tags", sortedKV(m.Tags))
	}
	if len(m.Properties) > 0 {
		kv.add("Properties", sortedKV(m.Properties))
	}
	if m.RunID != "" {
		kv.add("Run", m.RunID)
	}
	kv.add("Path", m.Path)
	kv.add("Size", byteSize(m.Size))
	kv.add("Digest", m.Digest)
	if m.CreatedBy != "" {
		kv.add("Created by", m.CreatedBy)
	}
	kv.add("Created", timestamp(&m.CreatedOn))
}

// modelDownload is the document of `model download -o json`.
type modelDownload struct {
	Name      string   `json:"name"`
	Version   int      `json:"version"`
	OutputDir string   `json:"output_dir"`
	Files     []string `json:"files"`
}

func (a *app) modelDownloadCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "download NAME[:VERSION] [--output-dir DIR]",
		Short: "Download a model version's file or folder",
		Long: `Download a model version (the latest unless VERSION is given) into DIR,
by default ./NAME/VERSION, as a service sees it: DIR/model.pkl, or DIR/model/…
for a folder. Downloading again replaces the files. Archive entries that
would land outside DIR are refused.`,
		Args: exactArgs("NAME[:VERSION]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, version, err := modelRef(args[0])
			if err != nil {
				return err
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			m, err := cl.ModelGet(ctx, name, version)
			if err != nil {
				return err
			}
			if dir == "" {
				dir = filepath.Join(m.Name, strconv.Itoa(m.Version))
			} else if err := checkOutputDir(dir); err != nil {
				return err
			}
			rc, err := cl.ModelFiles(ctx, m.Name, m.Version)
			if err != nil {
				return err
			}
			defer rc.Close()
			files, err := mergeDownload(rc, dir)
			if err != nil {
				return err
			}
			res := modelDownload{Name: m.Name, Version: m.Version, OutputDir: dir, Files: files}
			a.progress("Downloaded model %s:%d to %s\n", m.Name, m.Version, dir)
			return a.emit(res, func(w io.Writer) { filePaths(w, dir, files) })
		},
	}
	cmd.Flags().StringVar(&dir, "output-dir", "", "where to put the files (default ./NAME/VERSION)")
	return cmd
}

func (a *app) modelDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME:VERSION",
		Short: "Delete a model version (refused while a service uses it)",
		Args:  exactArgs("NAME:VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, version, err := modelRef(args[0])
			if err != nil {
				return err
			}
			if version == 0 {
				return usagef("give the version to delete: %s:VERSION (see hangar model list --name %s)", name, name)
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			if err := cl.ModelDelete(cmd.Context(), name, version); err != nil {
				return err
			}
			a.progress("Deleted model %s:%d\n", name, version)
			return nil
		},
	}
}

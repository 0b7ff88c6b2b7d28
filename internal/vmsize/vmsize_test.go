package vmsize_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-ml/hangar/internal/vmsize"
)

func TestBuiltinLookup(t *testing.T) {
	t.Parallel()
	c := vmsize.Builtin()
	tests := []struct {
		query    string
		wantName string // "" = not found
		wantGPUs int
	}{
		{query: "STANDARD_D2_V2", wantName: "STANDARD_D2_V2"},
		{query: "standard_d2_v2", wantName: "STANDARD_D2_V2"},
		{query: "Standard_D3_v2", wantName: "STANDARD_D3_V2"},
		{query: "standard_ds3_v2", wantName: "STANDARD_DS3_V2"},
		{query: "Standard_NC6", wantName: "Standard_NC6", wantGPUs: 1},
		{query: "STANDARD_NC6", wantName: "Standard_NC6", wantGPUs: 1},
		{query: "standard_nc6", wantName: "Standard_NC6", wantGPUs: 1},
		{query: "STANDARD_D2"},
		{query: " STANDARD_D2_V2"},
		{query: ""},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			t.Parallel()
			s, ok := c.Lookup(tc.query)
			if ok != (tc.wantName != "") {
				t.Fatalf("Lookup(%q) found = %v, want %v", tc.query, ok, tc.wantName != "")
			}
			if !ok {
				return
			}
			if s.Name != tc.wantName || s.GPUs != tc.wantGPUs {
				t.Errorf("Lookup(%q) = %s with %d GPUs, want %s with %d", tc.query, s.Name, s.GPUs, tc.wantName, tc.wantGPUs)
			}
		})
	}
}

func TestBuiltinCatalog(t *testing.T) {
	t.Parallel()
	c := vmsize.Builtin()
	names := c.Names()
	for _, want := range []string{"STANDARD_D2_V2", "STANDARD_D3_V2", "STANDARD_DS3_V2", "Standard_NC6"} {
		if _, ok := c.Lookup(want); !ok {
			t.Errorf("built-in catalog lacks %s (has %v)", want, names)
		}
	}
	var allNames []string
	for _, s := range c.All() {
		allNames = append(allNames, s.Name)
		if s.VCPUs < 1 || s.Family == "" || s.PricePerHour <= 0 || s.LowPriorityPricePerHour <= 0 || s.LowPriorityPricePerHour >= s.PricePerHour {
			t.Errorf("size %+v: want vCPUs, a family and a low priority price below the dedicated one", s)
		}
	}
	if d := cmp.Diff(names, allNames); d != "" {
		t.Errorf("All() is not in Names() order (-names +all):\n%s", d)
	}
	// Names returns a copy.
	names[0] = "mutated"
	if c.Names()[0] == "mutated" {
		t.Error("Names() returned the catalog's own slice")
	}
}

// writeFile writes content to name in a new temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var wantTwo = []vmsize.Size{
	{Name: "CPU_BIG", Family: "big", VCPUs: 16, MemoryGB: 64, PricePerHour: 1, LowPriorityPricePerHour: 0.2},
	{Name: "GPU_one", Family: "gpu", VCPUs: 4, MemoryGB: 16.5, GPUs: 1, PricePerHour: 2.5, LowPriorityPricePerHour: 0.5},
}

// loadCases are shared by TestLoad and the seeds of FuzzLoad.
var loadCases = []struct {
	name    string
	file    string
	content string
	want    []vmsize.Size // nil = error
	wantErr string
}{
	{
		name: "yaml list",
		file: "sizes.yaml",
		content: `
- name: CPU_BIG
  family: big
  vcpus: 16
  memory_gb: 64
  price_per_hour: 1
  low_priority_price_per_hour: 0.2
- {name: GPU_one, family: gpu, vcpus: 4, memory_gb: 16.5, gpus: 1, price_per_hour: 2.5, low_priority_price_per_hour: 0.5}
`,
		want: wantTwo,
	},
	{
		name: "yaml wrapped",
		file: "sizes.yml",
		content: `sizes:
  - {name: CPU_BIG, family: big, vcpus: 16, memory_gb: 64, price_per_hour: 1, low_priority_price_per_hour: 0.2}
  - {name: GPU_one, family: gpu, vcpus: 4, memory_gb: 16.5, gpus: 1, price_per_hour: 2.5, low_priority_price_per_hour: 0.5}
`,
		want: wantTwo,
	},
	{
		name: "json list",
		file: "sizes.json",
		content: `[
 {"name": "CPU_BIG", "family": "big", "vcpus": 16, "memory_gb": 64, "price_per_hour": 1, "low_priority_price_per_hour": 0.2},
 {"name": "GPU_one", "family": "gpu", "vcpus": 4, "memory_gb": 16.5, "gpus": 1, "price_per_hour": 2.5, "low_priority_price_per_hour": 0.5}
]`,
		want: wantTwo,
	},
	{
		name: "json wrapped upper-case extension",
		file: "SIZES.JSON",
		content: ` {"sizes": [
 {"name": "CPU_BIG", "family": "big", "vcpus": 16, "memory_gb": 64, "price_per_hour": 1, "low_priority_price_per_hour": 0.2},
 {"name": "GPU_one", "family": "gpu", "vcpus": 4, "memory_gb": 16.5, "gpus": 1, "price_per_hour": 2.5, "low_priority_price_per_hour": 0.5}
]}`,
		want: wantTwo,
	},
	{
		name:    "yaml unknown key in a list entry",
		file:    "sizes.yaml",
		content: "- {name: A, family: f, vcpus: 1, cores: 2}\n",
		wantErr: "field cores not found",
	},
	{
		name:    "yaml unknown key in a wrapped entry",
		file:    "sizes.yaml",
		content: "sizes:\n  - {name: A, family: f, vcpus: 1, cores: 2}\n",
		wantErr: "field cores not found",
	},
	{
		name:    "yaml unknown top-level key",
		file:    "sizes.yaml",
		content: "sizes:\n  - {name: A, family: f, vcpus: 1}\nregion: eastus\n",
		wantErr: "field region not found",
	},
	{
		name:    "json unknown key",
		file:    "sizes.json",
		content: `[{"name": "A", "family": "f", "vcpus": 1, "cores": 2}]`,
		wantErr: `unknown field "cores"`,
	},
	{
		name:    "json wrapped unknown key",
		file:    "sizes.json",
		content: `{"sizes": [{"name": "A", "family": "f", "vcpus": 1}], "region": "eastus"}`,
		wantErr: `unknown field "region"`,
	},
	{
		name:    "json trailing data",
		file:    "sizes.json",
		content: `[{"name": "A", "family": "f", "vcpus": 1}] []`,
		wantErr: "data after the JSON document",
	},
	{
		name:    "duplicate names differing in case",
		file:    "sizes.yaml",
		content: "- {name: Big, family: f, vcpus: 1}\n- {name: BIG, family: f, vcpus: 2}\n",
		wantErr: "vm size BIG: listed twice",
	},
	{
		name:    "missing name",
		file:    "sizes.yaml",
		content: "- {family: f, vcpus: 1}\n",
		wantErr: "vm size 0: name is required",
	},
	{
		name:    "blank name",
		file:    "sizes.yaml",
		content: "- {name: '  ', family: f, vcpus: 1}\n",
		wantErr: "name is required",
	},
	{
		name:    "no vcpus",
		file:    "sizes.yaml",
		content: "- {name: A, family: f}\n",
		wantErr: "vm size A: vcpus must be >= 1",
	},
	{
		name:    "no family",
		file:    "sizes.yaml",
		content: "- {name: A, vcpus: 1}\n",
		wantErr: "vm size A: family is required",
	},
	{
		name:    "negative gpus",
		file:    "sizes.yaml",
		content: "- {name: A, family: f, vcpus: 1, gpus: -1}\n",
		wantErr: "must be finite numbers >= 0",
	},
	{
		name:    "negative price",
		file:    "sizes.json",
		content: `[{"name": "A", "family": "f", "vcpus": 1, "price_per_hour": -0.1}]`,
		wantErr: "must be finite numbers >= 0",
	},
	{
		name:    "NaN price",
		file:    "sizes.yaml",
		content: "- {name: A, family: f, vcpus: 1, price_per_hour: .nan}\n",
		wantErr: "must be finite numbers >= 0",
	},
	{
		name:    "infinite memory",
		file:    "sizes.yaml",
		content: "- {name: A, family: f, vcpus: 1, memory_gb: .inf}\n",
		wantErr: "must be finite numbers >= 0",
	},
	{
		name:    "wrong type",
		file:    "sizes.yaml",
		content: "- {name: A, family: f, vcpus: two}\n",
		wantErr: "cannot unmarshal",
	},
	{
		name:    "empty yaml file",
		file:    "sizes.yaml",
		content: "",
		wantErr: "the file is empty",
	},
	{
		name:    "empty yaml list",
		file:    "sizes.yaml",
		content: "[]\n",
		wantErr: "lists no sizes",
	},
	{
		name:    "empty wrapped list",
		file:    "sizes.json",
		content: `{"sizes": []}`,
		wantErr: "lists no sizes",
	},
	{
		name:    "second yaml document",
		file:    "sizes.yaml",
		content: "- {name: A, family: f, vcpus: 1}\n---\n- {name: B, family: f, vcpus: 1}\n",
		wantErr: "more than one YAML document",
	},
	{
		name:    "not yaml",
		file:    "sizes.yaml",
		content: "- {name: A\n",
		wantErr: "parse vm sizes",
	},
}

func TestLoad(t *testing.T) {
	t.Parallel()
	for _, tc := range loadCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := writeFile(t, tc.file, tc.content)
			c, err := vmsize.Load(path)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Load = %v, want an error containing %q", c.All(), tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Load error = %q, want it to contain %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), path) {
					t.Errorf("Load error = %q does not name the file %s", err, path)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if d := cmp.Diff(tc.want, c.All()); d != "" {
				t.Errorf("sizes mismatch (-want +got):\n%s", d)
			}
			if s, ok := c.Lookup("gpu_ONE"); !ok || s.Name != "GPU_one" {
				t.Errorf("Lookup(gpu_ONE) = %v, %v; want GPU_one", s, ok)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := vmsize.Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "read vm sizes") {
		t.Fatalf("Load of a missing file = %v, want a read error", err)
	}
}

func TestNewRefusesEmpty(t *testing.T) {
	t.Parallel()
	if _, err := vmsize.New(nil); err == nil {
		t.Fatal("New(nil) succeeded; an empty catalog could never create a cluster")
	}
}

// FuzzLoad feeds arbitrary bytes through the file parser, as YAML and as
// JSON. Load must never panic, and a catalog it accepts must keep its
// promises: at least one size, every size findable in any case, and
// representable as JSON (GET /vm-sizes sends it).
func FuzzLoad(f *testing.F) {
	for _, tc := range loadCases {
		f.Add(tc.content, strings.HasSuffix(strings.ToLower(tc.file), ".json"))
	}
	f.Fuzz(func(t *testing.T, content string, asJSON bool) {
		name := "sizes.yaml"
		if asJSON {
			name = "sizes.json"
		}
		path := writeFile(t, name, content)
		c, err := vmsize.Load(path)
		if err != nil {
			return
		}
		all := c.All()
		if len(all) == 0 {
			t.Fatal("Load accepted a catalog with no sizes")
		}
		for _, s := range all {
			got, ok := c.Lookup(strings.ToUpper(s.Name))
			if !ok || got != s {
				t.Fatalf("Lookup(%q) = %+v, %v; want %+v", strings.ToUpper(s.Name), got, ok, s)
			}
			if s.VCPUs < 1 || s.Family == "" || s.GPUs < 0 {
				t.Fatalf("Load accepted an invalid size %+v", s)
			}
		}
		if _, err := json.Marshal(all); err != nil {
			t.Fatalf("accepted catalog cannot be sent as JSON: %v", err)
		}
	})
}

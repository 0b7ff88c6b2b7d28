package cli

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-ml/hangar/api"
)

func TestParseKVs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      []string
		want    map[string]string
		wantErr string
	}{
		{name: "none", in: nil, want: nil},
		{name: "pairs", in: []string{"a=1", "b=x=y"}, want: map[string]string{"a": "1", "b": "x=y"}},
		{name: "empty value", in: []string{"a="}, want: map[string]string{"a": ""}},
		{name: "later wins", in: []string{"a=1", "a=2"}, want: map[string]string{"a": "2"}},
		{name: "no equals", in: []string{"a"}, wantErr: `invalid --tag "a": want KEY=VALUE`},
		{name: "no key", in: []string{"=v"}, wantErr: `invalid --tag "=v": want KEY=VALUE`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseKVs("--tag", tt.in)
			if tt.wantErr != "" {
				var ue *usageError
				if !errors.As(err, &ue) || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want usage error %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "30d", want: 30 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "90m", want: 90 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "3600", want: time.Hour},
		{in: " 2h ", want: 2 * time.Hour},
		{in: "", wantErr: true},
		{in: "soon", wantErr: true},
		{in: "d", wantErr: true},
		{in: "5x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseDuration(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseDuration(%q) = %v, %v; want error %v", tt.in, got, err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseDuration(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30d", "1d12h", "1.5d", "90m", "3600", "", "d", "9999999999999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err == nil && d < 0 && !strings.Contains(s, "-") {
			t.Errorf("parseDuration(%q) = %v, negative without a minus sign", s, d)
		}
	})
}

// changedSet returns a cobra-like Changed function for the named flags.
func changedSet(flags ...string) func(string) bool {
	set := map[string]bool{}
	for _, f := range flags {
		set[f] = true
	}
	return func(name string) bool { return set[name] }
}

func ptr[T any](v T) *T { return &v }

func TestBuildComputeSpecSendsOnlyWhatWasSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		flags   computeFlags
		changed []string
		want    api.ComputeSpec
		wantErr string
	}{
		{
			name:    "defaults left to the server",
			args:    []string{"amlcompute"},
			flags:   computeFlags{name: "cpu", maxNodes: 4},
			changed: []string{"name", "max-nodes"},
			want: api.ComputeSpec{Name: "cpu", Type: "cluster", Properties: api.ComputeProperties{
				ScaleSettings: &api.ScaleSettings{MaxNodes: ptr(4)},
			}},
		},
		{
			name:    "explicit zero is sent",
			args:    []string{"cluster"},
			flags:   computeFlags{name: "cpu", minNodes: 0, idle: 0},
			changed: []string{"name", "min-nodes", "idle-seconds-before-scaledown"},
			want: api.ComputeSpec{Name: "cpu", Type: "cluster", Properties: api.ComputeProperties{
				ScaleSettings: &api.ScaleSettings{MinNodes: ptr(0), IdleSecondsBeforeScaledown: ptr(0)},
			}},
		},
		{
			name:    "every flag",
			args:    []string{"cluster"},
			flags:   computeFlags{name: "gpu", vmSize: "Standard_NC6", vmPriority: "lowpriority", provider: "local", python: "/usr/bin/python3", description: "d", minNodes: 1, maxNodes: 2, idle: 60, tags: []string{"a=1", "b=2"}},
			changed: []string{"name", "vm-size", "vm-priority", "provider", "python", "description", "min-nodes", "max-nodes", "idle-seconds-before-scaledown", "tag"},
			want: api.ComputeSpec{Name: "gpu", Type: "cluster", Description: "d", Tags: map[string]string{"a": "1", "b": "2"}, Properties: api.ComputeProperties{
				VMSize: "Standard_NC6", VMPriority: "lowpriority", Provider: "local", Python: "/usr/bin/python3",
				ScaleSettings: &api.ScaleSettings{MinNodes: ptr(1), MaxNodes: ptr(2), IdleSecondsBeforeScaledown: ptr(60)},
			}},
		},
		{
			name:  "unknown type passes through for the server to refuse",
			args:  []string{"aks"},
			flags: computeFlags{},
			want:  api.ComputeSpec{Type: "aks"},
		},
		{name: "no type", args: nil, wantErr: "missing the compute type: amlcompute or cluster (or -f FILE)"},
		{name: "bad tag", args: []string{"cluster"}, flags: computeFlags{tags: []string{"x"}}, changed: []string{"tag"}, wantErr: `invalid --tag "x": want KEY=VALUE`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := newApp(io.Discard, io.Discard).buildComputeSpec(tt.args, tt.flags, changedSet(tt.changed...))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestBuildComputeUpdate(t *testing.T) {
	t.Parallel()
	got, err := buildComputeUpdate(updateFlags{maxNodes: 8, description: ""}, changedSet("max-nodes", "description"))
	if err != nil {
		t.Fatal(err)
	}
	want := api.ComputeUpdate{Description: ptr(""), ScaleSettings: &api.ScaleSettings{MaxNodes: ptr(8)}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if _, err := buildComputeUpdate(updateFlags{}, changedSet()); err == nil || !strings.HasPrefix(err.Error(), "nothing to update") {
		t.Errorf("no flags: err = %v, want nothing to update", err)
	}
}

func TestBuildRunSubmit(t *testing.T) {
	t.Parallel()
	f := submitFlags{
		compute: "cpu", experiment: "default", script: "train.py",
		env: []string{"A=1"}, tags: []string{"t=x"}, inputs: []string{"data=./d.csv"},
		environment: "sklearn:2", maxRetries: 0, maxRunDuration: "1d", nodeCount: 1, maxPreemptionRetries: 3,
	}
	got, inputs, err := newApp(io.Discard, io.Discard).buildRunSubmit(f, []string{"--lr", "0.1"}, changedSet("max-retries", "max-run-duration"))
	if err != nil {
		t.Fatal(err)
	}
	want := api.RunSubmit{
		Experiment: "default", Compute: "cpu", Script: "train.py", Args: []string{"--lr", "0.1"},
		Env: map[string]string{"A": "1"}, Tags: map[string]string{"t": "x"}, Environment: "sklearn:2",
		MaxRetries: ptr(0), MaxRunDurationSecs: 86400,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if diff := cmp.Diff([]inputArg{{Name: "data", Path: "./d.csv"}}, inputs); diff != "" {
		t.Errorf("inputs (-want +got)\n%s", diff)
	}

	for _, tt := range []struct {
		name    string
		f       submitFlags
		changed []string
		wantErr string
	}{
		{name: "bad env", f: submitFlags{env: []string{"X"}}, wantErr: `invalid -e "X": want KEY=VALUE`},
		{name: "bad input", f: submitFlags{inputs: []string{"data"}}, wantErr: `invalid --input "data": want NAME=PATH`},
		{name: "twice input", f: submitFlags{inputs: []string{"d=a", "d=b"}}, wantErr: `--input d is given twice`},
		{name: "short duration", f: submitFlags{maxRunDuration: "10ms"}, changed: []string{"max-run-duration"}, wantErr: `--max-run-duration: "10ms" must be at least 1s`},
		{name: "missing env file", f: submitFlags{environment: "nope.yml"}, wantErr: `--environment: nope.yml does not exist`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := newApp(io.Discard, io.Discard).buildRunSubmit(tt.f, nil, changedSet(tt.changed...))
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestDecodeStrict(t *testing.T) {
	t.Parallel()
	shownCompute := api.Compute{Name: "cpu", Type: "cluster", ProvisioningState: "Succeeded", ProvisioningErrors: []api.ProvisioningError{},
		Properties: api.ComputeProperties{VMSize: "STANDARD_D2_V2", VMPriority: "dedicated", Provider: "local",
			ScaleSettings: &api.ScaleSettings{MinNodes: ptr(0), MaxNodes: ptr(2), IdleSecondsBeforeScaledown: ptr(60)},
			VM:            &api.VMSize{Name: "STANDARD_D2_V2", VCPUs: 2}},
		Status:      &api.ComputeStatus{CurrentNodeCount: 1, AllocationState: "steady"},
		ScaleEvents: []api.Event{{ID: 1, Kind: "compute", Type: "ScaleUp", Message: "m"}},
		Cost:        &api.Cost{NodeHours: 1, Currency: "USD"}, CreatedBy: "admin",
		CreatedOn: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), ModifiedOn: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	var shownYAML, shownJSON strings.Builder
	if err := writeYAML(&shownYAML, shownCompute); err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(&shownJSON, shownCompute); err != nil {
		t.Fatal(err)
	}
	shownSpec := api.ComputeSpec{Name: "cpu", Type: "cluster", Properties: api.ComputeProperties{VMSize: "STANDARD_D2_V2", VMPriority: "dedicated", Provider: "local",
		ScaleSettings: &api.ScaleSettings{MinNodes: ptr(0), MaxNodes: ptr(2), IdleSecondsBeforeScaledown: ptr(60)}}}
	shownIgnored := []string{"provisioning_state", "provisioning_errors", "properties.vm", "status", "scale_events", "cost", "created_by", "created_on", "modified_on"}

	tests := []struct {
		name        string
		in          string
		noShown     bool // decode without the shown document's type
		want        api.ComputeSpec
		wantIgnored []string
		wantErr     []string
	}{
		{
			name: "all writable keys",
			in: `name: c
type: amlcompute
description: d
tags: {a: b}
properties:
  vm_size: STANDARD_D2_V2
  vm_priority: dedicated
  provider: local
  python: python3
  scale_settings: {min_nodes: 0, max_nodes: 2, idle_seconds_before_scaledown: 30}
`,
			want: api.ComputeSpec{Name: "c", Type: "amlcompute", Description: "d", Tags: map[string]string{"a": "b"}, Properties: api.ComputeProperties{
				VMSize: "STANDARD_D2_V2", VMPriority: "dedicated", Provider: "local", Python: "python3",
				ScaleSettings: &api.ScaleSettings{MinNodes: ptr(0), MaxNodes: ptr(2), IdleSecondsBeforeScaledown: ptr(30)},
			}},
		},
		{
			name: "JSON works too",
			in:   `{"name": "c", "type": "cluster", "properties": {"scale_settings": {"max_nodes": 1}}}`,
			want: api.ComputeSpec{Name: "c", Type: "cluster", Properties: api.ComputeProperties{ScaleSettings: &api.ScaleSettings{MaxNodes: ptr(1)}}},
		},
		{
			name: "a whole number written as a float is that number",
			in:   "properties:\n  scale_settings: {max_nodes: 2.0, min_nodes: 1e1}\n",
			want: api.ComputeSpec{Properties: api.ComputeProperties{ScaleSettings: &api.ScaleSettings{MaxNodes: ptr(2), MinNodes: ptr(10)}}},
		},
		{
			name: "null is the same as absent; numbers and booleans are strings where a string is wanted",
			in:   "name: 12\ndescription: true\ntags: {a: 1}\nproperties: null\n",
			want: api.ComputeSpec{Name: "12", Description: "true", Tags: map[string]string{"a": "1"}},
		},
		{
			name:    "unknown keys at every level",
			in:      "name: c\nnmae: x\nproperties:\n  vm: {}\n  scale_settings:\n    maxnodes: 2\n",
			noShown: true,
			wantErr: []string{
				"nmae: unknown key in f.yml (line 2); valid keys here: description, name, properties, tags, type",
				"properties.vm: unknown key in f.yml (line 4); valid keys here: provider, python, scale_settings, vm_priority, vm_size",
				"properties.scale_settings.maxnodes: unknown key in f.yml (line 6); valid keys here: idle_seconds_before_scaledown, max_nodes, min_nodes",
			},
		},
		{
			name:    "a fraction is not truncated",
			in:      "name: c\ntype: cluster\nproperties:\n  vm_size: STANDARD_D2_V2\n  scale_settings:\n    max_nodes: 1.5\n",
			wantErr: []string{"properties.scale_settings.max_nodes: must be a whole number, not 1.5 (f.yml line 6)"},
		},
		{
			name:    "a word for a number",
			in:      "name: c\nproperties:\n  scale_settings:\n    max_nodes: two\n",
			wantErr: []string{`properties.scale_settings.max_nodes: must be a whole number, not "two" (f.yml line 4)`},
		},
		{
			name:    "a quoted number is a string",
			in:      "properties: {scale_settings: {max_nodes: '3'}}\n",
			wantErr: []string{`properties.scale_settings.max_nodes: must be a whole number, not "3" (f.yml line 1)`},
		},
		{
			name:    "out of range",
			in:      "properties: {scale_settings: {max_nodes: 99999999999999999999}}\n",
			wantErr: []string{"properties.scale_settings.max_nodes: (99999999999999999999) must be between -9223372036854775808 and 9223372036854775807 (f.yml line 1)"},
		},
		{
			name: "every problem is listed, in the file's order",
			in: `name: [c]
nmae: x
tags: [a, b]
description: {a: b}
properties:
  vm_size: STANDARD_D2_V2
  scale_settings:
    min_nodes: 0.5
    max_nodes: two
    idle: 3
`,
			noShown: true,
			wantErr: []string{
				"name: must be a string, not a list (f.yml line 1)",
				"nmae: unknown key in f.yml (line 2); valid keys here: description, name, properties, tags, type",
				"tags: must be a mapping of keys to values, not a list (f.yml line 3)",
				"description: must be a string, not a mapping (f.yml line 4)",
				"properties.scale_settings.min_nodes: must be a whole number, not 0.5 (f.yml line 8)",
				`properties.scale_settings.max_nodes: must be a whole number, not "two" (f.yml line 9)`,
				"properties.scale_settings.idle: unknown key in f.yml (line 10); valid keys here: idle_seconds_before_scaledown, max_nodes, min_nodes",
			},
		},
		{
			name:    "a mapping where a mapping belongs",
			in:      "properties: big\n",
			wantErr: []string{`properties: must be a mapping of keys to values, not "big" (f.yml line 1)`},
		},
		{
			name:    "a second document is refused",
			in:      "name: a\ntype: cluster\n---\nname: b\n",
			wantErr: []string{"f.yml holds more than one YAML document (another begins at line 4); give one per file"},
		},
		{
			name: "an empty document after the first is harmless",
			in:   "name: a\n---\n# nothing\n",
			want: api.ComputeSpec{Name: "a"},
		},
		{
			name:        "compute show -o yaml can be created again: read-only fields are ignored",
			in:          shownYAML.String(),
			want:        shownSpec,
			wantIgnored: shownIgnored,
		},
		{
			name:        "and so can compute show -o json",
			in:          shownJSON.String(),
			want:        shownSpec,
			wantIgnored: shownIgnored,
		},
		{
			name:    "without the shown type, read-only fields are unknown keys",
			in:      "name: c\nstatus: {}\n",
			noShown: true,
			wantErr: []string{"status: unknown key in f.yml (line 2); valid keys here: description, name, properties, tags, type"},
		},
		{name: "not a mapping", in: "- a\n- b\n", wantErr: []string{"f.yml: want a mapping of keys to values at the top level"}},
		{name: "empty", in: "", wantErr: []string{"f.yml: the file is empty"}},
		{name: "only a comment", in: "# c\n", wantErr: []string{"f.yml: the file is empty"}},
		{name: "syntax", in: "name: [\n", wantErr: []string{"f.yml: line 1: did not find expected node content"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got api.ComputeSpec
			var shown any = api.Compute{}
			if tt.noShown {
				shown = nil
			}
			ignored, err := decodeStrict("f.yml", []byte(tt.in), &got, shown)
			if tt.wantErr != nil {
				if diff := cmp.Diff(tt.wantErr, errorLines(err)); diff != "" {
					t.Errorf("errors (-want +got)\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantIgnored, ignored); diff != "" {
				t.Errorf("ignored (-want +got)\n%s", diff)
			}
		})
	}
}

// errorLines are the "Error:" lines err prints as (one per field problem).
func errorLines(err error) []string {
	var fes fieldErrors
	switch {
	case err == nil:
		return nil
	case errors.As(err, &fes):
		var msgs []string
		for _, fe := range fes {
			msgs = append(msgs, fe.Error())
		}
		return msgs
	}
	return []string{err.Error()}
}

func TestDecodeStrictEnvironment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		in          string
		want        api.EnvironmentSpec
		wantIgnored []string
		wantErr     []string
	}{
		{name: "a file", in: "name: sk\npython: python3\nrequirements: [a==1, b]\nvariables: {N: 1}\n",
			want: api.EnvironmentSpec{Name: "sk", Python: "python3", Requirements: []string{"a==1", "b"}, Variables: map[string]string{"N": "1"}}},
		{name: "environment show -o yaml", in: "name: sk\nversion: 3\ncreated_on: \"2026-01-02T03:04:05Z\"\npython: python3\n",
			want: api.EnvironmentSpec{Name: "sk", Python: "python3"}, wantIgnored: []string{"version", "created_on"}},
		{name: "wrong types", in: "requirements: scikit-learn\nvariables: [A]\npython: {x: 1}\n", wantErr: []string{
			`requirements: must be a list, not "scikit-learn" (env.yml line 1)`,
			"variables: must be a mapping of keys to values, not a list (env.yml line 2)",
			"python: must be a string, not a mapping (env.yml line 3)",
		}},
		{name: "a list inside a list", in: "requirements: [[a]]\n", wantErr: []string{"requirements[0]: must be a string, not a list (env.yml line 1)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got api.EnvironmentSpec
			ignored, err := decodeStrict("env.yml", []byte(tt.in), &got, api.Environment{})
			if tt.wantErr != nil {
				if diff := cmp.Diff(tt.wantErr, errorLines(err)); diff != "" {
					t.Errorf("errors (-want +got)\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantIgnored, ignored); diff != "" {
				t.Errorf("ignored (-want +got)\n%s", diff)
			}
		})
	}
}

func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{
		"name: c\ntype: cluster\nproperties:\n  scale_settings:\n    max_nodes: 2\n",
		`{"name": "c", "tags": {"a": "b"}}`,
		"name: c\nnmae: x\n",
		"a: &x {b: *x}\n",
		"- a\n",
		"",
		"properties: {scale_settings: {max_nodes: 1.5, min_nodes: two}}\n",
		"name: a\n---\nname: b\n",
		"tags: [a]\nrequirements: {a: b}\nstatus: {x: 1}\n",
		"a: &x [*x]\ntags: *x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var spec api.ComputeSpec
		_, _ = decodeStrict("f.yml", data, &spec, api.Compute{})
		var env api.EnvironmentSpec
		_, _ = decodeStrict("f.yml", data, &env, api.Environment{})
	})
}
